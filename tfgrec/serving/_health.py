"""The standard gRPC health service (`grpc.health.v1.Health`: Check and Watch), without the
`grpcio-health-checking` package (see `_protos`).

  health = HealthServicer()
  server.add_generic_rpc_handlers((health.handler(),))
  health.set("", SERVING); health.set("tfgrec", SERVING)
  ...
  health.shutdown()       # everything NOT_SERVING, open Watch streams end

As in gRPC's reference servicer, Check on an unregistered service answers NOT_FOUND, and Watch
on one streams SERVICE_UNKNOWN until it is registered.
"""
import threading
from typing import Dict

import grpc

from tfgrec.serving import _protos

SERVING = _protos.HealthCheckResponse.SERVING
NOT_SERVING = _protos.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = _protos.HealthCheckResponse.SERVICE_UNKNOWN

_POLL_S = 1.0  # A Watch re-checks whether its client is gone at least this often.


class HealthServicer:
  """Serving status per service name ('' is the whole server)."""

  def __init__(self):
    self._status: Dict[str, int] = {}
    self._changed = threading.Condition()
    self._closed = False

  def set(self, service: str, status: int) -> None:
    """Sets `service`'s status (ignored after `shutdown`, like gRPC's graceful shutdown)."""
    with self._changed:
      if not self._closed:
        self._status[service] = status
        self._changed.notify_all()

  def shutdown(self) -> None:
    """Every service NOT_SERVING from now on; open Watch streams send it and end."""
    with self._changed:
      self._status = {service: NOT_SERVING for service in self._status}
      self._closed = True
      self._changed.notify_all()

  def check(self, request, context):
    with self._changed:
      status = self._status.get(request.service)
    if status is None:
      context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service: {request.service!r}")
    return _protos.HealthCheckResponse(status=status)

  def watch(self, request, context):
    def wake():
      with self._changed:
        self._changed.notify_all()

    context.add_callback(wake)
    last = None
    while True:
      with self._changed:
        while True:
          status = self._status.get(request.service, SERVICE_UNKNOWN)
          if status != last or self._closed or not context.is_active():
            break
          self._changed.wait(_POLL_S)
        closed = self._closed
      if not context.is_active():
        return
      if status != last:
        last = status
        yield _protos.HealthCheckResponse(status=status)
      if closed:
        return

  def handler(self) -> grpc.GenericRpcHandler:
    """The handler to pass to `grpc.Server.add_generic_rpc_handlers`."""
    kwargs = dict(request_deserializer=_protos.HealthCheckRequest.FromString,
                  response_serializer=_protos.HealthCheckResponse.SerializeToString)
    return grpc.method_handlers_generic_handler(_protos.HEALTH_SERVICE, {
        "Check": grpc.unary_unary_rpc_method_handler(self.check, **kwargs),
        "Watch": grpc.unary_stream_rpc_method_handler(self.watch, **kwargs),
    })
