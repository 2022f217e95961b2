"""Files of graph, run, report and model directories, on local disk or any filesystem TensorFlow
knows (gs://, s3://, hdfs://, and the in-memory ram:// that tests use).

  storage.write_json("gs://b/run/best.json", {"epoch": 3})
  storage.save_npz("gs://b/run/embeddings.npz", user=u, item=i)
  frame = storage.read_parquet("gs://b/graph/catalog.parquet")

Every read and write of tfgrec's directories goes through here (tf.io.gfile underneath), so a
path that works for one command works for all of them. Writes are all-or-nothing: a local file is
written under a temporary name and renamed into place (atomic on POSIX); an object store makes an
object visible only when its upload completes. A directory (a SavedModel version) is published
with `publish_dir`, which TF Serving never sees half done (see there).

Beam jobs read and write through Beam's own filesystems instead, where Beam is in charge.
"""
import io
import json
import os
import posixpath
import uuid
from typing import Any, Dict, Iterable, List

import numpy as np

import tensorflow as tf

gfile = tf.io.gfile


def is_local(path: str) -> bool:
  """Whether `path` is a plain local path (no scheme such as gs:// or ram://)."""
  return "://" not in path


def join(*parts: str) -> str:
  """Joins path parts; URLs keep their scheme (gs://b + x -> gs://b/x)."""
  return os.path.join(*parts) if is_local(parts[0]) else posixpath.join(*parts)


def dirname(path: str) -> str:
  return os.path.dirname(path) if is_local(path) else posixpath.dirname(path.rstrip("/"))


def basename(path: str) -> str:
  return os.path.basename(path) if is_local(path) else posixpath.basename(path.rstrip("/"))


def exists(path: str) -> bool:
  return gfile.exists(path)


def isdir(path: str) -> bool:
  return gfile.isdir(path)


def makedirs(path: str) -> None:
  """Creates `path` and its parents (no error when it exists)."""
  gfile.makedirs(path)


def listdir(path: str) -> List[str]:
  """The names in folder `path` (no trailing '/'), [] when it does not exist."""
  if not gfile.isdir(path):
    return []
  return sorted(name.rstrip("/") for name in gfile.listdir(path))


def glob(pattern: str) -> List[str]:
  return sorted(gfile.glob(pattern))


def remove(path: str) -> None:
  """Deletes file `path` if it exists."""
  if gfile.exists(path):
    gfile.remove(path)


def rmtree(path: str) -> None:
  """Deletes folder `path` and everything in it, if it exists."""
  if not gfile.exists(path):
    return
  try:
    gfile.rmtree(path)
  except tf.errors.NotFoundError:
    # TensorFlow's ram:// lists a folder's children by name prefix (next to `assets.extra/w`,
    # `assets` seems to hold `.extra`) and its recursive delete stops at such a name.
    for rel in _files(path):
      remove(join(path, rel))


def has_files(path: str) -> bool:
  """Whether folder `path` holds at least one file (in any subfolder)."""
  if not gfile.isdir(path):
    return False
  return any(files for _, _, files in gfile.walk(path))


def read_bytes(path: str) -> bytes:
  with gfile.GFile(path, "rb") as f:
    return f.read()


def read_text(path: str) -> str:
  return read_bytes(path).decode("utf-8")


def write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` all at once (module docstring), creating its folder."""
  folder = dirname(path)
  if folder:
    makedirs(folder)
  if not is_local(path):
    if path.startswith("ram://") and gfile.exists(path):
      gfile.remove(path)  # TensorFlow's in-memory filesystem appends instead of replacing.
    with gfile.GFile(path, "wb") as f:  # The object appears when the upload completes.
      f.write(data)
    return
  tmp = join(folder, f".{basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
  try:
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode("utf-8"))


def write_lines(path: str, lines: Iterable[str]) -> int:
  """Writes one line per string (newline added); returns the count."""
  lines = list(lines)
  write_text(path, "".join(f"{line}\n" for line in lines))
  return len(lines)


def read_json(path: str, default: Any = None) -> Any:
  """The JSON value in `path`, or `default` when the file does not exist."""
  if not gfile.exists(path):
    return default
  return json.loads(read_text(path))


def write_json(path: str, value: Any, indent: int = 1) -> None:
  write_text(path, json.dumps(value, indent=indent))


def save_npz(path: str, *, compressed: bool = False, **arrays: np.ndarray) -> None:
  buffer = io.BytesIO()
  (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
  write_bytes(path, buffer.getvalue())


def load_npz(path: str) -> Dict[str, np.ndarray]:
  """{name: array} of an .npz file (read whole: remote files are not seekable cheaply)."""
  with np.load(io.BytesIO(read_bytes(path)), allow_pickle=False) as data:
    return {name: data[name] for name in data.files}


def read_parquet(path: str, **kwargs):
  import pandas as pd  # pylint: disable=g-import-not-at-top
  return pd.read_parquet(io.BytesIO(read_bytes(path)), **kwargs)


def write_parquet(frame, path: str) -> None:
  buffer = io.BytesIO()
  frame.to_parquet(buffer, index=False)
  write_bytes(path, buffer.getvalue())


def save_figure(fig, path: str, **kwargs) -> None:
  """Saves a matplotlib figure as PNG to `path`."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", **kwargs)
  write_bytes(path, buffer.getvalue())


def temp_dir_beside(final: str) -> str:
  """A new empty folder next to `final`, named so that TF Serving ignores it (not an integer)."""
  path = join(dirname(final), f".{basename(final)}-tmp-{uuid.uuid4().hex[:8]}")
  makedirs(path)
  return path


def _files(folder: str) -> List[str]:
  """Every file under `folder`, as paths relative to it."""
  out = []
  for root, _, files in gfile.walk(folder):
    rel = root[len(folder):].lstrip("/")
    out.extend(posixpath.join(rel, name) if rel else name for name in files
               if gfile.exists(posixpath.join(root, name)))  # See rmtree on ram://.
  return sorted(out)


def publish_dir(tmp: str, final: str, last: Iterable[str] = ("saved_model.pb",)) -> None:
  """Moves the finished folder `tmp` to `final`, which must not exist.

  On local disk this is one rename (atomic). Object stores have no folder rename (a rename is a
  copy of every object), so there the files are copied into `final` with the files named in
  `last` copied after all others, then `tmp` is deleted: TF Serving, which loads a version once
  its `saved_model.pb` is there, never reads a version whose variables are still on their way.

  Raises:
    FileExistsError: `final` exists (versions are never overwritten).
  """
  if gfile.exists(final):
    raise FileExistsError(f"{final} exists: versions are never overwritten")
  if is_local(tmp) and is_local(final):
    os.replace(tmp, final)
    return
  last = set(last)
  files = _files(tmp)
  ordered = ([f for f in files if posixpath.basename(f) not in last]
             + [f for f in files if posixpath.basename(f) in last])
  for rel in ordered:
    target = join(final, rel)
    makedirs(dirname(target))
    gfile.copy(join(tmp, rel), target, overwrite=False)
  rmtree(tmp)
