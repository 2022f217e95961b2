"""Serving: a gRPC client for TensorFlow Serving and a local stand-in server on the same protos.

  tfgrec serve --models-config serving/models.config --port 8500
  tfgrec query --target localhost:8500 --user u1 --label canary

  with Client("localhost:8500", model_name="tfgrec") as client:
    client.recommend(["u1"], [["i3", "i7"]])
"""
# The client: Predict / GetModelMetadata / GetModelStatus / health, with deadlines and retries.
from tfgrec.serving.client import Client
from tfgrec.serving.client import decode_outputs
from tfgrec.serving.client import health_check
from tfgrec.serving.client import ServingError
# The local stand-in for TF Serving (development machines without it).
from tfgrec.serving.server import LocalModelServer
from tfgrec.serving.server import ServerError
# TF Serving's models.config and batching parameters, resolved as the model server does.
from tfgrec.serving.model_config import load_models_config
from tfgrec.serving.model_config import ModelConfigError
from tfgrec.serving.model_config import ModelEntry
from tfgrec.serving.model_config import read_max_batch_size
