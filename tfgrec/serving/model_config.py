"""TF Serving's `models.config` and batching parameters, resolved the way the model server does.

A `models.config` is a `ModelServerConfig` text proto
(tensorflow_serving/config/model_server_config.proto). Each `model_config_list.config` names a
model, its `base_path` (integer version folders below it) and a `model_version_policy`; its
`version_labels` map a label to one of the loaded versions:

  models = load_models_config("serving/models.config")
  models[0].name, models[0].versions, models[0].labels   # 'tfgrec', (1,), {'stable': 1, ...}
  models[0].version_path(1)                              # '/models/tfgrec/1'
  read_max_batch_size("serving/batching_parameters.pbtxt")   # 64
  write_models_config("out/models", "tfgrec", 3)            # out/models/models.config

A relative `base_path` is taken relative to the config file's folder (TF Serving takes it
relative to its working directory; the folder of the file is what a local run means).
"""
import dataclasses
import os
import re
from typing import Dict, List, Optional, Tuple

from google.protobuf import text_format

from tensorflow_serving.config import model_server_config_pb2

from tfgrec import saved_models
from tfgrec.serving import _protos

PLATFORM = "tensorflow"
MODELS_CONFIG = "models.config"  # The file `tfgrec export` / `tfgrec demo` write in the base.
WRITTEN_BY = "# Written by tfgrec"  # First line of a models.config tfgrec may rewrite.
_LABEL = re.compile(r"[a-zA-Z0-9_]+")


class ModelConfigError(ValueError):
  """A models.config or batching parameters file that the server cannot serve as written."""


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """One model of a models.config, with its versions resolved on disk.

  Attributes:
    name: the model name clients put in `model_spec.name`.
    base_path: absolute folder holding the integer version folders.
    versions: the versions to load, ascending.
    labels: version label -> version (each one of `versions`).
    policy: 'latest', 'all' or 'specific' (the `model_version_policy` in force).
  """
  name: str
  base_path: str
  versions: Tuple[int, ...]
  labels: Dict[str, int]
  policy: str

  def version_path(self, version: int) -> str:
    """The SavedModel folder of `version`."""
    return os.path.join(self.base_path, str(version))


def _resolve(path: str, config) -> ModelEntry:
  where = f"{path}: model '{config.name}'"
  if config.model_platform not in ("", PLATFORM):
    raise ModelConfigError(f"{where}: model_platform {config.model_platform!r} is not served "
                           f"here; use model_platform: \"{PLATFORM}\"")
  if not config.base_path:
    raise ModelConfigError(f"{where} has no base_path")
  base = config.base_path
  if not os.path.isabs(base):
    base = os.path.join(os.path.dirname(os.path.abspath(path)), base)
  base = os.path.normpath(base)
  if not os.path.isdir(base):
    raise ModelConfigError(f"{where}: base_path {base} does not exist (export a model there with "
                           f"`tfgrec export --base {os.path.dirname(base)} --name {config.name}`)")
  present = saved_models.version_folders(base)
  if not present:
    raise ModelConfigError(f"{where}: no versions under {base} (expected integer folders "
                           f"<base_path>/<version>/saved_model.pb)")
  policy = config.model_version_policy
  kind = policy.WhichOneof("policy_choice") or "latest"
  if kind == "all":
    versions = present
  elif kind == "specific":
    versions = sorted(set(policy.specific.versions))
    missing = [v for v in versions if v not in present]
    if not versions:
      raise ModelConfigError(f"{where}: model_version_policy specific lists no versions")
    if missing:
      raise ModelConfigError(f"{where}: model_version_policy specific versions {missing} not "
                             f"found under {base} (present: {present})")
  else:
    num = policy.latest.num_versions or 1
    versions = present[-num:]
  for version in versions:
    if not os.path.exists(os.path.join(base, str(version), "saved_model.pb")):
      raise ModelConfigError(f"{where}: version {version} at {os.path.join(base, str(version))} "
                             "has no saved_model.pb")
  labels = dict(sorted(config.version_labels.items()))
  for label, version in labels.items():
    if not _LABEL.fullmatch(label):
      raise ModelConfigError(f"{where}: version label {label!r} must match [a-zA-Z0-9_]+")
    if version not in versions:
      raise ModelConfigError(
          f"{where}: version label '{label}' points at version {version}, which is not loaded "
          f"(loaded versions: {versions}); a label may only point at a loaded version")
  return ModelEntry(name=config.name, base_path=base, versions=tuple(versions), labels=labels,
                    policy=kind)


def _parse(path: str, message):
  """Reads the text proto at `path` into `message` (FileNotFoundError when missing)."""
  with open(path, encoding="utf-8") as f:
    text = f.read()
  try:
    return text_format.Parse(text, message)
  except text_format.ParseError as e:
    raise ModelConfigError(
        f"{path} is not a {message.DESCRIPTOR.name} text proto: {e}") from e


def load_models_config(path: str) -> List[ModelEntry]:
  """Parses a models.config and resolves each model's versions and labels.

  Args:
    path: a `ModelServerConfig` text proto with a `model_config_list`.

  Returns:
    The models, in the file's order.

  Raises:
    FileNotFoundError: `path` does not exist.
    ModelConfigError: the file does not parse, lists no model or a model twice, or a model's
      base_path, versions or labels cannot be served (the message names file and model).
  """
  config = _parse(path, model_server_config_pb2.ModelServerConfig())
  if config.WhichOneof("config") != "model_config_list":
    raise ModelConfigError(f"{path}: expected a model_config_list (custom_model_config is not "
                           "supported)")
  entries, seen = [], set()
  for model in config.model_config_list.config:
    if not model.name:
      raise ModelConfigError(f"{path}: a model config has no name")
    if model.name in seen:
      raise ModelConfigError(f"{path}: model '{model.name}' is listed twice")
    seen.add(model.name)
    entries.append(_resolve(path, model))
  if not entries:
    raise ModelConfigError(f"{path} lists no model under model_config_list")
  return entries


def read_max_batch_size(path: str) -> Optional[int]:
  """`max_batch_size` of a TF Serving `BatchingParameters` text proto (None when unset).

  Raises:
    FileNotFoundError: `path` does not exist.
    ModelConfigError: the file does not parse as BatchingParameters, or max_batch_size < 1.
  """
  params = _parse(path, _protos.BatchingParameters())
  if not params.HasField("max_batch_size"):
    return None
  if params.max_batch_size.value < 1:
    raise ModelConfigError(f"{path}: max_batch_size must be >= 1, got "
                           f"{params.max_batch_size.value}")
  return int(params.max_batch_size.value)


def write_models_config(base: str, name: str, version: int, *, keep_foreign: bool = False
                        ) -> Optional[str]:
  """Writes <base>/models.config serving model `name` (base_path `name`, next to the file) at
  `version`, with the labels stable and canary on it; returns its path.

  keep_foreign: leave a models.config that tfgrec did not write (its first line is not
  WRITTEN_BY) as it is, and return None: a user's own file is theirs to edit.
  """
  from tfgrec import storage  # pylint: disable=g-import-not-at-top
  path = storage.join(base, MODELS_CONFIG)
  if keep_foreign and storage.exists(path) and not storage.read_text(path).startswith(
      WRITTEN_BY):
    return None
  storage.makedirs(base)
  storage.write_text(path, (
      f"{WRITTEN_BY}: serve with `tfgrec serve --models-config {path}`.\n"
      f'model_config_list {{\n  config {{\n    name: "{name}"\n    base_path: "{name}"\n'
      f'    model_platform: "{PLATFORM}"\n'
      f"    model_version_policy {{ specific {{ versions: {int(version)} }} }}\n"
      f'    version_labels {{ key: "stable" value: {int(version)} }}\n'
      f'    version_labels {{ key: "canary" value: {int(version)} }}\n  }}\n}}\n'))
  return path
