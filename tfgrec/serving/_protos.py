"""Message classes built at runtime for protos that no installed package ships.

`grpcio-health-checking` would bring the gRPC health protos, but it needs protobuf 7, which
TensorFlow and Beam cannot take; `tensorflow-serving-api` lacks `session_bundle_config.proto`
(home of `BatchingParameters`). Both are rebuilt here from `FileDescriptorProto`s in a private
descriptor pool, so they never clash with a generated module of the same name:

  request = HealthCheckRequest(service="tfgrec")
  HealthCheckResponse.SERVING            # 1
  text_format.Parse("max_batch_size { value: 64 }", BatchingParameters())

The health messages are wire-compatible with `grpc/health/v1/health.proto` (same package,
names and field numbers), so `grpc_health_probe`, Kubernetes gRPC probes and other clients of the
standard health service talk to our server unchanged.
"""
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

_Field = descriptor_pb2.FieldDescriptorProto
_POOL = descriptor_pool.DescriptorPool()

HEALTH_SERVICE = "grpc.health.v1.Health"
STATUS_NAMES = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")


def _field(message, name: str, number: int, kind: int, type_name: str = "",
           repeated: bool = False) -> None:
  field = message.field.add(name=name, number=number, type=kind, json_name=name,
                            label=_Field.LABEL_REPEATED if repeated else _Field.LABEL_OPTIONAL)
  if type_name:
    field.type_name = type_name


def _health_file() -> descriptor_pb2.FileDescriptorProto:
  """grpc/health/v1/health.proto: HealthCheckRequest, HealthCheckResponse, service Health."""
  f = descriptor_pb2.FileDescriptorProto(name="grpc/health/v1/health.proto",
                                         package="grpc.health.v1", syntax="proto3")
  request = f.message_type.add(name="HealthCheckRequest")
  _field(request, "service", 1, _Field.TYPE_STRING)
  response = f.message_type.add(name="HealthCheckResponse")
  enum = response.enum_type.add(name="ServingStatus")
  for number, name in enumerate(STATUS_NAMES):
    enum.value.add(name=name, number=number)
  _field(response, "status", 1, _Field.TYPE_ENUM,
         ".grpc.health.v1.HealthCheckResponse.ServingStatus")
  service = f.service.add(name="Health")
  for method, streaming in (("Check", False), ("Watch", True)):
    service.method.add(name=method, input_type=".grpc.health.v1.HealthCheckRequest",
                       output_type=".grpc.health.v1.HealthCheckResponse",
                       server_streaming=streaming)
  return f


def _batching_file() -> descriptor_pb2.FileDescriptorProto:
  """The `BatchingParameters` fields of TF Serving's session_bundle_config.proto.

  Only the text format matters here (fields are matched by name), so the wrapper type is our own
  `Int64Value { int64 value = 1; }` rather than google/protobuf/wrappers.proto.
  """
  f = descriptor_pb2.FileDescriptorProto(name="tfgrec/serving/batching_parameters.proto",
                                         package="tfgrec.serving.private", syntax="proto3")
  for wrapper, kind in (("Int64Value", _Field.TYPE_INT64), ("StringValue", _Field.TYPE_STRING),
                        ("BoolValue", _Field.TYPE_BOOL)):
    _field(f.message_type.add(name=wrapper), "value", 1, kind)
  params = f.message_type.add(name="BatchingParameters")
  wrapped = (("max_batch_size", "Int64Value"), ("batch_timeout_micros", "Int64Value"),
             ("max_enqueued_batches", "Int64Value"), ("num_batch_threads", "Int64Value"),
             ("thread_pool_name", "StringValue"), ("enable_large_batch_splitting", "BoolValue"),
             ("max_execution_batch_size", "Int64Value"))
  for number, (name, wrapper) in enumerate(wrapped, start=1):
    _field(params, name, number, _Field.TYPE_MESSAGE, f".tfgrec.serving.private.{wrapper}")
  _field(params, "allowed_batch_sizes", 20, _Field.TYPE_INT64, repeated=True)
  _field(params, "pad_variable_length_inputs", 21, _Field.TYPE_BOOL)
  return f


_POOL.Add(_health_file())
_POOL.Add(_batching_file())

HealthCheckRequest = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest"))
HealthCheckResponse = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse"))
BatchingParameters = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("tfgrec.serving.private.BatchingParameters"))
