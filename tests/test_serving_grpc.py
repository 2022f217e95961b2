"""The local TF Serving stand-in and the gRPC client, over loopback, on two tiny toy models.

Version 1 of the toy model recommends a, b, c and version 2 d, c, b (so an answer tells which
version gave it); `rank` scores item a..d as 1..4 times the version, unknown items -1e9. The
server refuses more than MAX_BATCH rows, as TF Serving's batching does.
"""
import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads (tensorflow_serving imports it).

import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tfgrec import cli
from tfgrec import serving
from tfgrec.serving import _protos
from tfgrec.serving import client as client_lib

tf = client_lib.tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_BATCH = 4
TOP = {1: ["a", "b", "c"], 2: ["d", "c", "b"]}

MODELS_CONFIG = """
# proto-file: tensorflow_serving/config/model_server_config.proto
# proto-message: ModelServerConfig
model_config_list {
  config {
    name: "toy"
    base_path: "models/toy"
    model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""


class _Toy(tf.Module):
  """recommend / rank on constant tables; user 'boom' makes recommend fail inside the graph."""

  def __init__(self, version: int):
    super().__init__()
    self.top = tf.constant(TOP[version])
    self.top_scores = tf.constant([0.9, 0.5, 0.1]) + version
    self.table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(["a", "b", "c", "d"]),
                                            tf.constant([1.0, 2.0, 3.0, 4.0]) * version),
        default_value=-1e9)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                tf.TensorSpec([None, None], tf.string, name="history")])
  def recommend(self, user_id, history):
    del history
    tf.debugging.assert_none_equal(user_id, tf.constant("boom"), message="user boom")
    batch = tf.shape(user_id)[0]
    return {"item_ids": tf.tile(self.top[None], [batch, 1]),
            "scores": tf.tile(self.top_scores[None], [batch, 1])}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                tf.TensorSpec([None, None], tf.string, name="item_ids")])
  def rank(self, user_id, item_ids):
    del user_id
    return {"scores": self.table.lookup(item_ids)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                tf.TensorSpec([None, None], tf.string, name="history"),
                                tf.TensorSpec([None, None], tf.int64, name="history_time"),
                                tf.TensorSpec([None], tf.int64, name="now"),
                                tf.TensorSpec([None, None], tf.string, name="user_attributes")])
  def recommend_at(self, user_id, history, history_time, now, user_attributes):
    """Echoes the request: the attribute strings as items, `now` (+ the history times' sum, -1
    each by default) as every score."""
    del user_id, history
    width = tf.shape(user_attributes)[1]
    score = tf.cast(now + tf.reduce_sum(history_time, axis=1), tf.float32)
    return {"item_ids": user_attributes, "scores": tf.tile(score[:, None], [1, width])}

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="attributes")])
  def encode_users(self, attributes):
    """The attribute strings' lengths as the embedding."""
    return {"embedding": tf.cast(tf.strings.length(attributes), tf.float32),
            "item_ids": attributes}


@contextlib.contextmanager
def _stopped_at_exit(proc: subprocess.Popen):
  """Kills `proc` if the block fails before it was stopped (no server outlives its test)."""
  try:
    yield proc
  except BaseException:
    proc.kill()
    proc.communicate(timeout=10)
    raise


def _terminate(proc: subprocess.Popen):
  """SIGTERM (a graceful stop), then (stdout, stderr); killed if it does not stop in 60 s."""
  proc.send_signal(signal.SIGTERM)
  try:
    return proc.communicate(timeout=60)
  except subprocess.TimeoutExpired:
    proc.kill()
    return proc.communicate(timeout=10)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def models_config(tmp_path_factory):
  """<tmp>/models.config with model toy, versions 1 and 2 under <tmp>/models/toy/."""
  root = tmp_path_factory.mktemp("serving")
  for version in (1, 2):
    module = _Toy(version)
    tf.saved_model.save(module, str(root / "models" / "toy" / str(version)),
                        signatures={"recommend": module.recommend, "rank": module.rank,
                                    "recommend_at": module.recommend_at,
                                    "encode_users": module.encode_users,
                                    "serving_default": module.recommend})
  (root / "models.config").write_text(MODELS_CONFIG)
  return str(root / "models.config")


@pytest.fixture(scope="module")
def server(models_config):
  with serving.LocalModelServer(models_config, port=0, max_batch_size=MAX_BATCH) as running:
    yield running


@pytest.fixture
def client(server):
  with serving.Client(server.address, "toy", timeout=10.0) as toy:
    yield toy


def _users(n):
  return {"user_id": np.array([f"u{i}" for i in range(n)], object),
          "history": np.full([n, 2], "a", object)}


def _assert_still_serving(client):
  assert client.recommend(["u1"])[0]["items"] == TOP[2]


# The models.config and the batching parameters.

def test_config_resolves_versions_labels_and_relative_base_path(models_config):
  (toy,) = serving.load_models_config(models_config)
  assert toy.base_path == os.path.join(os.path.dirname(models_config), "models", "toy")
  assert toy.versions == (1, 2) and toy.policy == "all"
  assert toy.labels == {"canary": 2, "stable": 1}


@pytest.mark.parametrize("policy,versions", [("", (2,)), ("latest { num_versions: 2 }", (1, 2)),
                                             ("specific { versions: 1 }", (1,))])
def test_version_policies(models_config, tmp_path, policy, versions):
  base = os.path.join(os.path.dirname(models_config), "models", "toy")
  path = tmp_path / "models.config"
  path.write_text(f'model_config_list {{ config {{ name: "toy" base_path: "{base}" '
                  f'model_version_policy {{ {policy} }} }} }}')
  assert serving.load_models_config(str(path))[0].versions == versions


@pytest.mark.parametrize("body,message", [
    ('base_path: "nowhere"', "base_path"),
    ('base_path: "empty"', "no versions under"),
    ('base_path: "models/toy" version_labels { key: "stable" value: 1 }',
     "label 'stable' points at version 1, which is not loaded"),
    ('base_path: "models/toy" model_version_policy { specific { versions: 7 } }',
     "specific versions [7] not found"),
])
def test_config_errors_name_file_and_model(models_config, body, message):
  folder = os.path.dirname(models_config)
  os.makedirs(os.path.join(folder, "empty"), exist_ok=True)
  path = os.path.join(folder, "bad.config")
  with open(path, "w") as f:
    f.write(f'model_config_list {{ config {{ name: "toy" {body} }} }}')
  with pytest.raises(serving.ModelConfigError, match="model 'toy'") as e:
    serving.load_models_config(path)
  assert message in str(e.value) and path in str(e.value)


def test_max_batch_size_from_the_batching_parameters_file(models_config):
  path = os.path.join(ROOT, "serving", "batching_parameters.pbtxt")
  assert serving.read_max_batch_size(path) == 64
  assert serving.LocalModelServer(models_config, batching_parameters_path=path).max_batch_size == 64


# Predict, metadata, status, health.

def test_recommend_answers_from_the_latest_version(client):
  got = client.recommend(["u1", "u2"], [["a", "b"], []])
  assert [g["user_id"] for g in got] == ["u1", "u2"]
  assert got[0]["items"] == TOP[2] and got[1]["items"] == TOP[2]
  np.testing.assert_allclose(got[0]["scores"], [2.9, 2.5, 2.1], rtol=1e-6)


def test_a_reference_time_or_user_attributes_ask_recommend_at(client):
  got = client.recommend(["new", "x"], [[], ["a"]], now=[5, -1],
                         user_attributes=[{"plan": None, "age_group": "25-34"},
                                          ["plan=pro", "x=1"]])
  # Dicts become "column=value" strings (None left out), rows padded with ''.
  assert got[0]["items"] == ["age_group=25-34", ""] and got[1]["items"] == ["plan=pro", "x=1"]
  # now as given; history_time -1 for every (padded) history slot the client sends.
  width = client.history_width
  assert got[0]["scores"] == [5.0 - width] * 2 and got[1]["scores"] == [-1.0 - width] * 2
  single = client.recommend("new", ["a"], user_attributes={"age_group": "65+"})
  assert single[0]["items"] == ["age_group=65+"]
  assert client.encode_users([{"age_group": "18-24"}, []]).tolist() == [[15.0], [0.0]]
  with pytest.raises(ValueError, match="2 user ids but 1 attribute rows"):
    client.recommend(["a", "b"], user_attributes=[{}])
  with pytest.raises(ValueError, match="2 user ids but 3 now values"):
    client.recommend(["a", "b"], now=[1, 2, 3])


def test_labels_and_versions_route_to_the_right_version(client):
  for kwargs, version in (({"label": "stable"}, 1), ({"label": "canary"}, 2),
                          ({"version": 1}, 1), ({}, 2)):
    response = client.predict_response(_users(1), "recommend", **kwargs)
    assert response.model_spec.name == "toy"
    assert response.model_spec.version.value == version, kwargs
    assert response.model_spec.signature_name == "recommend"
    assert client.recommend(["u"], **kwargs)[0]["items"] == TOP[version]


def test_empty_signature_name_is_serving_default(client):
  response = client.predict_response(_users(2), signature="")
  assert response.model_spec.signature_name == "serving_default"
  assert client_lib.decode_outputs(response)["item_ids"].shape == (2, 3)


def test_rank_and_output_filter(client):
  got = client.rank(["u1", "u2"], [["b", "zz"], ["d"]], label="stable")
  assert got[0]["scores"] == [2.0, -1e9] and got[1] == {"user_id": "u2", "items": ["d"],
                                                          "scores": [4.0]}
  out = client.predict(_users(1), "recommend", output_filter=["scores"])
  assert list(out) == ["scores"]


def test_empty_batch_returns_zero_rows(client):
  out = client.predict({"user_id": np.zeros([0], object), "history": np.zeros([0, 0], object)},
                       "recommend")
  assert out["item_ids"].shape == (0, 3) and out["scores"].shape == (0, 3)
  assert client.recommend([]) == []


def test_metadata_lists_signatures_and_their_tensors(client, server):
  meta = client.metadata()
  assert sorted(meta) == ["encode_users", "rank", "recommend", "recommend_at",
                          "serving_default"]
  assert meta["recommend"]["inputs"] == {"history": {"dtype": "string", "shape": [-1, -1]},
                                         "user_id": {"dtype": "string", "shape": [-1]}}
  assert meta["rank"]["outputs"] == {"scores": {"dtype": "float32", "shape": [-1, -1]}}
  with grpc.insecure_channel(server.address) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "toy"
    request.model_spec.version_label = "stable"
    response = stub.GetModelMetadata(request, timeout=10)
    assert response.model_spec.version.value == 1
    type_url = response.metadata["signature_def"].type_url
    assert type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    request.metadata_field[:] = ["graph_def"]
    with pytest.raises(grpc.RpcError) as e:
      stub.GetModelMetadata(request, timeout=10)
  assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert e.value.details() == "Metadata field graph_def is not supported"


def test_model_status(client, server):
  assert client.status() == [
      {"version": 2, "state": "AVAILABLE", "error_code": "OK", "error_message": ""},
      {"version": 1, "state": "AVAILABLE", "error_code": "OK", "error_message": ""}]
  assert [s["version"] for s in client.status(version=1)] == [1]
  with serving.Client(server.address, "nope", timeout=10.0) as nope:
    with pytest.raises(serving.ServingError) as e:
      nope.status()
  assert e.value.code == grpc.StatusCode.NOT_FOUND
  assert e.value.details == "Could not find any versions of model nope"


def test_health_check_and_watch(server, client):
  assert serving.health_check(server.address) == "SERVING"
  assert client.health("toy") == "SERVING"
  with pytest.raises(serving.ServingError) as e:
    serving.health_check(server.address, "nope")
  assert e.value.code == grpc.StatusCode.NOT_FOUND
  with grpc.insecure_channel(server.address) as channel:
    watch = channel.unary_stream("/grpc.health.v1.Health/Watch",
                                 request_serializer=_protos.HealthCheckRequest.SerializeToString,
                                 response_deserializer=_protos.HealthCheckResponse.FromString)
    stream = watch(_protos.HealthCheckRequest(service="toy"), timeout=10)
    assert next(stream).status == _protos.HealthCheckResponse.SERVING
    stream.cancel()


# Bad requests: TF Serving's codes and messages, and the server keeps serving.

BAD_REQUESTS = {
    "missing input": (dict(inputs={"user_id": np.array(["u"], object)}),
                      "INVALID_ARGUMENT", "input size does not match signature: 1!=2 "
                      "len({user_id}) != len({history,user_id}). Sent extra: {}. "
                      "Missing but required: {history}."),
    "extra input": (dict(inputs=dict(_users(1), extra=np.array(["x"], object))),
                    "INVALID_ARGUMENT", "Sent extra: {extra}. Missing but required: {}."),
    "renamed input": (dict(inputs={"user_id": np.array(["u"], object),
                                   "histories": np.array([["a"]], object)}),
                      "INVALID_ARGUMENT", "input tensor alias not found in signature: histories"),
    "wrong dtype": (dict(inputs={"user_id": np.array([1], np.int64),
                                 "history": np.array([["a"]], object)}),
                    "INVALID_ARGUMENT", 'Expects input "user_id" to be string but int64 is '
                    "provided"),
    "wrong rank": (dict(inputs={"user_id": np.array(["u"], object),
                                "history": np.array(["a"], object)}),
                   "INVALID_ARGUMENT", 'Expects input "history" to have shape [?,?] but [1] '
                   "is provided"),
    "unequal batch sizes": (dict(inputs={"user_id": np.array(["u", "v"], object),
                                         "history": np.array([["a"]], object)}),
                            "INVALID_ARGUMENT", "input tensors must have equal 0th-dimension"),
    "batch above max_batch_size": (dict(inputs=_users(MAX_BATCH + 1)), "INVALID_ARGUMENT",
                                   f"Task size {MAX_BATCH + 1} is larger than maximum input "
                                   f"batch size {MAX_BATCH}"),
    "unknown model": (dict(model="nope"), "NOT_FOUND",
                      "Servable not found for request: Latest(nope)"),
    "unknown version": (dict(version=7), "NOT_FOUND",
                        "Servable not found for request: Specific(toy, 7)"),
    "unknown label": (dict(label="beta"), "INVALID_ARGUMENT",
                      "Unrecognized servable version label: beta"),
    "unknown signature": (dict(signature="nope"), "FAILED_PRECONDITION",
                          'Serving signature key "nope" not found.'),
    "unknown output": (dict(output_filter=["nope"]), "INVALID_ARGUMENT",
                       "output tensor alias not found in signature: nope"),
    "failure inside the model": (dict(inputs={"user_id": np.array(["boom"], object),
                                              "history": np.zeros([1, 0], object)}),
                                 "INVALID_ARGUMENT", "user boom"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_gets_tf_serving_status_and_server_keeps_serving(server, client, case):
  request, code, message = BAD_REQUESTS[case]
  request = dict(request)
  with serving.Client(server.address, request.pop("model", "toy"), timeout=10.0) as asker:
    with pytest.raises(serving.ServingError) as e:
      asker.predict(request.pop("inputs", _users(1)), request.pop("signature", "recommend"),
                    **request)
  assert e.value.code.name == code
  assert message in e.value.details
  assert str(e.value).startswith(f"{code} from {server.address}: ")
  _assert_still_serving(client)


# Ports, retries, shutdown.

def test_port_in_use_is_a_clear_error(server, models_config):
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    with pytest.raises(serving.ServerError, match=f"port {port} on 127.0.0.1 is in use; pass "
                       "--port"):
      serving.LocalModelServer(models_config, port=port).start()
  with pytest.raises(serving.ServerError, match="is in use"):
    serving.LocalModelServer(models_config, port=server.port).start()


def test_unreachable_server_is_unavailable_after_retries():
  with serving.Client(f"127.0.0.1:{_free_port()}", "toy", timeout=3.0, retries=2) as client:
    with pytest.raises(serving.ServingError) as e:
      client.status()
  assert e.value.code == grpc.StatusCode.UNAVAILABLE


def test_wait_for_ready_reaches_a_server_that_starts_later_and_shutdown_is_graceful(
    models_config):
  port = _free_port()
  late = serving.LocalModelServer(models_config, port=port)
  timer = threading.Timer(1.0, late.start)
  timer.start()
  try:
    with serving.Client(f"127.0.0.1:{port}", "toy", timeout=30.0, wait_for_ready=True) as client:
      started = time.monotonic()
      assert client.recommend(["u"])[0]["items"] == TOP[2]
      assert time.monotonic() - started > 0.5
      with grpc.insecure_channel(late.address) as channel:
        watch = channel.unary_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=_protos.HealthCheckRequest.SerializeToString,
            response_deserializer=_protos.HealthCheckResponse.FromString)
        stream = watch(_protos.HealthCheckRequest(), timeout=30)
        assert next(stream).status == _protos.HealthCheckResponse.SERVING
        stopping = time.monotonic()
        late.stop(grace=10.0)
        assert [r.status for r in stream] == [_protos.HealthCheckResponse.NOT_SERVING]
        assert time.monotonic() - stopping < 5.0  # The open Watch did not hold the grace period.
  finally:
    timer.join(30)
    late.stop(0)


class _FlakyModelService(model_service_pb2_grpc.ModelServiceServicer):
  """Answers GetModelStatus UNAVAILABLE `failures` times, then AVAILABLE."""

  def __init__(self, failures):
    self.failures = failures
    self.calls = 0

  def GetModelStatus(self, request, context):  # pylint: disable=invalid-name
    self.calls += 1
    if self.calls <= self.failures:
      context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
    response = get_model_status_pb2.GetModelStatusResponse()
    response.model_version_status.add(
        version=1, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    return response


def test_retry_policy_retries_unavailable():
  flaky = _FlakyModelService(failures=2)
  fake = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(flaky, fake)
  port = fake.add_insecure_port("127.0.0.1:0")
  fake.start()
  try:
    with serving.Client(f"127.0.0.1:{port}", "toy", timeout=10.0, retries=3) as client:
      assert client.status()[0]["state"] == "AVAILABLE"
    assert flaky.calls == 3
    flaky.calls = 0
    with serving.Client(f"127.0.0.1:{port}", "toy", timeout=10.0, retries=0) as client:
      with pytest.raises(serving.ServingError, match="UNAVAILABLE from .*: warming up"):
        client.status()
    assert flaky.calls == 1
  finally:
    fake.stop(0).wait(10)


# The command line.

def test_cli_query_prints_the_items(server, capsys):
  assert cli.main(["query", "--target", server.address, "--model", "toy", "--user", "u1",
                   "--history", "a", "b", "--label", "stable"]) == 0
  out = capsys.readouterr().out
  assert "toy version 1 (label stable), signature recommend, user u1" in out
  lines = out.splitlines()
  assert lines[1].split() == ["rank", "item_id", "score"]
  assert [line.split()[:2] for line in lines[2:]] == [["1", "a"], ["2", "b"], ["3", "c"]]
  assert cli.main(["query", "--target", server.address, "--model", "toy", "--user", "u1",
                   "--json"]) == 0
  answer = json.loads(capsys.readouterr().out)
  assert answer["version"] == 2 and answer["items"] == TOP[2]
  # A new user's attributes and a reference time go to recommend_at (the toy echoes them).
  assert cli.main(["query", "--target", server.address, "--model", "toy", "--user", "new",
                   "--attribute", "age_group=25-34", "--attribute", "plan=pro", "--now", "7",
                   "--json"]) == 0
  answer = json.loads(capsys.readouterr().out)
  assert answer["signature"] == "recommend_at"
  assert answer["items"] == ["age_group=25-34", "plan=pro"] and answer["scores"] == [7.0, 7.0]


def test_cli_query_error_exits_1(server, capsys):
  assert cli.main(["query", "--target", server.address, "--model", "nope", "--user", "u1"]) == 1
  assert capsys.readouterr().err.strip() == (
      "error: NOT_FOUND: Servable not found for request: Latest(nope)")


def test_cli_serve_on_a_busy_port_exits_2(server, models_config, capsys):
  assert cli.main(["serve", "--models-config", models_config, "--port", str(server.port)]) == 2
  assert f"port {server.port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_cli_serve_answers_health_and_stops_on_sigterm(models_config):
  port = _free_port()
  proc = subprocess.Popen(
      [sys.executable, "-m", "tfgrec.cli", "serve", "--models-config", models_config,
       "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  with _stopped_at_exit(proc):
    assert serving.health_check(f"127.0.0.1:{port}", "toy", timeout=90,
                                wait_for_ready=True) == "SERVING"
  out, err = _terminate(proc)
  assert proc.returncode == 0, err
  assert f"gRPC on 127.0.0.1:{port}" in out
  assert "toy: versions 1, 2 (labels: canary -> 2, stable -> 1)" in out
  assert "[serve] stopping" in out


def test_a_version_that_does_not_load_is_a_clear_error(tmp_path):
  version = tmp_path / "models" / "broken" / "1"
  version.mkdir(parents=True)
  (version / "saved_model.pb").write_bytes(b"not a SavedModel")
  (tmp_path / "models.config").write_text(
      'model_config_list { config { name: "broken" base_path: "models/broken" } }')
  with pytest.raises(serving.ServerError, match="cannot load model broken version 1 from "):
    serving.LocalModelServer(str(tmp_path / "models.config"), port=0).start()


def test_cli_serve_from_the_run_config_serves_the_latest_export(models_config, tmp_path):
  """`tfgrec serve --config FILE`: export.base / export.name / serve.port of the config."""
  base = os.path.join(os.path.dirname(models_config), "models")
  port = _free_port()
  config = tmp_path / "run.yaml"
  config.write_text(f"export: {{base: {base}, name: toy}}\nserve: {{port: {port}}}\n")
  proc = subprocess.Popen([sys.executable, "-m", "tfgrec.cli", "serve", "--config", str(config)],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  with _stopped_at_exit(proc):
    with serving.Client(f"127.0.0.1:{port}", "toy", timeout=90, wait_for_ready=True) as toy:
      answer = toy.predict_response({"user_id": ["u1"], "history": [[""]]}, "recommend",
                                    label="stable")
      assert answer.model_spec.version.value == 2  # The latest export, labelled stable.
  out, err = _terminate(proc)
  assert proc.returncode == 0, err
  assert os.path.exists(os.path.join(base, "models.config"))
  assert "toy: versions 2" in out
  empty = tmp_path / "empty.yaml"
  empty.write_text(f"export: {{base: {tmp_path / 'nothing'}, name: toy}}\n")
  assert cli.main(["serve", "--config", str(empty)]) == 2
