"""`tfgrec export`: a trained run -> a SavedModel in TF Serving's layout.

  path = export_run(load_config("out/run/config.yaml"), base="out/models", model_name="tfgrec")
  # out/models/tfgrec/<version>/saved_model.pb, variables/

With the SavedModel goes `assets.extra/tf_serving_warmup_requests` (one PredictionLog per
signature). The model is written to a temporary directory beside its final place and published
as `<base>/<model_name>/<version>/` (integer versions, increasing; `save_module`), so a polling
server never sees half a model. `base` may be a local path or gs://, s3://, ... .
"""
import os
from typing import Optional

import numpy as np

from tfgrec import config as config_lib
from tfgrec import saved_models
from tfgrec import storage
from tfgrec.data import attributes as attributes_lib
from tfgrec.export import item_encoder as item_encoder_lib
from tfgrec.export import serving_module
from tfgrec.export import two_stage_module
from tfgrec.graph import schema as gs
from tfgrec.train import inputs as inputs_lib
from tfgrec.train import query as query_lib
from tfgrec.train import trainer

tf = serving_module.tf

# The signatures an export may have (serving_default = recommend): encode_items needs an item
# encoder, encode_users a graph with user attributes, recommend_at the two stages.
SIGNATURES = ("recommend", "rank", "similar_items", "explain", "encode_items", "encode_users",
              "recommend_at")


def signatures_line(path: str) -> str:
  """The signatures of the export at `path`, in SIGNATURES order, comma-separated."""
  present = set(saved_models.signature_names(path))
  return ", ".join(name for name in SIGNATURES if name in present)


def build_module(config: config_lib.RunConfig, k: int = 20,
                 inputs: Optional[inputs_lib.RunInputs] = None) -> serving_module.ServingModule:
  """The serving module of a trained run: embeddings as of the latest known events."""
  model, inputs = trainer.load_trained(config, inputs)
  graph = inputs_lib.known_graph(config, inputs, "test")
  query = query_lib.read_query(config)  # Known users' stored queries, unknown users' readout.
  states = model.states(graph)
  emb = query_lib.embeddings(model, config, inputs, "test", query, states=states)
  data = inputs.data
  # Each known user's items, most recent first (the order of a `history` input): recommend
  # leaves them out, explain reads them as the user's history.
  events = data.history_events("test").sort_values(["user", "timestamp", "item"],
                                                   ascending=[True, False, True])
  events = events.drop_duplicates(["user", "item"])
  counts = np.bincount(events["user"].to_numpy(), minlength=data.num_users)
  indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
  indices = events["item"].to_numpy().astype(np.int64)
  encoder, user_encoder = cold_encoders(config, model, graph)
  # encode_items blends text similarity into its nearest items: the catalog as the encoder's
  # text tower reads it (the fine-tuned one re-embedded it in load_trained).
  item_text = model.item_text_table() if encoder.text_dim else None
  kwargs = dict(
      user_ids=inputs.user_ids, item_ids=inputs.item_ids, user_embeddings=emb["user"],
      item_embeddings=emb["item"], seen_indptr=indptr, seen_indices=indices,
      popularity=data.popularity, history_half_life=query.half_life, k=k,
      item_bias=emb.get("item_bias"),
      item_encoder=encoder, user_encoder=user_encoder,
      item_text_embeddings=None if item_text is None else np.asarray(item_text))
  if not config.ranking.enabled:
    return serving_module.ServingModule(**kwargs)
  from tfgrec.ranking import run as ranking_run  # pylint: disable=g-import-not-at-top
  return two_stage(config, inputs, ranking_run.tower_space(model, config, inputs, "test",
                                                           states=states), kwargs)


def two_stage(config: config_lib.RunConfig, inputs: inputs_lib.RunInputs, tower,
              kwargs: dict) -> two_stage_module.TwoStageModule:
  """The two-stage module: the run's ranker over the sources refit on every known event (the
  trained ones, sequence, keep their training fit unless ranking.refit_trained_sources), its
  new items (without any event) boosted as `ranking.run.served_new_item_boost` fits it.

  tower: the graph tower's space (tfgrec.ranking.run.tower_space; None without it)."""
  from tfgrec.ranking import run as ranking_run  # pylint: disable=g-import-not-at-top
  ranker, info = ranking_run.load(config)
  events = ranking_run.all_events(inputs.data)
  reuse = {} if config.ranking.refit_trained_sources else ranking_run.trained_sources(config)
  stage = ranking_run.Stage(config, inputs, events, tower, reuse=reuse, progress=False)
  features = stage.features(config.ranking.drop_features)
  if features.feature_names != info["feature_names"]:
    raise ValueError(f"the ranker of {config.run_dir} reads features {info['feature_names']}, "
                     f"this config makes {features.feature_names}: retrain (`tfgrec train`)")
  # Each known user's stored events, most recent first, with their times.
  order = np.lexsort((events["item"], -events["timestamp"], events["user"]))
  user, item, ts = (events[k][order] for k in ("user", "item", "timestamp"))
  first = np.ones(len(user), bool)  # An item once per user, at its latest event.
  seen = set()
  for j, key in enumerate(zip(user.tolist(), item.tolist())):
    first[j] = key not in seen
    seen.add(key)
  user, item, ts = user[first], item[first], ts[first]
  counts = np.bincount(user, minlength=inputs.data.num_users)
  kwargs = dict(kwargs, seen_indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                seen_indices=item.astype(np.int64))
  return two_stage_module.TwoStageModule(
      features=features, ranker=ranker, seen_times=ts,
      clock=int(events["timestamp"].max(initial=0)),
      new_items=stage.new_items, user_states=stage.user_query,
      new_item_boost=ranking_run.served_new_item_boost(config, ranker, info, stage,
                                                       inputs.data)[0], **kwargs)


def new_item_encoder(config: config_lib.RunConfig, model, graph
                     ) -> item_encoder_lib.NewItemEncoder:
  """The trained model's encoder of new items, with the side node states of `graph`."""
  return cold_encoders(config, model, graph)[0]


def cold_encoders(config: config_lib.RunConfig, model, graph):
  """(NewItemEncoder, NewUserEncoder or None) of the trained model, with the side node states
  of `graph`; the user encoder exists when the tower reads user attribute values."""
  tower = model.tower
  text_encoder = None
  tower_inputs = {"graph": graph}
  if tower.text_projection is not None:
    tower_inputs["item_text"] = model.item_text_table()
    # The fine-tuned text tower when the run trained one; else the run's frozen checkpoint.
    text_encoder = model.text_encoder or inputs_lib.text_encoder(config)[1]
  def degree(edge_set, node_set):
    source = graph.edge_sets[edge_set].adjacency.source
    return tf.math.unsorted_segment_sum(tf.ones_like(source), source,
                                        graph.node_sets[node_set].total_size).numpy()

  states = tower.side_round_states(tower_inputs)
  spec = (attributes_lib.read_spec(config.graph_dir)
          if {gs.ITEM_ATTRIBUTE, gs.USER_ATTRIBUTE} & set(states) else {})
  attributes = {}
  if gs.ITEM_ATTRIBUTE in states:
    attributes = dict(
        attribute_spec=spec["items"],
        attribute_states=[s.numpy() for s in states[gs.ITEM_ATTRIBUTE]],
        attribute_degree=degree(gs.ATTRIBUTE_OF, gs.ITEM_ATTRIBUTE))
  category_states = (states[gs.CATEGORY] if gs.CATEGORY in states
                     else tower.category_round_states(tower_inputs))
  items = item_encoder_lib.NewItemEncoder(
      tower=tower, text_encoder=text_encoder,
      category_ids=inputs_lib.read_vocab(config.graph_dir, gs.CATEGORY),
      category_states=[s.numpy() for s in category_states],
      category_degree=degree(gs.HAS_ITEM, gs.CATEGORY), **attributes)
  users = None
  if gs.USER_ATTRIBUTE in states and spec.get("users"):
    users = item_encoder_lib.NewUserEncoder(
        tower=tower, attribute_spec=spec["users"],
        attribute_states=[s.numpy() for s in states[gs.USER_ATTRIBUTE]],
        attribute_degree=degree(gs.ATTRIBUTE_OF_USER, gs.USER_ATTRIBUTE))
  return items, users


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


def export_run(config: config_lib.RunConfig, base: str, model_name: str = "tfgrec",
               version: Optional[int] = None, k: int = 20) -> str:
  """Exports a trained run (see the module docstring); returns the version directory."""
  return save_module(build_module(config, k), base, model_name, version)
