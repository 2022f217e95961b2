"""A gRPC client for TF Serving (and for `tfgrec serve`, its local stand-in) and tfgrec's models.

  with Client("localhost:8500", model_name="tfgrec") as client:
    client.recommend(["u1", "new-user"], [[], ["i3", "i7"]], label="canary")
    # [{'user_id': 'u1', 'items': ['i9', ...], 'scores': [0.93, ...]}, ...]
    client.rank(["u1"], [["i1", "i2"]])
    client.similar_items(["i3"])
    client.predict({"user_id": np.array(["u1"], object), "history": np.zeros([1, 0], object)})
    client.metadata()   # {'recommend': {'inputs': {'user_id': {'dtype': 'string', ...}}, ...}}
    client.status()     # [{'version': 2, 'state': 'AVAILABLE', 'error_code': 'OK', ...}]
  health_check("localhost:8500")   # 'SERVING'

Every call has a deadline (`timeout`). The channel's service config retries calls that fail
with UNAVAILABLE (server restarting, connection refused) with exponential backoff; with
`wait_for_ready=True` a call instead waits, up to its deadline, for the server to come up. Any
failure raises `ServingError`, whose message names the status code, the server and TF Serving's
details.

The exported model's signatures (tfgrec/export/serving_module.py):
  recommend(user_id [B] string, history [B, H] string) -> item_ids [B, K], scores [B, K]
  rank(user_id [B], item_ids [B, N]) -> scores [B, N]
  similar_items(item_id [B]) -> item_ids [B, K], scores [B, K]
  encode_items(title [B] string, categories [B, C] string, attributes [B, A] string)
      -> embedding [B, D]
"""
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import grpc
import numpy as np

import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tfgrec.serving import _protos

MAX_MESSAGE_BYTES = 64 << 20  # gRPC's default receive limit is 4 MB.
MAX_RETRIES = 4  # gRPC caps a retry policy's maxAttempts at 5.
Rows = Sequence[Sequence[str]]


class ServingError(Exception):
  """A call to the model server failed.

  Attributes:
    code: the `grpc.StatusCode`.
    details: the server's message (TF Serving's own for bad requests).
    target: the server's address.
  """

  def __init__(self, code: grpc.StatusCode, details: str, target: str = ""):
    self.code = code
    self.details = details or ""
    self.target = target
    where = f" from {target}" if target else ""
    super().__init__(f"{code.name}{where}: {self.details}")


def _service_config(retries: int) -> str:
  """The channel's service config: retry UNAVAILABLE with exponential backoff."""
  if not retries:
    return json.dumps({"methodConfig": []})
  return json.dumps({"methodConfig": [{
      "name": [{"service": "tensorflow.serving.PredictionService"},
               {"service": "tensorflow.serving.ModelService"}],
      "retryPolicy": {
          "maxAttempts": retries + 1,
          "initialBackoff": "0.1s",
          "maxBackoff": "2s",
          "backoffMultiplier": 2,
          "retryableStatusCodes": ["UNAVAILABLE"],
      },
  }]})


def _channel_options(retries: int):
  return [("grpc.enable_retries", 1 if retries else 0),
          ("grpc.service_config", _service_config(retries)),
          ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
          ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
          # Reconnect soon after a server (re)starts; gRPC's default first wait is 1 s.
          ("grpc.initial_reconnect_backoff_ms", 200),
          ("grpc.max_reconnect_backoff_ms", 5000)]


def _tensor_proto(value) -> Any:
  """A TensorProto of a numpy array or (nested) list; str/bytes/object become DT_STRING."""
  array = np.asarray(value)
  if array.dtype.kind in "USO":
    return tf.make_tensor_proto(array, dtype=tf.string)
  return tf.make_tensor_proto(array)


def _strings(array: np.ndarray) -> List:
  """Nested lists of str from a numpy array of bytes."""
  return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array).tolist()


def _pad(rows: Rows, width: int = 0) -> np.ndarray:
  """[B, max(width, longest row)] string array, '' after each row's own items (the model's
  padding)."""
  width = max([len(r) for r in rows] + [width])
  out = np.full([len(rows), width], "", dtype=object)
  for i, row in enumerate(rows):
    out[i, :len(row)] = list(row)
  return out


def _attribute_rows(rows: Sequence[Any]) -> List[List[str]]:
  """Per row, "column=value" strings from {column: value} (None values left out) or strings."""
  return [[f"{k}={v}" for k, v in sorted(row.items()) if v is not None]
          if isinstance(row, dict) else list(row) for row in rows]


def _as_list(values: Union[str, Sequence[str]]) -> List[str]:
  return [values] if isinstance(values, str) else list(values)


def _health_check_method(channel: grpc.Channel):
  """grpc.health.v1.Health/Check on `channel`, with the messages of `_protos`."""
  return channel.unary_unary(f"/{_protos.HEALTH_SERVICE}/Check",
                             request_serializer=_protos.HealthCheckRequest.SerializeToString,
                             response_deserializer=_protos.HealthCheckResponse.FromString)


def decode_outputs(response: predict_pb2.PredictResponse) -> Dict[str, np.ndarray]:
  """A PredictResponse's outputs as numpy arrays (strings as bytes objects)."""
  return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def _tensor_info(info) -> Dict[str, Any]:
  shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
  return {"dtype": tf.as_dtype(info.dtype).name, "shape": shape}


class Client:
  """One model on a TF Serving (or `tfgrec serve`) gRPC endpoint; see the module docstring.

  Args:
    target: host:port of the server's gRPC port.
    model_name: the `model_spec.name` to ask for.
    timeout: the deadline of each call, in seconds (retries included).
    retries: how often to retry a call that fails with UNAVAILABLE (0 to 4).
    wait_for_ready: let a call wait, up to its deadline, for an unreachable server.
    history_width, categories_width: `history` and `categories` are sent at least this wide
      ('' padding). With TF Serving's server-side batching, requests of equal widths batch
      without being padded by the server, which pads with a request's first element: harmless
      for one-user requests (the model counts a repeated item once), but it would add the
      first user's item to the other users of a multi-user request.
  """

  def __init__(self, target: str, model_name: str = "tfgrec", *, timeout: float = 5.0,
               retries: int = 3, wait_for_ready: bool = False, history_width: int = 50,
               categories_width: int = 8):
    if timeout <= 0:
      raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if not 0 <= retries <= MAX_RETRIES:
      raise ValueError(f"retries must be in [0, {MAX_RETRIES}] (gRPC allows at most 5 "
                       f"attempts), got {retries}")
    self.target = target
    self.model_name = model_name
    self.timeout = timeout
    self.retries = retries
    self.wait_for_ready = wait_for_ready
    self.history_width = history_width
    self.categories_width = categories_width
    self._channel = grpc.insecure_channel(target, options=_channel_options(retries))
    self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
    self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
    self._health = _health_check_method(self._channel)

  def _call(self, method, request):
    try:
      return method(request, timeout=self.timeout, wait_for_ready=self.wait_for_ready)
    except grpc.RpcError as e:
      raise ServingError(e.code(), e.details(), self.target) from None

  def _spec(self, spec, version: Optional[int], label: Optional[str]) -> None:
    if version is not None and label is not None:
      raise ValueError(f"pass a version or a label, not both (got {version} and {label!r})")
    spec.name = self.model_name
    if version is not None:
      spec.version.value = int(version)
    elif label is not None:
      spec.version_label = label

  def predict_response(self, inputs: Mapping[str, Any], signature: str = "serving_default",
                       version: Optional[int] = None, label: Optional[str] = None,
                       output_filter: Optional[Sequence[str]] = None
                       ) -> predict_pb2.PredictResponse:
    """Predict, returning the raw PredictResponse (its model_spec says which version answered).

    Args: as `predict`.
    """
    request = predict_pb2.PredictRequest()
    self._spec(request.model_spec, version, label)
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
      request.inputs[name].CopyFrom(_tensor_proto(value))
    request.output_filter.extend(output_filter or [])
    return self._call(self._predictions.Predict, request)

  def predict(self, inputs: Mapping[str, Any], signature: str = "serving_default",
              version: Optional[int] = None, label: Optional[str] = None,
              output_filter: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Runs a signature on the server.

    Args:
      inputs: input name -> numpy array or nested list. Strings (str, bytes or object arrays)
        are sent as DT_STRING; other arrays keep their numpy dtype (pass np.float32 arrays
        where the signature wants float).
      signature: the signature name ('' means serving_default, as in TF Serving).
      version: ask for this model version (default: the latest loaded one).
      label: ask for the version of this label (e.g. 'stable', 'canary').
      output_filter: only these outputs.

    Returns:
      Output name -> numpy array (strings as bytes objects).

    Raises:
      ServingError: the server refused or could not be reached before the deadline.
      ValueError: both version and label given.
    """
    return decode_outputs(self.predict_response(inputs, signature, version, label,
                                                output_filter))

  def recommend(self, user_ids: Union[str, Sequence[str]], histories: Optional[Rows] = None, *,
                label: Optional[str] = None, version: Optional[int] = None,
                signature: str = "recommend", now: Optional[Sequence[int]] = None,
                user_attributes: Optional[Sequence[Any]] = None) -> List[Dict[str, Any]]:
    """Top items per user, seen items excluded.

    Args:
      user_ids: [B] user ids (a single id is one user).
      histories: per user, recently interacted item ids, most recent first (any lengths; padded
        with ''). Unknown users with a history are embedded from it; None: no histories.
      label, version: which model version answers (see `predict`).
      signature: 'recommend' or 'serving_default'.
      now: per user, the reference time in epoch seconds (-1: the default). Asks the two-stage
        model's recommend_at signature.
      user_attributes: per user, attributes of users the model does not know, as
        {column: value} (e.g. {"age_group": "25-34"}) or "column=value" strings; read when the
        model's graph has user attributes. Asks recommend_at too.

    Returns:
      Per user, {'user_id', 'items': [K] item ids, 'scores': [K] floats}, best first.
    """
    users = _as_list(user_ids)
    single = isinstance(user_ids, str)
    if histories is None:
      histories = [[] for _ in users]
    elif single:
      histories = [histories]
    if len(histories) != len(users):
      raise ValueError(f"got {len(users)} user ids but {len(histories)} histories")
    inputs = {"user_id": np.array(users, dtype=object),
              "history": _pad(histories, self.history_width)}
    if now is not None or user_attributes is not None:
      signature = "recommend_at"
      now = [-1] * len(users) if now is None else ([now] if np.isscalar(now) else list(now))
      if user_attributes is None:
        user_attributes = [[] for _ in users]
      elif single:
        user_attributes = [user_attributes]
      for what, rows in (("now values", now), ("attribute rows", user_attributes)):
        if len(rows) != len(users):
          raise ValueError(f"got {len(users)} user ids but {len(rows)} {what}")
      inputs.update(history_time=np.full(inputs["history"].shape, -1, np.int64),
                    now=np.asarray(now, np.int64),
                    user_attributes=_pad(_attribute_rows(user_attributes), 1))
    out = self.predict(inputs, signature, version, label)
    items, scores = _strings(out["item_ids"]), out["scores"].tolist()
    return [{"user_id": u, "items": i, "scores": s} for u, i, s in zip(users, items, scores)]

  def rank(self, user_ids: Union[str, Sequence[str]], item_ids: Rows, *,
           label: Optional[str] = None, version: Optional[int] = None) -> List[Dict[str, Any]]:
    """Scores of given items per user, in the given order (unknown items score -1e9).

    Args:
      user_ids: [B] user ids.
      item_ids: per user, the candidate items (any lengths).

    Returns:
      Per user, {'user_id', 'items': the candidates, 'scores': their scores}.
    """
    users = _as_list(user_ids)
    if isinstance(user_ids, str) and item_ids and isinstance(item_ids[0], str):
      item_ids = [item_ids]
    if len(item_ids) != len(users):
      raise ValueError(f"got {len(users)} user ids but {len(item_ids)} candidate lists")
    out = self.predict({"user_id": np.array(users, dtype=object), "item_ids": _pad(item_ids)},
                       "rank", version, label)
    return [{"user_id": u, "items": list(c), "scores": s[:len(c)]}
            for u, c, s in zip(users, item_ids, out["scores"].tolist())]

  def similar_items(self, item_ids: Union[str, Sequence[str]], *, label: Optional[str] = None,
                    version: Optional[int] = None) -> List[Dict[str, Any]]:
    """Nearest items per item (the item itself excluded).

    Returns:
      Per item, {'item_id', 'items': [K] item ids, 'scores': [K] floats}, best first.
    """
    items = _as_list(item_ids)
    out = self.predict({"item_id": np.array(items, dtype=object)}, "similar_items", version,
                       label)
    return [{"item_id": i, "items": n, "scores": s}
            for i, n, s in zip(items, _strings(out["item_ids"]), out["scores"].tolist())]

  def _new_items(self, titles, categories, attributes) -> Dict[str, np.ndarray]:
    """encode_items's inputs; attributes per item: {column: value} or ["column=value"]."""
    titles = _as_list(titles)
    categories = [[] for _ in titles] if categories is None else categories
    attributes = [[] for _ in titles] if attributes is None else attributes
    for what, rows in (("category lists", categories), ("attribute rows", attributes)):
      if len(rows) != len(titles):
        raise ValueError(f"got {len(titles)} titles but {len(rows)} {what}")
    return {"title": np.array(titles, dtype=object),
            "categories": _pad(categories, self.categories_width),
            "attributes": _pad(_attribute_rows(attributes), 1)}

  def encode_users(self, attributes: Sequence[Any], *, label: Optional[str] = None,
                   version: Optional[int] = None) -> np.ndarray:
    """Query embeddings of users the model does not know, from their attributes: [B, D] float
    (zero rows where no value is known to the model).

    Args:
      attributes: per user, {column: value} (e.g. {"age_group": "25-34"}) or "column=value"
        strings; columns the model does not know are ignored. The model's graph must have user
        attributes (else the server has no encode_users signature).
    """
    out = self.predict({"attributes": _pad(_attribute_rows(attributes), 1)}, "encode_users",
                       version, label, output_filter=["embedding"])
    return out["embedding"]

  def encode_items(self, titles: Sequence[str], categories: Optional[Rows] = None,
                   attributes: Optional[Sequence[Any]] = None, *,
                   label: Optional[str] = None, version: Optional[int] = None) -> np.ndarray:
    """Embeddings of (possibly new) items from their text and attributes: [B, D] float.

    Args:
      titles: [B] item titles.
      categories: per item, its category names (any lengths; padded with '').
      attributes: per item, its attributes as {column: value} (e.g. {"year": 2019}) or
        "column=value" strings; columns the model does not know are ignored.
    """
    out = self.predict(self._new_items(titles, categories, attributes), "encode_items",
                       version, label)
    return out["embedding"]

  def nearest_to_new_items(self, titles: Sequence[str], categories: Optional[Rows] = None,
                           attributes: Optional[Sequence[Any]] = None, *,
                           label: Optional[str] = None, version: Optional[int] = None
                           ) -> List[Dict[str, Any]]:
    """The catalog items nearest to new items described by their text and attributes
    (encode_items; arguments as in encode_items).

    Returns:
      Per title, {'title', 'items': [K] item ids, 'scores': [K] floats}, best first.
    """
    titles = _as_list(titles)
    out = self.predict(self._new_items(titles, categories, attributes), "encode_items",
                       version, label, output_filter=["item_ids", "scores"])
    return [{"title": t, "items": i, "scores": s}
            for t, i, s in zip(titles, _strings(out["item_ids"]), out["scores"].tolist())]

  def explain(self, user_ids: Union[str, Sequence[str]], item_ids: Rows,
              histories: Optional[Rows] = None, *, label: Optional[str] = None,
              version: Optional[int] = None) -> List[List[str]]:
    """Per user and item, the history item that contributed most to its score ('' if none).

    Args:
      user_ids: [B] user ids; item_ids: per user, the items to explain (e.g. the
        recommendations); histories: per user, recent items, most recent first (default: the
        known user's own items).
    """
    users = _as_list(user_ids)
    if isinstance(user_ids, str) and item_ids and isinstance(item_ids[0], str):
      item_ids = [item_ids]
      histories = None if histories is None else [histories]
    histories = [[] for _ in users] if histories is None else histories
    if not len(users) == len(item_ids) == len(histories):
      raise ValueError(f"got {len(users)} user ids, {len(item_ids)} item lists and "
                       f"{len(histories)} histories")
    out = self.predict({"user_id": np.array(users, dtype=object),
                        "history": _pad(histories, self.history_width),
                        "item_ids": _pad(item_ids)}, "explain", version, label,
                       output_filter=["because"])
    return [row[:len(items)] for row, items in zip(_strings(out["because"]), item_ids)]

  def metadata(self, version: Optional[int] = None, label: Optional[str] = None
               ) -> Dict[str, Dict[str, Any]]:
    """The model's signatures: name -> {'inputs', 'outputs': name -> {'dtype', 'shape'}}.

    Shapes list -1 for unknown dimensions (None for unknown rank). Internal signatures
    (`__saved_model_init_op`) are left out.
    """
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    self._spec(request.model_spec, version, label)
    response = self._call(self._predictions.GetModelMetadata, request)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {key: {"inputs": {n: _tensor_info(i) for n, i in sorted(sig.inputs.items())},
                  "outputs": {n: _tensor_info(i) for n, i in sorted(sig.outputs.items())},
                  "method_name": sig.method_name}
            for key, sig in sorted(signature_map.signature_def.items())
            if not key.startswith("__")}

  def status(self, version: Optional[int] = None) -> List[Dict[str, Any]]:
    """The model's versions: [{'version', 'state', 'error_code', 'error_message'}], as served."""
    request = get_model_status_pb2.GetModelStatusRequest()
    self._spec(request.model_spec, version, None)
    response = self._call(self._models.GetModelStatus, request)
    state = get_model_status_pb2.ModelVersionStatus.State.Name
    return [{"version": s.version, "state": state(s.state),
             "error_code": _error_code_name(s.status), "error_message": s.status.error_message}
            for s in response.model_version_status]

  def health(self, service: str = "") -> str:
    """The gRPC health status of `service` ('' for the server; or a model name): 'SERVING', ..."""
    response = self._call(self._health, _protos.HealthCheckRequest(service=service))
    return _protos.HealthCheckResponse.ServingStatus.Name(response.status)

  def close(self) -> None:
    self._channel.close()

  def __enter__(self) -> "Client":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def _error_code_name(status) -> str:
  field = status.DESCRIPTOR.fields_by_name["error_code"]
  value = field.enum_type.values_by_number.get(status.error_code)
  return value.name if value else str(status.error_code)


def health_check(target: str, service: str = "", timeout: float = 5.0,
                 wait_for_ready: bool = False) -> str:
  """The gRPC health status ('SERVING', 'NOT_SERVING', ...) of a server (or one service on it).

  Works with any server of the standard `grpc.health.v1.Health` service.

  Raises:
    ServingError: unreachable before the deadline (UNAVAILABLE / DEADLINE_EXCEEDED), or
      NOT_FOUND for a service the server does not know.
  """
  with grpc.insecure_channel(target, options=_channel_options(0)) as channel:
    try:
      response = _health_check_method(channel)(_protos.HealthCheckRequest(service=service),
                                               timeout=timeout, wait_for_ready=wait_for_ready)
    except grpc.RpcError as e:
      raise ServingError(e.code(), e.details(), target) from None
  return _protos.HealthCheckResponse.ServingStatus.Name(response.status)
