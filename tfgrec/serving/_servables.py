"""Loaded model versions and the three TF Serving calls on them, free of any gRPC transport.

  registry = Registry(load_models_config("models.config"), max_batch_size=64)
  registry.load()
  response = registry.predict(predict_request)   # or raises Fault(code, message)

Each fault carries the status code and, as near as we know them, the message TF Serving 2.x
gives for the same request (tensorflow_serving/servables/tensorflow/predict_util.cc,
get_model_metadata_impl.cc, get_model_status_impl.cc, model_servers/server_core.cc, the batching
session), so a client written against this server sees what it will see in production.
"""
import logging
from typing import Dict, List, Optional

import grpc

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import predict_pb2

from tfgrec import saved_models
from tfgrec import storage
from tfgrec.serving import model_config

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_DEF = "signature_def"
_CODES = {code.value[0]: code for code in grpc.StatusCode}
INVALID = grpc.StatusCode.INVALID_ARGUMENT


class Fault(Exception):
  """A request TF Serving would refuse: a gRPC status code and its message."""

  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code = code
    self.message = message


class LoadError(RuntimeError):
  """A listed model version that does not load."""


def _keys(names) -> str:
  return ",".join(sorted(names))


def _shape(shape) -> str:
  """[2,?] style, as TensorFlow prints partial shapes."""
  dims = tf.TensorShape(shape)
  if dims.rank is None:
    return "<unknown>"
  return "[" + ",".join("?" if d is None else str(d) for d in dims.as_list()) + "]"


class Servable:
  """One loaded version of a model: its signature functions and SignatureDefs."""

  def __init__(self, name: str, version: int, path: str):
    self.name = name
    self.version = version
    self.path = path
    self.module = saved_models.load(path, tags=["serve"])
    self.signatures = dict(self.module.signatures)
    saved = saved_model_pb2.SavedModel.FromString(
        storage.read_bytes(storage.join(path, saved_models.SAVED_MODEL_FILE)))
    graphs = [g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags]
    self.signature_defs = dict(graphs[0].signature_def) if graphs else {}


class Registry:
  """All models of a models.config, loaded, and the Predict / metadata / status logic.

  Args:
    entries: the models (see `model_config.load_models_config`).
    max_batch_size: refuse requests with more rows than this (TF Serving's batching limit);
      None: no limit.
  """

  def __init__(self, entries: List[model_config.ModelEntry], max_batch_size: Optional[int] = None):
    self.entries = {entry.name: entry for entry in entries}
    self.max_batch_size = max_batch_size
    self.servables: Dict[str, Dict[int, Servable]] = {}

  def load(self) -> None:
    """Loads every listed version (one log line each).

    Raises:
      LoadError: a version does not load (the message names model, version and folder).
    """
    for entry in self.entries.values():
      versions = {}
      for version in entry.versions:
        try:
          versions[version] = Servable(entry.name, version, entry.version_path(version))
        except Exception as e:  # pylint: disable=broad-except  # Reported with the model named.
          raise LoadError(f"cannot load model {entry.name} version {version} from "
                          f"{entry.version_path(version)}: {type(e).__name__}: {e}") from e
        labels = [k for k, v in entry.labels.items() if v == version]
        logger.info("loaded model %s version %d from %s (signatures: %s%s)", entry.name, version,
                    entry.version_path(version), ", ".join(sorted(versions[version].signatures)),
                    f"; labels: {', '.join(labels)}" if labels else "")
      self.servables[entry.name] = versions

  def resolve(self, spec) -> Servable:
    """The servable a ModelSpec asks for: a version, a label's version, or the latest."""
    name = spec.name
    choice = spec.WhichOneof("version_choice")
    versions = self.servables.get(name)
    if choice == "version_label":
      entry = self.entries.get(name)
      if entry is None or spec.version_label not in entry.labels:
        raise Fault(INVALID, f"Unrecognized servable version label: {spec.version_label}")
      version = entry.labels[spec.version_label]
    elif choice == "version":
      version = spec.version.value
    else:
      if not versions:
        raise Fault(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
      return versions[max(versions)]
    if not versions or version not in versions:
      raise Fault(grpc.StatusCode.NOT_FOUND,
                  f"Servable not found for request: Specific({name}, {version})")
    return versions[version]

  def _inputs(self, request, fn) -> Dict[str, tf.Tensor]:
    """Checks the request's inputs against the signature; returns them as tensors."""
    specs = fn.structured_input_signature[1]
    sent = set(request.inputs)
    if len(sent) != len(specs):
      raise Fault(INVALID, f"input size does not match signature: {len(sent)}!={len(specs)} "
                  f"len({{{_keys(sent)}}}) != len({{{_keys(specs)}}}). "
                  f"Sent extra: {{{_keys(sent - set(specs))}}}. "
                  f"Missing but required: {{{_keys(set(specs) - sent)}}}.")
    for alias in sorted(sent):
      if alias not in specs:
        raise Fault(INVALID, f"input tensor alias not found in signature: {alias}. Inputs "
                    f"expected to be in the set {{{_keys(specs)}}}.")
    tensors, rows = {}, {}
    for alias in sorted(specs):
      spec, proto = specs[alias], request.inputs[alias]
      try:
        dtype = tf.as_dtype(proto.dtype)
        array = tf.make_ndarray(proto)
      except Exception:  # pylint: disable=broad-except  # Any malformed TensorProto.
        raise Fault(INVALID, f"tensor parsing error: {alias}") from None
      if dtype != spec.dtype:
        raise Fault(INVALID, f"Expects input \"{alias}\" to be {spec.dtype.name} but "
                    f"{dtype.name} is provided")
      if not spec.shape.is_compatible_with(array.shape):
        raise Fault(INVALID, f"Expects input \"{alias}\" to have shape {_shape(spec.shape)} "
                    f"but {_shape(array.shape)} is provided")
      if array.ndim:
        rows[alias] = array.shape[0]
      tensors[alias] = tf.constant(array, dtype=dtype)
    if len(set(rows.values())) > 1:
      sizes = ", ".join(f"{alias}: {n}" for alias, n in rows.items())
      raise Fault(INVALID, "Batching Run() input tensors must have equal 0th-dimension size "
                  f"({sizes})")
    batch = max(rows.values(), default=0)
    if self.max_batch_size is not None and batch > self.max_batch_size:
      raise Fault(INVALID, f"Task size {batch} is larger than maximum input batch size "
                  f"{self.max_batch_size}")
    return tensors

  def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """PredictionService.Predict. Raises Fault."""
    if not request.HasField("model_spec"):
      raise Fault(INVALID, "Missing ModelSpec")
    servable = self.resolve(request.model_spec)
    key = request.model_spec.signature_name or DEFAULT_SIGNATURE
    fn = servable.signatures.get(key)
    if fn is None:
      raise Fault(grpc.StatusCode.FAILED_PRECONDITION, f"Serving signature key \"{key}\" not "
                  "found.")
    output_names = set(fn.structured_outputs)
    wanted = list(request.output_filter) or sorted(output_names)
    for alias in request.output_filter:
      if alias not in output_names:
        raise Fault(INVALID, f"output tensor alias not found in signature: {alias} Outputs "
                    f"expected to be in the set {{{_keys(output_names)}}}.")
    if len(set(wanted)) != len(wanted):
      duplicate = next(a for a in wanted if wanted.count(a) > 1)
      raise Fault(INVALID, f"duplicate output tensor alias: {duplicate}")
    inputs = self._inputs(request, fn)
    try:
      outputs = fn(**inputs)
    except tf.errors.OpError as e:
      raise Fault(_CODES.get(e.error_code, grpc.StatusCode.INTERNAL), e.message) from None
    except Exception as e:  # pylint: disable=broad-except  # Reported to the client.
      raise Fault(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}") from None
    response = predict_pb2.PredictResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = key
    for alias in wanted:
      value = outputs[alias]
      response.outputs[alias].CopyFrom(tf.make_tensor_proto(value.numpy(), dtype=value.dtype))
    return response

  def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest
               ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """PredictionService.GetModelMetadata ("signature_def" only, as TF Serving). Raises Fault."""
    if not request.HasField("model_spec"):
      raise Fault(INVALID, "Missing ModelSpec")
    if not request.metadata_field:
      raise Fault(INVALID, "GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
      if field != SIGNATURE_DEF:
        raise Fault(INVALID, f"Metadata field {field} is not supported")
    servable = self.resolve(request.model_spec)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in servable.signature_defs.items():
      signature_map.signature_def[key].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF].Pack(signature_map)
    return response

  def status(self, request: get_model_status_pb2.GetModelStatusRequest
             ) -> get_model_status_pb2.GetModelStatusResponse:
    """ModelService.GetModelStatus: every loaded version AVAILABLE, newest first. Raises Fault."""
    if not request.HasField("model_spec"):
      raise Fault(INVALID, "Missing ModelSpec")
    spec = request.model_spec
    versions = self.servables.get(spec.name)
    if not versions:
      raise Fault(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
    wanted = sorted(versions, reverse=True)
    if spec.WhichOneof("version_choice") == "version":
      if spec.version.value not in versions:
        raise Fault(grpc.StatusCode.NOT_FOUND,
                    f"Could not find version {spec.version.value} of model {spec.name}")
      wanted = [spec.version.value]
    elif spec.WhichOneof("version_choice") == "version_label":
      wanted = [self.resolve(spec).version]
    response = get_model_status_pb2.GetModelStatusResponse()
    for version in wanted:
      status = response.model_version_status.add()
      status.version = version
      status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
      status.status.error_code = 0  # OK
    return response
