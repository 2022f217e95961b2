"""A local stand-in for TensorFlow Serving: the same gRPC protos, for machines without it.

It reads the same `models.config` (and, optionally, the same batching parameters file), loads
each listed SavedModel version with `tf.saved_model.load`, and answers
`tensorflow.serving.PredictionService` (Predict, GetModelMetadata), `ModelService`
(GetModelStatus) and the standard health service `grpc.health.v1.Health`, with TF Serving's
status codes and messages for bad requests. Clients cannot tell the two apart, so the same client
code (`tfgrec.serving.Client`, or any TF Serving client) runs against both:

  with LocalModelServer("serving/models.config", port=0) as server:
    client = Client(server.address, model_name="tfgrec")
    client.recommend(["u1"], [["i3", "i7"]])

What it does not do: request batching (requests run one by one; only the `max_batch_size`
limit is enforced), Classify / Regress / MultiInference, config reloading, and the REST API.
"""
import concurrent.futures
import errno
import logging
from typing import List, Optional

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tfgrec import _ports
from tfgrec.serving import _health
from tfgrec.serving import _servables
from tfgrec.serving import model_config

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 << 20
_SERVICES = ("tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")


class ServerError(OSError):
  """The server cannot start (its address cannot be bound, a model does not load) or was used
  out of order."""


def _address(host: str, port: int) -> str:
  return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict and GetModelMetadata; Classify, Regress, MultiInference stay UNIMPLEMENTED."""

  def __init__(self, registry: _servables.Registry):
    self._registry = registry

  def Predict(self, request, context):  # pylint: disable=invalid-name
    return _answer(self._registry.predict, request, context)

  def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
    return _answer(self._registry.metadata, request, context)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
  """GetModelStatus; HandleReloadConfigRequest stays UNIMPLEMENTED (restart to reload)."""

  def __init__(self, registry: _servables.Registry):
    self._registry = registry

  def GetModelStatus(self, request, context):  # pylint: disable=invalid-name
    return _answer(self._registry.status, request, context)


def _answer(call, request, context):
  """`call(request)`, with faults (and anything unexpected) turned into gRPC statuses."""
  try:
    return call(request)
  except _servables.Fault as fault:
    context.abort(fault.code, fault.message)
  except Exception as e:  # pylint: disable=broad-except  # The server keeps serving.
    logger.exception("unexpected error in %s", type(request).__name__)
    context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")


class LocalModelServer:
  """Serves the models of a TF Serving `models.config` over gRPC (see the module docstring).

  Args:
    models_config_path: a `ModelServerConfig` text proto (see `model_config`).
    host: the address to bind; 127.0.0.1 keeps the server off the network.
    port: the gRPC port (TF Serving's default 8500); 0 picks a free one (see `port`).
    max_batch_size: refuse requests with more rows than this, as TF Serving's batching does.
    batching_parameters_path: read max_batch_size from a TF Serving batching parameters file
      instead (not both).
    workers: threads answering requests (an open health Watch holds one).

  Raises:
    FileNotFoundError, model_config.ModelConfigError: from reading the config files.
    ValueError: a bad argument.
  """

  def __init__(self, models_config_path: str, *, host: str = "127.0.0.1", port: int = 8500,
               max_batch_size: Optional[int] = None,
               batching_parameters_path: Optional[str] = None, workers: int = 8):
    if not 0 <= port <= 65535:
      raise ValueError(f"port must be in [0, 65535], got {port}")
    if workers < 1:
      raise ValueError(f"workers must be >= 1, got {workers}")
    if max_batch_size is not None and batching_parameters_path is not None:
      raise ValueError("pass max_batch_size or batching_parameters_path, not both")
    if batching_parameters_path is not None:
      max_batch_size = model_config.read_max_batch_size(batching_parameters_path)
    if max_batch_size is not None and max_batch_size < 1:
      raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
    self.host = host
    self.models: List[model_config.ModelEntry] = model_config.load_models_config(
        models_config_path)
    self.max_batch_size = max_batch_size
    self._port = port
    self._workers = workers
    self._server: Optional[grpc.Server] = None
    self._health = _health.HealthServicer()

  @property
  def port(self) -> int:
    """The bound port (the one picked when constructed with port 0 and started)."""
    return self._port

  @property
  def address(self) -> str:
    """host:port, as clients dial it."""
    return _address(self.host, self._port)

  def start(self) -> "LocalModelServer":
    """Binds the port, loads every model version, and starts answering. Returns self.

    Raises:
      ServerError: the port cannot be bound (in use, or the host is not this machine's), a
        model version does not load, or the server was started before.
    """
    if self._server is not None:
      raise ServerError(f"the server on {self.address} was started already")
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="tfgrec-serve"),
        options=[("grpc.so_reuseport", 0),  # Else a second server would share a busy port.
                 ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
    address = _address(self.host, self._port)
    try:
      bound = server.add_insecure_port(address)
    except RuntimeError:  # grpcio >= 1.60 raises where older releases returned 0.
      bound = 0
    if not bound:
      server.stop(None)
      if _ports.in_use(self.host, self._port):
        error = ServerError(f"port {self._port} on {self.host} is in use; pass --port (another "
                            "TF Serving or `tfgrec serve` may hold it)")
        error.errno = errno.EADDRINUSE
      else:
        error = ServerError(f"cannot bind {address}: is {self.host} an address of this machine? "
                            "(pass --host)")
        error.errno = errno.EADDRNOTAVAIL
      raise error
    self._port = bound
    registry = _servables.Registry(self.models, self.max_batch_size)
    try:
      registry.load()
    except _servables.LoadError as e:
      server.stop(None)
      raise ServerError(str(e)) from e
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _PredictionService(registry), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(registry), server)
    server.add_generic_rpc_handlers((self._health.handler(),))
    for service in ("",) + _SERVICES + tuple(m.name for m in self.models):
      self._health.set(service, _health.SERVING)
    server.start()
    self._server = server
    logger.info("serving %s on %s (gRPC: TF Serving's PredictionService and ModelService, "
                "grpc.health.v1.Health)", ", ".join(m.name for m in self.models), self.address)
    return self

  def stop(self, grace: Optional[float] = 5.0) -> None:
    """Stops accepting requests, lets those in flight finish for up to `grace` seconds.

    Health turns NOT_SERVING first. Safe to call twice, or before start.
    """
    if self._server is None:
      return
    self._health.shutdown()
    done = self._server.stop(grace)
    done.wait(None if grace is None else grace + 5.0)
    logger.info("stopped serving on %s", self.address)

  def wait(self, timeout: Optional[float] = None) -> bool:
    """Blocks until the server stops or `timeout` passes; True when it stopped."""
    if self._server is None:
      raise ServerError("the server was not started")
    return self._server.wait_for_termination(timeout)

  def __enter__(self) -> "LocalModelServer":
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()
