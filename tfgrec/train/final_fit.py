"""The final fit: every artifact the served model holds, made from every known event.

`tfgrec train` ends with it (and `tfgrec final-fit` reruns it alone on a trained run); `tfgrec
export` only packages what it wrote (tfgrec.train.exporter). Training and evaluation fit on the
splits their protocol allows; the served model must know everything up to now, so here the
graph tower reads the graph with every known event (training, validation and test) and the
stage-1 sources are fit on the same events: the SavedModel's tower and sources read one event
set.

  manifest = fit(config, inputs, model)      # model: the trained run, its best epoch restored

Artifacts (tfgrec.train.layout, all under `<run_dir>/final/`):
  serving.npz        ids; the tower's user and item embeddings with the run's query, the
                     items' popularity prior; each known user's items, most recent first, with
                     their times; popularity; the catalog text the encoder reads; for two
                     stages the users' tower query part, the new items, the events the
                     time features index, the text and categories the features read
  serving.json       the query's history half-life, the clock, the served new-item boost and
                     the share it was priced for, the sources with their N, the feature names
  item_encoder/      the cold-item encoder (SavedModel; tfgrec.export.saved_encoders)
  user_encoder/      the new-user encoder, when the tower reads user attributes
  sources/<name>/    each stage-1 source fit on every known event (tfgrec.sources.save_source)
The ranker stays where training wrote it (`<run_dir>/ranker/`). The manifest
(tfgrec.train.manifest) lists them all, with checksums, the events and the config.
"""
import logging
import time
from typing import Dict, Optional

import numpy as np

from tfgrec import config as config_lib
from tfgrec import storage
from tfgrec.data import attributes as attributes_lib
from tfgrec.data import histories
from tfgrec.data import splits
from tfgrec.export import item_encoder as item_encoder_lib
from tfgrec.export import saved_encoders
from tfgrec.graph import schema as gs
from tfgrec.sources import base
from tfgrec.train import inputs as inputs_lib
from tfgrec.train import layout as layout_lib
from tfgrec.train import manifest as manifest_lib
from tfgrec.train import query as query_lib
from tfgrec.train import two_stage

tf = base.tf
logger = logging.getLogger(__name__)

ARRAYS = "serving.npz"
INFO = "serving.json"
ITEM_ENCODER = "item_encoder"
USER_ENCODER = "user_encoder"


def seen_items(events: Dict[str, np.ndarray], num_users: int):
  """Each user's distinct items, most recent first, as CSR: (indptr [U + 1], items [nnz],
  times [nnz]); an item once per user, at its latest event (ties: the lower item id first)."""
  user, item, stamp = (np.asarray(events[k], np.int64) for k in ("user", "item", "timestamp"))
  indptr, order = histories.user_csr(user, num_users=num_users, by=(-stamp, item), item=item)
  return indptr, item[order], stamp[order]


def _degree(graph, edge_set: str, node_set: str) -> np.ndarray:
  source = graph.edge_sets[edge_set].adjacency.source
  return tf.math.unsorted_segment_sum(tf.ones_like(source), source,
                                      graph.node_sets[node_set].total_size).numpy()


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
  states = tower.side_round_states(tower_inputs)
  spec = (attributes_lib.read_spec(config.graph_dir)
          if {gs.ITEM_ATTRIBUTE, gs.USER_ATTRIBUTE} & set(states) else {})
  attributes = {}
  if gs.ITEM_ATTRIBUTE in states:
    attributes = dict(
        attribute_spec=spec["items"],
        attribute_states=[s.numpy() for s in states[gs.ITEM_ATTRIBUTE]],
        attribute_degree=_degree(graph, gs.ATTRIBUTE_OF, gs.ITEM_ATTRIBUTE))
  category_states = (states[gs.CATEGORY] if gs.CATEGORY in states
                     else tower.category_round_states(tower_inputs))
  items = item_encoder_lib.NewItemEncoder(
      tower=tower, text_encoder=text_encoder,
      category_ids=inputs_lib.read_vocab(config.graph_dir, gs.CATEGORY),
      category_states=[s.numpy() for s in category_states],
      category_degree=_degree(graph, gs.HAS_ITEM, gs.CATEGORY), **attributes)
  users = None
  if gs.USER_ATTRIBUTE in states and spec.get("users"):
    users = item_encoder_lib.NewUserEncoder(
        tower=tower, attribute_spec=spec["users"],
        attribute_states=[s.numpy() for s in states[gs.USER_ATTRIBUTE]],
        attribute_degree=_degree(graph, gs.ATTRIBUTE_OF_USER, gs.USER_ATTRIBUTE))
  return items, users


def fit(config: config_lib.RunConfig, inputs: inputs_lib.RunInputs, model, *,
        progress: bool = True) -> manifest_lib.Manifest:
  """Writes the final fit's artifacts and the manifest (module docstring); returns it.

  Args:
    config: the run config.
    inputs: the run's inputs.
    model: the trained model, its best epoch restored and its query picked (query.json).
    progress: print what is fit, with the time it took.
  """
  start = time.time()
  layout = layout_lib.RunLayout(config.run_dir)
  data = inputs.data
  storage.rmtree(layout.final)  # Nothing of an older final fit is kept.
  storage.remove(layout.manifest)
  split = splits.SERVING
  events = data.known_events(split)  # Every known event: training, validation and test.
  graph = inputs_lib.known_graph(config, inputs, split)
  states = model.states(graph)
  query = query_lib.read_query(config)
  emb = query_lib.embeddings(model, config, inputs, split, query, states=states)
  indptr, seen, seen_times = seen_items(events, data.num_users)
  # Distinct users per item over every known event (the popular items of a user with nothing).
  popularity = np.bincount(seen, minlength=data.num_items).astype(np.int64)
  arrays = dict(user_ids=np.asarray(inputs.user_ids).astype(str),
                item_ids=np.asarray(inputs.item_ids).astype(str),
                user_embeddings=emb["user"], item_embeddings=emb["item"],
                item_bias=emb.get("item_bias", np.zeros(data.num_items, np.float32)),
                seen_indptr=indptr, seen_indices=seen, seen_times=seen_times,
                popularity=popularity)
  info = {"history_half_life": float(query.half_life), "has_item_bias": "item_bias" in emb,
          "clock": int(np.asarray(events["timestamp"]).max(initial=0)),
          "two_stage": bool(config.ranking.enabled)}
  artifacts = {
      "serving_arrays": manifest_lib.Artifact(
          "arrays", f"final/{ARRAYS}", "tower embeddings, seen items, popularity, features' "
          "tables, fit on every known event"),
      "serving_info": manifest_lib.Artifact("json", f"final/{INFO}",
                                            "query half-life, clock, new-item boost, sources"),
      "item_encoder": manifest_lib.Artifact("encoder", f"final/{ITEM_ENCODER}",
                                            "cold-item encoder (tower item side, text tower)"),
  }
  item_encoder, user_encoder = cold_encoders(config, model, graph)
  if item_encoder.text_dim:  # encode_items blends text similarity into its nearest items.
    arrays["item_text_embeddings"] = np.asarray(model.item_text_table(), np.float32)
  saved_encoders.save_item_encoder(item_encoder, layout.final_file(ITEM_ENCODER))
  if user_encoder is not None:
    saved_encoders.save_user_encoder(user_encoder, layout.final_file(USER_ENCODER))
    artifacts["user_encoder"] = manifest_lib.Artifact(
        "encoder", f"final/{USER_ENCODER}", "new-user encoder (tower user side)")
  if progress:
    print(f"final fit: the tower and its encoders on {len(events['user'])} known events "
          f"({time.time() - start:.0f}s)", flush=True)
  if config.ranking.enabled:
    _fit_two_stage(config, inputs, model, states, events, arrays, info, artifacts,
                   progress=progress)
  storage.save_npz(layout.final_file(ARRAYS), **arrays)
  storage.write_json(layout.final_file(INFO), info)
  manifest = manifest_lib.build(
      layout, artifacts, config=config,
      events=manifest_lib.events_summary(
          events, splits=["train", "validation", "test"], num_users=data.num_users,
          num_items=data.num_items))
  manifest_lib.write(layout, manifest)
  if progress:
    print(f"final fit: {len(artifacts)} artifacts in {layout.final}, manifest "
          f"{layout.manifest} ({time.time() - start:.0f}s)", flush=True)
  return manifest


def _fit_two_stage(config, inputs, model, states, events, arrays, info, artifacts, *,
                   progress: bool) -> None:
  """The sources on every known event, the features' tables and the served new-item boost."""
  layout = layout_lib.RunLayout(config.run_dir)
  ranker, ranker_info = two_stage.load(config)
  tower = two_stage.tower_space(model, config, inputs, splits.SERVING, states=states)
  reuse = {} if config.ranking.refit_trained_sources else two_stage.trained_sources(config)
  stage = two_stage.Stage(config, inputs, events, tower, reuse=reuse, progress=progress)
  features = stage.features(config.ranking.drop_features)
  if features.feature_names != ranker_info["feature_names"]:
    raise ValueError(f"the ranker of {config.run_dir} reads features "
                     f"{ranker_info['feature_names']}, this config makes "
                     f"{features.feature_names}: retrain (`tfgrec train`)")
  sources = {}
  for name, (source, n) in stage.sources.items():
    base.save_source(source, layout.final_source(name))
    sources[name] = n
    artifacts[f"source:{name}"] = manifest_lib.Artifact(
        "source", f"final/sources/{name}", f"stage-1 source {name!r} fit on every known event")
  boost, keep = two_stage.served_new_item_boost(config, ranker, ranker_info, stage, inputs.data)
  artifacts["ranker"] = manifest_lib.Artifact(
      "checkpoint", "ranker", "the stage-2 ranker (checkpoint, ranker.json, training lists)")
  if stage.user_query is not None:
    arrays["user_states"] = np.asarray(stage.user_query, np.float32)
  arrays["new_items"] = np.asarray(stage.new_items, bool)
  arrays["event_items"] = np.asarray(events["item"], np.int64)
  arrays["event_times"] = np.asarray(events["timestamp"], np.int64)
  available = two_stage.release_times(config, inputs)
  if available is not None:
    arrays["available_time"] = available
  if stage.text is not None:
    arrays["feature_text"] = np.asarray(stage.text, np.float32)
  arrays["item_categories"] = np.asarray(stage.categories, np.float32)
  info.update(sources=sources, source_order=list(stage.sources),
              feature_names=features.feature_names, new_item_boost=float(boost),
              new_item_keep_share=float(keep), drop_features=list(config.ranking.drop_features))
  if progress:
    print(f"final fit: sources {', '.join(stage.sources)} on every known event "
          f"({stage.seconds:.0f}s); new-item boost {boost:.2f} for the served lists",
          flush=True)


def read(config: config_lib.RunConfig, *, verify: bool = True):
  """(manifest, arrays, info) of the run's final fit, checked against its manifest."""
  layout = layout_lib.RunLayout(config.run_dir)
  manifest = (manifest_lib.verify(layout, config) if verify
              else manifest_lib.read(layout))
  arrays = storage.load_npz(layout.final_file(ARRAYS))
  info = storage.read_json(layout.final_file(INFO))
  return manifest, arrays, info


def load_sources(config: config_lib.RunConfig, info: dict) -> Dict[str, tuple]:
  """{name: (source, N)} of the final fit, in the ranker's order."""
  layout = layout_lib.RunLayout(config.run_dir)
  return {name: (base.load_source(layout.final_source(name)), int(info["sources"][name]))
          for name in info["source_order"]}


def item_encoder(config: config_lib.RunConfig) -> Optional[saved_encoders.SavedItemEncoder]:
  path = layout_lib.RunLayout(config.run_dir).final_file(ITEM_ENCODER)
  return saved_encoders.SavedItemEncoder(path) if storage.exists(path) else None


def user_encoder(config: config_lib.RunConfig) -> Optional[saved_encoders.SavedUserEncoder]:
  path = layout_lib.RunLayout(config.run_dir).final_file(USER_ENCODER)
  return saved_encoders.SavedUserEncoder(path) if storage.exists(path) else None
