"""The run's manifest: what each artifact of the final fit is, what it was made from, checksums.

  manifest = build(layout, artifacts, events=..., config=...)   # the final fit, written last
  write(layout, manifest)
  manifest = verify(layout)        # the export: raises ManifestError on any mismatch

`<run_dir>/manifest.json`:
  {"format": 1, "created": ISO time, "tfgrec": version,
   "events": {"splits": [...], "count": E, "users": U, "items": I, "latest": epoch s,
              "sha256": digest of the (user, item, timestamp) arrays},
   "config": {section: sha256 of the section as the run resolved it},
   "artifacts": {name: {"kind", "path" (relative to the run directory), "description",
                        "sha256" (a file's bytes; a folder: its files' names and bytes),
                        "bytes"}}}

A file changed after the final fit, a missing artifact, or a config section that changed what
the artifacts hold (the model, the tasks, the text tower, the ranking) fails the check with the
artifact and the remedy named (rerun `tfgrec final-fit`).
"""
import dataclasses
import datetime
import hashlib
import json
from typing import Dict, Mapping, Sequence

import numpy as np

import tfgrec
from tfgrec import config as config_lib
from tfgrec import storage
from tfgrec.train import layout as layout_lib

FORMAT = 1
# The config sections the final fit's artifacts depend on: a change in one of them after the
# final fit makes the artifacts stale.
CONFIG_SECTIONS = ("model", "tasks", "text", "ranking")


class ManifestError(ValueError):
  """The run's artifacts do not match its manifest (the message names what and the fix)."""


@dataclasses.dataclass(frozen=True)
class Artifact:
  """One artifact of the final fit.

  Attributes:
    kind: what it is ("arrays", "json", "source", "encoder", "checkpoint").
    path: its path relative to the run directory (a file or a folder).
    description: one line for a reader of the manifest.
    sha256: the digest of its bytes (a folder: of its files' relative names and bytes).
    bytes: its size on disk.
  """
  kind: str
  path: str
  description: str
  sha256: str = ""
  bytes: int = 0


@dataclasses.dataclass(frozen=True)
class Manifest:
  """The parsed manifest.json (module docstring)."""
  created: str
  tfgrec: str
  events: Dict
  config: Dict[str, str]
  artifacts: Dict[str, Artifact]
  format: int = FORMAT


def _files(path: str) -> Sequence[str]:
  """The files under folder `path`, relative to it, sorted."""
  out = []
  for name in sorted(storage.listdir(path)):
    full = storage.join(path, name)
    if storage.isdir(full):
      out.extend(f"{name}/{sub}" for sub in _files(full))
    else:
      out.append(name)
  return out


def digest(path: str) -> Dict[str, object]:
  """{"sha256", "bytes"} of a file, or of a folder's files (names and bytes)."""
  h = hashlib.sha256()
  size = 0
  if storage.isdir(path):
    for name in _files(path):
      data = storage.read_bytes(storage.join(path, name))
      h.update(name.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
      size += len(data)
  else:
    data = storage.read_bytes(path)
    h.update(data)
    size = len(data)
  return {"sha256": h.hexdigest(), "bytes": size}


def config_digests(config: config_lib.RunConfig) -> Dict[str, str]:
  """{section: sha256} of the CONFIG_SECTIONS of `config`."""
  values = config_lib.to_dict(config)
  return {name: hashlib.sha256(json.dumps(values[name], sort_keys=True, default=str)
                               .encode("utf-8")).hexdigest() for name in CONFIG_SECTIONS}


def events_summary(events: Mapping[str, np.ndarray], *, splits: Sequence[str], num_users: int,
                   num_items: int) -> Dict[str, object]:
  """What the final fit read: the splits, their event count and a digest of the arrays."""
  h = hashlib.sha256()
  for key in ("user", "item", "timestamp"):
    h.update(np.ascontiguousarray(np.asarray(events[key], np.int64)).tobytes())
  stamps = np.asarray(events["timestamp"], np.int64)
  return {"splits": list(splits), "count": int(len(stamps)), "users": int(num_users),
          "items": int(num_items), "latest": int(stamps.max(initial=-1)),
          "sha256": h.hexdigest()}


def build(layout: layout_lib.RunLayout, artifacts: Mapping[str, Artifact], *,
          events: Dict, config: config_lib.RunConfig) -> Manifest:
  """The manifest of `artifacts` as they are on disk now (their digests computed here)."""
  done = {}
  for name, artifact in artifacts.items():
    full = storage.join(layout.run_dir, artifact.path)
    if not storage.exists(full):
      raise ManifestError(f"artifact {name!r}: {full} was not written")
    done[name] = dataclasses.replace(artifact, **digest(full))
  return Manifest(created=datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds"), tfgrec=tfgrec.__version__, events=dict(events),
                  config=config_digests(config), artifacts=done)


def write(layout: layout_lib.RunLayout, manifest: Manifest) -> None:
  storage.write_json(layout.manifest, dataclasses.asdict(manifest))


def read(layout: layout_lib.RunLayout) -> Manifest:
  """The run's manifest; ManifestError when the run has none (trained before the final fit)."""
  if not storage.exists(layout.manifest):
    raise ManifestError(f"{layout.manifest} does not exist: the run has no final fit; run "
                        f"`tfgrec final-fit --run {layout.run_dir}` (or `tfgrec train`)")
  raw = storage.read_json(layout.manifest)
  if raw.get("format") != FORMAT:
    raise ManifestError(f"{layout.manifest}: format {raw.get('format')!r}, this tfgrec reads "
                        f"{FORMAT}; rerun `tfgrec final-fit --run {layout.run_dir}`")
  artifacts = {k: Artifact(**v) for k, v in raw.pop("artifacts").items()}
  return Manifest(artifacts=artifacts, **raw)


def verify(layout: layout_lib.RunLayout, config: config_lib.RunConfig = None) -> Manifest:
  """Reads the manifest and checks every artifact's digest (and, with `config`, that the
  CONFIG_SECTIONS are those the final fit used); returns the manifest."""
  manifest = read(layout)
  fix = f"rerun `tfgrec final-fit --run {layout.run_dir}`"
  for name, artifact in manifest.artifacts.items():
    full = storage.join(layout.run_dir, artifact.path)
    if not storage.exists(full):
      raise ManifestError(f"artifact {name!r} ({full}) is missing; {fix}")
    now = digest(full)
    if now["sha256"] != artifact.sha256:
      raise ManifestError(f"artifact {name!r} ({full}) changed since the final fit (sha256 "
                          f"{now['sha256'][:12]}, the manifest says {artifact.sha256[:12]}); "
                          f"{fix}")
  if config is not None:
    changed = [k for k, v in config_digests(config).items() if manifest.config.get(k) != v]
    if changed:
      raise ManifestError(f"config section(s) {', '.join(changed)} changed since the final "
                          f"fit of {layout.run_dir}; {fix} (or `tfgrec train` for a change "
                          "the model must learn)")
  return manifest
