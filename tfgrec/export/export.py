"""Packaging: a serving module -> a SavedModel in TF Serving's layout, with its warmup requests.

  path = save_module(module, base="out/models", model_name="tfgrec")
  # out/models/tfgrec/<version>/saved_model.pb, variables/, assets.extra/

A run's module is assembled from its final fit by tfgrec.train.exporter (`tfgrec export`).
With the SavedModel goes `assets.extra/tf_serving_warmup_requests` (one PredictionLog per
signature). The model is written to a temporary directory beside its final place and published
as `<base>/<model_name>/<version>/` (integer versions, increasing; `save_module`), so a polling
server never sees half a model. `base` may be a local path or gs://, s3://, ... .
"""
import os
from typing import Optional

import numpy as np

from tfgrec import saved_models
from tfgrec import storage
from tfgrec.export import serving_module
from tfgrec.export import two_stage_module

tf = serving_module.tf

# The signatures an export may have (serving_default = recommend): encode_items needs an item
# encoder, encode_users a graph with user attributes, recommend_at the two stages.
SIGNATURES = ("recommend", "rank", "similar_items", "explain", "encode_items", "encode_users",
              "recommend_at")


def signatures_line(path: str) -> str:
  """The signatures of the export at `path`, in SIGNATURES order, comma-separated."""
  present = set(saved_models.signature_names(path))
  return ", ".join(name for name in SIGNATURES if name in present)


WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_requests(module: serving_module.ServingModule, model_name: str):
  """One PredictionLog per signature (TF Serving replays them at load with
  --enable_model_warmup, so the first real request does not pay for graph setup)."""
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  item = module.item_ids.numpy()[0].decode()
  user = module.user_table.export()[0].numpy()[0].decode()
  inputs = {
      "recommend": {"user_id": np.array([user, ""], object),
                    "history": np.array([["", ""], [item, ""]], object)},
      "rank": {"user_id": np.array([user], object), "item_ids": np.array([[item]], object)},
      "similar_items": {"item_id": np.array([item], object)},
      "explain": {"user_id": np.array([user], object), "history": np.array([[""]], object),
                  "item_ids": np.array([[item]], object)},
      "encode_items": {"title": np.array(["A new item"], object),
                       "categories": np.array([[""]], object),
                       "attributes": np.array([[""]], object)},
      "encode_users": {"attributes": np.array([[""]], object)},
  }
  if isinstance(module, two_stage_module.TwoStageModule):
    inputs.update(two_stage_module.warmup_inputs(module))
  logs = []
  for signature in module.signature_names:
    tensors = inputs[signature]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for key, value in tensors.items():
      request.inputs[key].CopyFrom(tf.make_tensor_proto(
          value, dtype=tf.string if value.dtype == object else tf.as_dtype(value.dtype)))
    logs.append(prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)))
  return logs


def save_module(module: serving_module.ServingModule, base: str, model_name: str = "tfgrec",
                version: Optional[int] = None) -> str:
  """Saves `module` as `<base>/<model_name>/<version>/`; returns that path.

  The version is written under a temporary name beside it (not an integer, so TF Serving
  ignores it) and then published (tfgrec.storage.publish_dir): renamed on local disk, copied
  with saved_model.pb last on object stores. `base` may be local or gs://, s3://, ...
  """
  model_dir = storage.join(base, model_name)
  storage.makedirs(model_dir)
  version = version or saved_models.next_version(model_dir)
  final = storage.join(model_dir, str(version))
  if storage.exists(final):
    raise FileExistsError(f"{final} exists: versions are never overwritten")
  signatures = {name: module.signature(name) for name in module.signature_names}
  signatures["serving_default"] = module.recommend
  tmp = storage.temp_dir_beside(final)
  try:
    saved_models.save(module, tmp, signatures)
    storage.makedirs(storage.join(tmp, "assets.extra"))
    with tf.io.TFRecordWriter(storage.join(tmp, WARMUP_FILE)) as writer:
      for log in warmup_requests(module, model_name):
        writer.write(log.SerializeToString())
    storage.publish_dir(tmp, final)
  except BaseException:
    storage.rmtree(tmp)
    raise
  return final
