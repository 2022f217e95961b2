"""The TF Serving configs in serving/ parse and agree with each other."""
import os
import re

import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

SERVING = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "serving")


def _read(name):
  with open(os.path.join(SERVING, name), encoding="utf-8") as f:
    return f.read()


def test_models_config_parses_and_labels_point_at_loaded_versions():
  config = text_format.Parse(_read("models.config"), model_server_config_pb2.ModelServerConfig())
  (model,) = config.model_config_list.config
  assert model.name == "tfgrec" and model.model_platform == "tensorflow"
  loaded = set(model.model_version_policy.specific.versions)
  assert set(model.version_labels) == {"stable", "canary"}
  for label, version in model.version_labels.items():
    assert re.fullmatch(r"[a-zA-Z0-9_]+", label)
    assert version in loaded, (label, version, loaded)


def test_batching_parameters_are_consistent():
  text = _read("batching_parameters.pbtxt")
  values = {k: int(v) for k, v in re.findall(r"^(\w+) \{ value: (\d+) \}", text, re.M)}
  allowed = [int(v) for v in re.findall(r"^allowed_batch_sizes: (\d+)", text, re.M)]
  assert allowed == sorted(allowed) and allowed[-1] == values["max_batch_size"]
  assert re.search(r"^pad_variable_length_inputs: true$", text, re.M)
  assert {"batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"} <= set(values)


def test_compose_runs_the_gpu_image_with_every_config_on_loopback():
  compose = yaml.safe_load(_read("docker-compose.gpu.yml"))
  service = compose["services"]["tfserving"]
  assert service["image"].endswith("-gpu")
  flags = dict(f.lstrip("-").split("=", 1) if "=" in f else (f.lstrip("-"), True)
               for f in service["command"])
  assert flags["port"] != flags["rest_api_port"]
  for flag, name in (("model_config_file", "models.config"),
                     ("batching_parameters_file", "batching_parameters.pbtxt"),
                     ("monitoring_config_file", "monitoring.config")):
    assert flags[flag] == f"/config/{name}" and os.path.exists(os.path.join(SERVING, name))
  assert flags["enable_batching"] is True and flags["enable_model_warmup"] is True
  assert all(p.startswith("127.0.0.1:") for p in service["ports"])
  assert service["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
  assert re.search(r'path: "/monitoring/prometheus/metrics"', _read("monitoring.config"))
