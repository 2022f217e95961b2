"""The two stages of a run: the stage-1 sources and the stage-2 ranker over the trained graph
tower (`tfgrec train`), scored on test (`tfgrec evaluate`). The protocol is tfgrec.ranking's
(lists, fitting, new items; its README); this module binds it to a run's config, graph
directory and tower. The final fit (tfgrec.train.final_fit) refits the sources on every known event with `Stage`.

Files (tfgrec.train.layout): `<run_dir>/ranker/` holds the ranker's checkpoint, `ranker.json`
(feature names, the sources and their N, training figures), `training_lists.npz` (the lists it
was fit on) and `sources/` (the trained sources fit on the training split, which evaluation
reuses); `<run_dir>/evaluation/two_stage.json` keeps the last `evaluate`'s rows, reused while
nothing they read changed.
"""
import dataclasses
import hashlib
import json
import logging
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import pandas as pd

from tfgrec import config as config_lib
from tfgrec import storage
from tfgrec.data import attributes as attributes_lib
from tfgrec.eval import metrics
from tfgrec.graph import schema as gs
from tfgrec.ranking import features as features_lib
from tfgrec.ranking import fitting
from tfgrec.ranking import lists as lists_lib
from tfgrec.ranking import new_items as new_items_lib
from tfgrec.ranking import ranker as ranker_lib
from tfgrec.sources import base, embedding, graph_filter, sequence, time_context
from tfgrec.train import inputs as inputs_lib
from tfgrec.train import layout as layout_lib
from tfgrec.train import query as query_lib

tf = features_lib.tf
logger = logging.getLogger(__name__)

TOWER_QUERY = "tower_query"  # ranker.json: the graph tower source's query (tower_space).
HOLDOUT_ROWS = "member_holdout_rows"  # ranker.json: each ranker's held-out training lists.
# Changed when the way `evaluate` computes its rows changes, so rows kept by older code are not
# reused (2: the new-item boost fit for the test lists' share of new candidates).
EVALUATION_VERSION = "2"
# Sources that train (minutes on a real log): fit once on the training split, then evaluation
# reuses them with the longer histories; the final fit refits them on every event.
TRAINED_SOURCES = ("sequence",)


def _layout(config: config_lib.RunConfig) -> layout_lib.RunLayout:
  return layout_lib.RunLayout(config.run_dir)


def has_ranker(config: config_lib.RunConfig) -> bool:
  return storage.exists(_layout(config).ranker_info)


def item_categories(inputs) -> np.ndarray:
  """[I, G] 0/1 matrix of each item's categories (from the graph's item→category edges)."""
  graph = inputs.raw_graph if inputs.raw_graph is not None else inputs.graph
  edges = graph.edge_sets[gs.IN_CATEGORY].adjacency
  num_categories = int(graph.node_sets[gs.CATEGORY].total_size)
  out = np.zeros([len(inputs.item_ids), max(num_categories, 1)], np.float32)
  out[edges.source.numpy(), edges.target.numpy()] = 1.0
  return out


def release_times(config: config_lib.RunConfig, inputs) -> Optional[np.ndarray]:
  """[I] each item's release time from the catalog attribute ranking.release_attribute (a
  year or a date; NO_TIME where unknown), or None when it is unset or no item has one. Fresh
  items and the items' age count from the earlier of it and the item's first event."""
  column = config.ranking.release_attribute
  path = storage.join(config.graph_dir, "catalog.parquet")
  if not column or not storage.exists(path):
    return None
  catalog = storage.read_parquet(path, columns=["item_id", "attributes"])
  times = pd.Series(attributes_lib.release_times(catalog["attributes"], column),
                    index=catalog["item_id"].astype(str))
  out = times.reindex(pd.Index(np.asarray(inputs.item_ids).astype(str))).fillna(
      base.NO_TIME).to_numpy(np.int64)
  return out if (out != base.NO_TIME).any() else None


@dataclasses.dataclass
class TowerSpace:
  """The trained graph tower as its candidate source reads it (tfgrec.sources.embedding).

  Attributes:
    item: [I, D] the items' normalized states.
    user: [U, D] the users' own part of the query, a * l2norm(user state) (zeros without
      ranking.tower_query).
    half_life: the history readout's half-life, in events.
    popularity_weight: g * T, the popularity prior in cosine units (0: none).
  """
  item: np.ndarray
  user: np.ndarray
  half_life: float
  popularity_weight: float


def tower_space(model, config: config_lib.RunConfig, inputs, split: Optional[str],
                states=None, *, picked_query: Optional[bool] = None) -> Optional[TowerSpace]:
  """The graph tower's space predicting `split` (None: the training graph; 'test': the graph
  with the validation events, tfgrec.train.inputs.known_graph), None without a tower or its
  source. With picked_query the source scores with the run's picked query (tfgrec.train.query:
  its user weight a, half-life h and popularity weight g); without it, with the history readout
  alone (half-life 5, no prior). picked_query None: as the run's ranker was trained (its
  ranker.json; rankers from before the option: off), else ranking.tower_query."""
  if model is None or config.ranking.candidates.graph_tower <= 0:
    return None
  if states is None:
    states = model.states(None if split is None else inputs_lib.known_graph(config, inputs,
                                                                            split))
  item = tf.math.l2_normalize(states[gs.ITEM], axis=-1).numpy()
  user = tf.math.l2_normalize(states[gs.USER], axis=-1).numpy()
  if picked_query is None:
    picked_query = (load_info(config).get(TOWER_QUERY, False) if has_ranker(config)
                    else config.ranking.tower_query)
  if not picked_query:
    return TowerSpace(item, np.zeros_like(user), 5.0, 0.0)
  query = query_lib.read_query(config)
  # A model without the readout (half-life 0) still reads a new user's history: the default.
  return TowerSpace(item, np.float32(query.user_weight) * user, query.half_life or 5.0,
                    query.popularity_weight * config.tasks.temperature)


def source_factories(config: config_lib.RunConfig, *, has_text: bool,
                     tower: Optional[TowerSpace], verbose: bool = True
                     ) -> Dict[str, Tuple[Callable[[], base.CandidateSource], int]]:
  """{name: (factory, N)} of the sources the config turns on (and the run can feed)."""
  n = config.ranking.candidates
  seq = config.ranking.sequence
  seed = config.train.seed

  def sequence_source():
    return sequence.SequenceSource(
        max_len=seq.max_len, dim=seq.dim, num_heads=seq.num_heads, num_blocks=seq.num_blocks,
        dropout=seq.dropout, epochs=seq.epochs, batch_size=seq.batch_size,
        learning_rate=seq.learning_rate, seed=seed, verbose=verbose)

  m = config.ranking.item_neighbours
  makers = {
      "ease": lambda: graph_filter.Ease(neighbours=m or None),
      "graph_filter": lambda: (graph_filter.GraphFilter(dense_max_items=0, neighbours=m) if m
                               else graph_filter.GraphFilter()),
      "sequence": sequence_source,
      "graph_tower": lambda: embedding.EmbeddingNeighbours.graph_tower(
          half_life=tower.half_life, popularity_weight=tower.popularity_weight),
      "text": embedding.EmbeddingNeighbours.text,
      "trending": time_context.Trending,
      "fresh": lambda: time_context.Fresh(half_life_days=3650.0),
  }
  usable = {"text": has_text, "graph_tower": tower is not None}
  return {name: (make, getattr(n, name)) for name, make in makers.items()
          if getattr(n, name) > 0 and usable.get(name, True)}


class Stage:
  """Sources fit on some events, and the candidate features over them.

  tower: the graph tower's space (tower_space), None without it.
  reuse: {name: an already fit source} used instead of fitting that one.
  """

  def __init__(self, config, inputs, events, tower: Optional[TowerSpace], *,
               reuse: Optional[Dict[str, base.CandidateSource]] = None, progress: bool = True):
    data = inputs.data
    item_data = {}
    if inputs.item_text is not None:
      item_data[embedding.TEXT_EMBEDDING] = inputs.item_text
    if tower is not None:
      item_data[embedding.ITEM_EMBEDDING] = tower.item
    available = release_times(config, inputs)
    if available is not None:
      item_data[time_context.AVAILABLE_TIME] = available
    make = source_factories(config, has_text=inputs.item_text is not None, tower=tower,
                            verbose=progress)
    # The users' own part of the graph-tower source's query (known users; `lists`).
    self.user_query = tower.user if tower is not None and "graph_tower" in make else None
    reuse = {k: v for k, v in (reuse or {}).items() if k in make}
    start = time.time()
    fitted, self.fit_seconds = fitting.fit_sources(
        {k: v for k, v in make.items() if k not in reuse}, events, data.num_items, item_data,
        progress=progress)
    self.seconds = time.time() - start
    self.sources = {k: ((reuse[k], min(n, data.num_items)) if k in reuse else fitted[k])
                    for k, (_, n) in make.items()}
    self.events = events
    self.new_items = new_items_lib.new_items(events["item"], data.num_items)  # Without an event here.
    self.histories = base.UserHistories(events["user"], events["item"], events["timestamp"],
                                        num_users=data.num_users)
    self.index = time_context.EventIndex(events["item"], events["timestamp"],
                                         num_items=data.num_items, available_time=available)
    self.text = inputs.item_text
    self.categories = item_categories(inputs)

  def features(self, drop=()) -> features_lib.CandidateFeatures:
    return features_lib.CandidateFeatures(
        sources=self.sources, events=self.index, text_embedding=self.text,
        item_categories=self.categories, config=features_lib.FeatureConfig(drop=tuple(drop)))

  def lists(self, config, users, now, relevant, progress=False) -> lists_lib.Lists:
    """The candidate lists of known `users` (their histories here, their user query)."""
    return lists_lib.build_lists(self.features(config.ranking.drop_features), self.histories,
                                users, now, relevant, progress=progress,
                                user_query=self.user_query)


def _new_user_sample(config: config_lib.RunConfig, users: np.ndarray) -> np.ndarray:
  """The training users that also give a list as new users (ranking.new_user_lists), sorted."""
  count = int(round(config.ranking.new_user_lists * len(users)))
  if count <= 0:
    return np.zeros([0], np.int64)
  rng = np.random.default_rng(config.ranking.ranker.seed)
  return np.sort(rng.choice(np.asarray(users, np.int64), size=count, replace=False))


def attribute_queries(model, config: config_lib.RunConfig,
                      users: np.ndarray) -> Optional[np.ndarray]:
  """[num_users, D] the graph tower's state of `users` from their attributes alone (unit norm;
  zero rows for the other users and users without attributes): what the served model computes
  for a user it does not know (tfgrec.export.item_encoder.NewUserEncoder). None when there is
  no tower, its source is off, or the tower reads no user attributes."""
  if model is None or config.ranking.candidates.graph_tower <= 0:
    return None
  tower = model.tower
  if gs.USER_ATTRIBUTE not in tower.side_sets:
    return None
  graph = model.graph
  tower_inputs = {"graph": graph}
  if tower.text_projection is not None:
    tower_inputs["item_text"] = model.item_text_table()
  states = tower.side_round_states(tower_inputs)[gs.USER_ATTRIBUTE]
  adjacency = graph.edge_sets[gs.USER_HAS_ATTRIBUTE].adjacency
  owner, value = adjacency.source.numpy(), adjacency.target.numpy()
  num_values = int(graph.node_sets[gs.USER_ATTRIBUTE].total_size)
  # A user of the graph is already counted in its values' degrees, as a served new user is
  # (the encoder adds one).
  degree = tf.constant(np.bincount(value, minlength=num_values).astype(np.float32))
  users = np.asarray(users, np.int64)
  mine = np.isin(owner, users)
  row = np.searchsorted(users, owner[mine])
  order = np.argsort(row, kind="stable")
  values = tf.RaggedTensor.from_value_rowids(value[mine][order].astype(np.int64),
                                             row[order].astype(np.int64), nrows=len(users))
  state = tf.math.l2_normalize(tower.encode_new_users(values, states, degree), axis=-1).numpy()
  out = np.zeros([int(graph.node_sets[gs.USER].total_size), state.shape[1]], np.float32)
  out[users] = np.where((values.row_lengths().numpy() > 0)[:, None], state, 0.0)
  return out


def _now(data, split, histories) -> np.ndarray:
  return np.maximum(data.first_times(split), histories.latest)


def candidate_recall(lists: lists_lib.Lists) -> float:
  """Share of the label items among the candidates (mean over users): the ranker's ceiling."""
  return float((lists.labels.sum(1) / np.maximum(lists.num_relevant, 1)).mean())


def new_item_boost(config: config_lib.RunConfig, ranker: ranker_lib.RankerEnsemble,
                   holdout_rows, train_lists: lists_lib.Lists, train_new: np.ndarray,
                   lists: lists_lib.Lists, new: np.ndarray) -> Tuple[float, float, float]:
  """(boost, keep share, share): the new-item boost of `ranker` for `lists`, whose new items are
  `new` ([num_items] bool) and make `share` of their candidates, fit on the ranker's held-out
  training lists (`holdout_rows` of `train_lists`, new items `train_new`: without a training
  event) with their new candidates thinned to that share (new_items_lib.new_item_keep_share;
  candidates only, no label is read)."""
  share = new_items_lib.new_candidate_share(lists, new)
  keep = new_items_lib.new_item_keep_share(train_lists, holdout_rows, train_new, share)
  boost, _ = new_items_lib.fit_new_item_boost(
      ranker, train_lists, holdout_rows, train_new, k=config.ranking.ranker.k,
      budget=config.ranking.new_item_budget, keep_share=keep, seed=config.ranking.ranker.seed)
  return boost, keep, share


def holdout_rows(config: config_lib.RunConfig, ranker: ranker_lib.RankerEnsemble, info: dict,
                 train_lists: lists_lib.Lists):
  """Each ranker's held-out training lists (ranker.json; drawn again as `train` drew them for a
  ranker trained before they were kept)."""
  rows = info.get(HOLDOUT_ROWS)
  if rows is None:
    rows = fitting.member_holdout_rows(train_lists, config.ranking.ranker, len(ranker.members))
  return rows


SERVED_SHARE_USERS = 256  # Known users whose served lists give the export's new-candidate share.


def served_new_item_boost(config: config_lib.RunConfig, ranker: ranker_lib.RankerEnsemble,
                          info: dict, stage: "Stage", data) -> Tuple[float, float]:
  """(boost, keep share) of the exported model: new_item_boost for the lists the server builds,
  the sources fit on every event (`stage`), measured on up to SERVED_SHARE_USERS known users
  (seeded sample) at their latest event, the server's default `now`. Without a new item in the
  catalog the boost is never added; the run's (training) boost is kept then."""
  if not stage.new_items.any():
    return float(info.get("new_item_boost", 0.0)), 1.0
  users = np.flatnonzero(np.diff(stage.histories.indptr) > 0)
  if len(users) > SERVED_SHARE_USERS:
    rng = np.random.default_rng(config.ranking.ranker.seed)
    users = np.sort(rng.choice(users, size=SERVED_SHARE_USERS, replace=False))
  lists = stage.lists(config, users, stage.histories.latest, None)
  train_lists = load_lists(config)
  boost, keep, share = new_item_boost(
      config, ranker, holdout_rows(config, ranker, info, train_lists), train_lists,
      training_new_items(data), lists, stage.new_items)
  logger.info("new items: %d without any event; their boost %.2f (held-out new candidates kept "
              "with probability %.2f: the served lists' share %.4f)", int(stage.new_items.sum()),
              boost, keep, share)
  return boost, keep


def training_new_items(data) -> np.ndarray:
  """[num_items] bool: the new items of the ranker's training lists (no training event)."""
  return new_items_lib.new_items(data.train_events["item"].to_numpy(np.int64), data.num_items)


def train(config: config_lib.RunConfig, inputs, model=None, *, progress: bool = True
          ) -> Dict[str, float]:
  """Fits the sources on training events, the ranker on validation lists; saves the ranker.

  Returns timing and quality figures (also in ranker.json).
  """
  data = inputs.data
  start = time.time()
  stage = Stage(config, inputs, data.known_events("validation"),
                tower_space(model, config, inputs, None,
                            picked_query=config.ranking.tower_query), progress=progress)
  users = np.flatnonzero(data.validation.sizes() > 0)
  if not len(users):
    raise ValueError("the ranker needs validation events (its labels); the split has none")
  now = _now(data, "validation", stage.histories)
  lists = stage.lists(config, users, now, data.validation, progress=progress)
  new_users = _new_user_sample(config, users)
  if len(new_users):  # The same users as new: no history, their attributes' state.
    lists = lists_lib.Lists.concat([lists, lists_lib.build_lists(
        stage.features(config.ranking.drop_features),
        base.UserHistories([], [], [], num_users=data.num_users), new_users, now,
        data.validation, user_query=attribute_queries(model, config, new_users))])
  lists_s = time.time() - start - stage.seconds
  t = time.time()
  ranker, history = fitting.train_ranker(lists, config.ranking.ranker, progress=progress)
  # At the held-out lists' own share of new candidates; evaluate and the final fit price it
  # again for the share of the lists they rank (new_item_boost).
  boost, boost_curve = new_items_lib.fit_new_item_boost(
      ranker, lists, history["member_holdout_rows"], stage.new_items,
      k=config.ranking.ranker.k, budget=config.ranking.new_item_budget)
  feats = stage.features(config.ranking.drop_features)
  importance = {}
  if len(history["holdout_rows"]):  # The first member, on the lists it never trained on.
    importance = fitting.permutation_importance(
        ranker.members[0], lists.take(history["holdout_rows"]), feats.feature_groups,
        k=config.ranking.ranker.k, seed=config.ranking.ranker.seed)
  info = {
      "feature_names": feats.feature_names, "feature_groups": feats.feature_groups,
      "sources": {k: n for k, (_, n) in stage.sources.items()},
      "candidate_recall": candidate_recall(lists),
      "candidates_per_user": float(lists.valid.sum(1).mean()),
      "new_user_lists": int(len(new_users)),
      TOWER_QUERY: bool(config.ranking.tower_query),
      "holdout_ndcg": history["member_holdout_ndcg"], "epochs": len(history["loss"]),
      "ensemble": len(ranker.members),
      "permutation_importance": importance,
      "new_item_boost": boost, "new_item_curve": boost_curve,
      HOLDOUT_ROWS: [np.asarray(r).tolist() for r in history["member_holdout_rows"]],
      "seconds": {"sources": stage.seconds, **{f"source {k}": v for k, v in
                                               stage.fit_seconds.items()},
                  "lists": lists_s, "ranker": time.time() - t},
  }
  save(config, ranker, info)
  save_lists(config, lists)
  for name in TRAINED_SOURCES:  # Evaluation reuses them (inductive: they read any history).
    if name in stage.sources:
      base.save_source(stage.sources[name][0], _layout(config).trained_source(name))
  if progress:
    print(f"ranker: {len(lists.users)} lists ({len(new_users)} of them as new users), "
          f"{info['candidates_per_user']:.0f} candidates a user, "
          f"candidate recall {info['candidate_recall']:.4f}, held-out ndcg@"
          f"{config.ranking.ranker.k} of each ranker "
          + " ".join(f"{v:.4f}" for v in info["holdout_ndcg"])
          + f", new-item boost {boost:.2f} at their share of new candidates (evaluate and "
          "the final fit price it for theirs)", flush=True)
  return info


def save(config, ranker: ranker_lib.Ranker, info: dict) -> None:
  layout = _layout(config)
  storage.makedirs(layout.ranker)
  tf.train.Checkpoint(ranker=ranker).write(layout.ranker_checkpoint)
  info = {**info, "num_features": ranker.num_features}
  storage.write_text(layout.ranker_info, json.dumps(info, indent=1))


def trained_sources(config) -> Dict[str, base.CandidateSource]:
  """{name: source} of the TRAINED_SOURCES `train` saved (fit on the training split)."""
  out = {}
  for name in TRAINED_SOURCES:
    path = _layout(config).trained_source(name)
    if storage.exists(path):
      out[name] = base.load_source(path)
  return out


def save_lists(config, lists: lists_lib.Lists) -> None:
  """The ranker's training lists (the ablations of `evaluate` refit rankers on them)."""
  storage.save_npz(_layout(config).ranker_lists, compressed=True, **{
      k: v for k, v in vars(lists).items() if v is not None})


def load_lists(config) -> lists_lib.Lists:
  data = storage.load_npz(_layout(config).ranker_lists)
  return lists_lib.Lists(**{k: data[k] for k in data})


def load_info(config) -> dict:
  """ranker.json of a run."""
  layout = _layout(config)
  if not has_ranker(config):
    raise FileNotFoundError(f"{layout.ranker}: no trained ranker; run `tfgrec train` with "
                            "ranking.enabled: true")
  return json.loads(storage.read_text(layout.ranker_info))


def load(config) -> Tuple[ranker_lib.Ranker, dict]:
  """(the trained ranker, ranker.json) of a run."""
  info = load_info(config)
  r = config.ranking.ranker
  ranker = ranker_lib.RankerEnsemble([
      ranker_lib.Ranker(num_features=info["num_features"], cross_layers=r.cross_layers,
                        projection_dim=r.projection_dim, hidden=r.hidden, dropout=r.dropout,
                        l2=r.l2) for _ in range(info.get("ensemble", 1))])
  ranker({"features": np.zeros([1, 1, info["num_features"]], np.float32),
          "valid": np.ones([1, 1], bool)})
  tf.train.Checkpoint(ranker=ranker).read(_layout(config).ranker_checkpoint).expect_partial()
  return ranker, info


def evaluate(config: config_lib.RunConfig, inputs, model=None, *,
             measure: Optional[Callable[[metrics.ScoreFn], dict]] = None,
             reuse_key: Optional[str] = None, progress: bool = True
             ) -> Tuple[Dict[str, dict], Dict[str, float]]:
  """The two stages on test, each source alone, and drop-one ablations.

  The closed-form and event sources are refit on training + validation events; the trained
  ones (TRAINED_SOURCES) too with `ranking.refit_trained_sources`, else they are those `train`
  fit and saved, reading the longer histories (as the graph tower does: its items are its
  embeddings on the graph with the validation edges); the ranker is the run's. Ablations reuse
  the lists (the training lists saved by `train`, the test lists): a dropped feature group
  loses its columns, a dropped source also its candidates; `ranking.ablation_ensemble` rankers
  are fit for each, and for the reference row "two-stage − none" (every feature) the same way,
  each with its own new-item boost (new_item_boost: fit for the test lists' share of new
  candidates). "two-stage − new-item boost" is the run's ranker on the same lists without it.

  The rows are kept in `<run_dir>/evaluation/two_stage.json` and reused by the next call while
  the graph, the tower's best epoch, the ranker and the ranking config are unchanged (and, with
  a custom `measure`, while the caller's `reuse_key` is the same; without one nothing is kept).

  Args:
    measure: score function -> results (default: `metrics.evaluate` at K = 10, 20, 50).
    reuse_key: what `measure` depends on, as a string (see above).

  Returns:
    ({"two-stage": ..., "source: <name>": ..., "two-stage − <group>": ...},
     {"candidate_recall": {"two-stage" and each source: share of the test items among its
      candidates}, "permutation_importance": {group: held-out NDCG lost} (from training),
      "new_item_boost": {"boost", "keep_share", "test_share": the run's boost on test
      (new_item_boost), "training": the boost at the held-out lists' own share}}).
  """
  data = inputs.data
  if not has_ranker(config):
    load(config)  # Raises the error that says how to train one.
  cache = _layout(config).evaluation_cache
  key = _evaluation_key(config) if measure is None or reuse_key else None
  if key is not None and reuse_key:
    key = f"{key}:{reuse_key}"
  saved = storage.read_json(cache) if key is not None and storage.exists(cache) else None
  if saved is not None and saved.get("key") == key:
    if progress:
      print(f"  two stages: unchanged since the last evaluate, its rows are reused ({cache}; "
            "delete it to recompute)", flush=True)
    return saved["results"], saved["figures"]
  ranker, info = load(config)
  reuse = {} if config.ranking.refit_trained_sources else trained_sources(config)
  stage = Stage(config, inputs, data.known_events("test"),
                tower_space(model, config, inputs, "test"), reuse=reuse, progress=progress)
  users = np.flatnonzero(data.test.sizes() > 0)
  now = _now(data, "test", stage.histories)
  exclude = [data.train, data.validation]

  def score(fn):
    if measure is not None:
      return measure(fn)
    return metrics.evaluate(fn, data.test, exclude, num_items=data.num_items, ks=(10, 20, 50),
                            user_batch=128)

  def headline(result):
    return result.get("all", result).get("ndcg@20", float("nan"))

  lists = stage.lists(config, users, now, data.test, progress=progress)
  logits = lists_lib.rank_lists(ranker, lists)
  train_lists = load_lists(config)
  new, new_train = stage.new_items, training_new_items(data)
  boost, keep, share = new_item_boost(config, ranker,
                                      holdout_rows(config, ranker, info, train_lists),
                                      train_lists, new_train, lists, new)
  if progress:
    print(f"  new-item boost {boost:.2f} (the held-out lists' new candidates kept with "
          f"probability {keep:.2f}: the test lists' share {share:.4f})", flush=True)
  out = {"two-stage": score(lists_lib.list_scorer(lists, new_items_lib.boosted(logits, lists, new, boost),
                                                 data.num_items))}
  if boost:  # The same lists and ranker without the boost: what placing new items costs.
    out["two-stage − new-item boost"] = score(lists_lib.list_scorer(lists, logits,
                                                                   data.num_items))
  recall = {"two-stage": candidate_recall(lists)}
  names = info["feature_names"]
  for name, (source, n) in stage.sources.items():
    out[f"source: {name}"] = score(base.user_scorer(
        source, stage.histories, now, use_tf=True,
        user_query=stage.user_query if source.reads_user_query else None))
    column = names.index(f"source/{name}/proposed") if f"source/{name}/proposed" in names else -1
    if column >= 0:  # Recall of this source's top N alone.
      hit = (lists.features[..., column] > 0) & (lists.labels > 0)
      recall[name] = float((hit.sum(1) / np.maximum(lists.num_relevant, 1)).mean())
    if progress:
      print(f"  source {name}: ndcg@20 {headline(out[f'source: {name}']):.4f}, candidate "
            f"recall@{n} {recall.get(name, float('nan')):.4f}", flush=True)
  if config.ranking.ablations:
    groups = info["feature_groups"]
    small = dataclasses.replace(config.ranking.ranker, ensemble=config.ranking.ablation_ensemble)
    # Each ablation's rankers get their own new-item boost, fit as the run's is for its lists.
    for group in ["none"] + sorted(set(groups), key=groups.index):
      keep_cols = np.array([g != group for g in groups])
      tr, te = _drop(train_lists, keep_cols, group, names), _drop(lists, keep_cols, group, names)
      model_g, history_g = fitting.train_ranker(tr, small, progress=False)
      boost_g = new_item_boost(config, model_g, history_g["member_holdout_rows"], tr,
                               new_train, te, new)[0]
      out[f"two-stage − {group}"] = score(lists_lib.list_scorer(
          te, new_items_lib.boosted(lists_lib.rank_lists(model_g, te), te, new, boost_g),
          data.num_items))
      if progress:
        print(f"  ablation − {group}: ndcg@20 {headline(out[f'two-stage − {group}']):.4f}",
              flush=True)
  figures = {"candidate_recall": recall,
             "permutation_importance": info.get("permutation_importance", {}),
             "new_item_boost": {"boost": boost, "keep_share": keep, "test_share": share,
                                "training": float(info.get("new_item_boost", 0.0))}}
  if key is not None:
    storage.write_json(cache, {"key": key, "results": out, "figures": figures})
  return out, figures


def _evaluation_key(config: config_lib.RunConfig) -> str:
  """A digest of what `evaluate`'s rows depend on: the graph's splits (stats.json), the tower's
  best epoch and picked query, the ranker (its checkpoint index and ranker.json) and the
  ranking config."""
  layout = _layout(config)
  digest = hashlib.sha256(EVALUATION_VERSION.encode())
  for path in (storage.join(config.graph_dir, "stats.json"), layout.best, layout.query,
               layout.ranker_info, layout.ranker_checkpoint + ".index"):
    digest.update(path.encode() + b"\0")
    digest.update(storage.read_bytes(path) if storage.exists(path) else b"-")
  digest.update(json.dumps(dataclasses.asdict(config.ranking), sort_keys=True,
                           default=str).encode())
  return digest.hexdigest()


def _drop(lists: lists_lib.Lists, keep_cols: np.ndarray, group: str, names) -> lists_lib.Lists:
  """Lists without a feature group; without a source's candidates too for "source:<name>"."""
  out = lists.take(np.arange(len(lists.users)))
  out.features = lists.features[..., keep_cols]
  if group.startswith("source:"):
    proposed = np.zeros(lists.valid.shape, bool)
    for j, name in enumerate(names):
      if name.endswith("/proposed") and not name.startswith(group.replace(":", "/") + "/"):
        proposed |= lists.features[..., j] > 0
    out.valid = lists.valid & proposed
    if out.labels is not None:
      out.labels = out.labels * out.valid
  return out
