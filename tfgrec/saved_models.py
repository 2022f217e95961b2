"""Exported models on disk: TF Serving's layout `<base>/<name>/<version>/`, and the one loader.

  saved_models.versions("out/models/tfgrec")       # [1, 2]: integer folders with a SavedModel
  saved_models.version_dir("out/models/tfgrec")    # ".../tfgrec/2"; a version folder as it is
  model = saved_models.load("out/models/tfgrec")   # registers the ops it needs, then loads

A tfgrec export tokenizes new item titles inside the graph with tensorflow-text ops
(`encode_items`). Stock TF Serving links them; a Python process knows them only after
`import tensorflow_text`, and `tf.saved_model.load` fails with "Op type not registered" without
it. `load` reads the op types the SavedModel uses, imports tensorflow-text when one of them is
not registered, and names the missing ops if that is not enough. `tfgrec recommend`, the Beam
batch job, the local model server and the benchmarks all load through here.
Paths may be local or on any filesystem TensorFlow knows (tfgrec.storage).
"""
import contextlib
import logging
from typing import List, Mapping, Set

from tfgrec import storage

tf = storage.tf
logger = logging.getLogger(__name__)

SAVED_MODEL_FILE = "saved_model.pb"


class ModelDirError(FileNotFoundError):
  """A path that is neither a SavedModel nor a model folder of versions."""


def version_folders(model_dir: str) -> List[int]:
  """The integer-named subfolders of `model_dir`, ascending: the versions TF Serving's file
  system source sees (an export's temporary folder is not an integer)."""
  return sorted(int(name) for name in storage.listdir(model_dir)
                if name.isdigit() and storage.isdir(storage.join(model_dir, name)))


def versions(model_dir: str) -> List[int]:
  """Those of `version_folders` that hold a saved_model.pb."""
  return [v for v in version_folders(model_dir)
          if storage.exists(storage.join(model_dir, str(v), SAVED_MODEL_FILE))]


def next_version(model_dir: str) -> int:
  """1 + the highest integer version folder in `model_dir` (1 when there is none)."""
  return max(version_folders(model_dir), default=0) + 1


def version_dir(path: str) -> str:
  """`path` when it is a SavedModel, else its highest version folder.

  Raises:
    ModelDirError: neither (the message says how to make one).
  """
  if storage.exists(storage.join(path, SAVED_MODEL_FILE)):
    return path
  if not storage.isdir(path):
    raise ModelDirError(f"model {path!r} does not exist")
  present = versions(path)
  if not present:
    raise ModelDirError(f"model {path!r} is neither a SavedModel (no {SAVED_MODEL_FILE}) nor a "
                        "model directory with integer version subdirectories: run "
                        "`tfgrec export`")
  return storage.join(path, str(present[-1]))


def signature_names(path: str) -> List[str]:
  """The signature names of the SavedModel in folder `path`, sorted (read from its proto; no
  graph is loaded)."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved = saved_model_pb2.SavedModel.FromString(
      storage.read_bytes(storage.join(path, SAVED_MODEL_FILE)))
  return sorted({name for graph in saved.meta_graphs for name in graph.signature_def})


def op_types(path: str) -> Set[str]:
  """The op types the SavedModel in folder `path` runs (its graphs and function library;
  calls of the library's own functions are not ops)."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved = saved_model_pb2.SavedModel.FromString(
      storage.read_bytes(storage.join(path, SAVED_MODEL_FILE)))
  ops, functions = set(), set()
  for graph in saved.meta_graphs:
    ops.update(node.op for node in graph.graph_def.node)
    for function in graph.graph_def.library.function:
      functions.add(function.signature.name)
      ops.update(node.op for node in function.node_def)
  return ops - functions


def unregistered_ops(ops: Set[str]) -> Set[str]:
  """Those of `ops` this process does not know."""
  from tensorflow.python.framework import op_def_registry  # pylint: disable=g-import-not-at-top
  return {op for op in ops if op_def_registry.get(op) is None}


def register_ops(path: str) -> None:
  """Makes every op of the SavedModel at `path` known to this process (tensorflow-text's).

  Raises:
    ImportError: ops stay unknown (the message names them and what to install).
  """
  ops = op_types(path)
  if not unregistered_ops(ops):
    return
  try:
    import tensorflow_text  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise ImportError(f"the model at {path} uses ops {sorted(unregistered_ops(ops))}, which "
                      "tensorflow-text registers, and it is not installed: "
                      "pip install 'tensorflow-text>=2.21,<2.22'") from e
  still = unregistered_ops(ops)
  if still:
    raise ImportError(f"the model at {path} uses ops this TensorFlow does not know: "
                      f"{sorted(still)} (export it with this TensorFlow, or install the op "
                      "library it was exported with)")


def save(obj, path: str, signatures: Mapping[str, object]) -> None:
  """`tf.saved_model.save` of a tfgrec module (an export, a candidate source) with its signatures.

  The Keras layers inside are saved as variables and the signatures' graphs, without Keras's
  own traces of every layer's call (what `model.save(save_traces=False)` leaves out): nothing
  tfgrec, TF Serving or `load` runs reads them, and tracing them took most of an export's time.
  """
  with _without_keras_traces():
    tf.saved_model.save(obj, path, signatures=dict(signatures))


def _without_keras_traces():
  """The Keras 2 option scope that `model.save(save_traces=False)` uses (a no-op elsewhere)."""
  try:
    from tf_keras.src.saving.legacy.saved_model import utils  # pylint: disable=g-import-not-at-top
  except ImportError:  # Another Keras 2 layout: save with the traces.
    return contextlib.nullcontext()
  return utils.keras_option_scope(save_traces=False, in_tf_saved_model_scope=True)


def load(path: str, tags=None):
  """Loads the SavedModel at `path` (a version folder, or a model folder: its highest version)
  after registering the ops it uses; returns what `tf.saved_model.load` returns."""
  path = version_dir(path)
  register_ops(path)
  logger.debug("loading SavedModel %s", path)
  return tf.saved_model.load(path, tags=tags)
