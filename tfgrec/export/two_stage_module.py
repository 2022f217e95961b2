"""The two-stage serving graph: candidate sources → features → ranker, inside one SavedModel.

`TwoStageModule` extends `serving_module.ServingModule` (whose `rank`, `similar_items` and
`encode_items` it keeps) with both stages in `recommend`:

  recommend(user_id [B] string, history [B, H] string, '' padding, most recent first)
      -> item_ids [B, K] string, scores [B, K] float
  recommend_at(user_id [B], history [B, H], history_time [B, H] int64, now [B] int64,
               user_attributes [B, A] string ("column=value", '' padding))
      -> the same, at an explicit reference time, and for users the model does not know, from
         their attributes too
  explain(user_id [B], history [B, H], item_ids [B, N])
      -> because [B, N] string (the history item behind the item), contribution [B, N],
         source [B, N] string (the stage-1 source that ranks the item highest, '' if none),
         reason [B, N] string ("similar to X", "trending now", "new, like X")

A request's history is the user's events since training. A known user's stored events (with
their times) are added to it, so fresh events count for every source and feature; an unknown
user is served from the request alone; with neither, the sources that read no history (trending,
fresh) still propose items at `now`. Times: `recommend` sets now to the user's latest stored
event (the model's latest event for an unknown user) plus the number of request events, and the
request's events (distinct items, most recent first) to now, now − 1 s, ...; `recommend_at`
takes `now` and `history_time` (−1: the same default times) from the request. The user's known
items (at or before now) are never recommended. Stock TensorFlow ops only.

The graph tower source's query has the model's user part (tfgrec.sources.embedding): a known
user's stored a * l2norm(tower state) (`user_states`); for a user the model does not know, with
at least one known attribute value (recommend_at's `user_attributes`; read when the export has a
user encoder, i.e. its graph has user attributes and its tower reads them, else ignored),
l2norm(state from the attributes), so a new user with no history gets the tower's candidates for
their attributes instead of the most popular items. A known user's attributes are already in
their graph state: ignored.
"""
from typing import Dict

import numpy as np

from tfgrec.export import item_encoder as item_encoder_lib
from tfgrec.export import serving_module
from tfgrec.ranking import features as features_lib
from tfgrec.ranking import ranker as ranker_lib

tf = serving_module.tf

# Why a source proposes an item: (text, whether the history item behind it follows the text).
_REASONS = {"trending": ("trending now", False), "fresh": ("new, like ", True)}
_DEFAULT_PREFIX = "similar to "


class TwoStageModule(serving_module.ServingModule):
  """See the module docstring.

  Args:
    features: a `tfgrec.ranking.CandidateFeatures` over sources fit on every known event.
    ranker: the trained `tfgrec.ranking.Ranker` (its features must match `features`).
    seen_times: [nnz] int64 time of each stored event (aligned with `seen_indices`; NO_TIME −1
      without time).
    clock: the latest known event time (the default `now` of an unknown user).
    new_items: [num_items] bool, the items without a stored event (None: none); their ranker
      logit gets `new_item_boost` (tfgrec.ranking.ranker.boost_new_items).
    new_item_boost: that boost (the run's, fit with the ranker).
    user_states: [num_users, D] the graph tower source's user part of each known user's query
      (tfgrec.ranking.run.TowerSpace.user; None: none).
    **kwargs: `ServingModule` arguments (seen_indptr / seen_indices: each known user's items,
      most recent first).
  """

  def __init__(self, *, features: features_lib.CandidateFeatures, ranker, seen_times,
               clock: int, new_items=None, new_item_boost: float = 0.0, user_states=None,
               **kwargs):
    super().__init__(**kwargs)
    self.user_states = None
    if user_states is not None:
      user_states = np.asarray(user_states, np.float32)
      if user_states.ndim != 2 or user_states.shape[0] != len(kwargs["user_ids"]):
        raise ValueError(f"user_states must be [{len(kwargs['user_ids'])}, D] (one row per "
                         f"known user), got {user_states.shape}")
      self.user_states = tf.constant(user_states)
    if ranker.num_features != features.num_features:
      raise ValueError(f"the ranker reads {ranker.num_features} features, the feature builder "
                       f"makes {features.num_features}")
    num_slots = sum(features.sizes)
    if self.k > num_slots:
      raise ValueError(f"k={self.k} exceeds the {num_slots} candidate slots of the sources")
    self.features = features
    self.ranker = ranker
    self.seen_times = tf.constant(np.asarray(seen_times, np.int64))
    if self.seen_times.shape[0] != self.seen_indices.shape[0]:
      raise ValueError(f"seen_times has {self.seen_times.shape[0]} entries, seen_indices "
                       f"{self.seen_indices.shape[0]}")
    self.clock = tf.constant(int(clock), tf.int64)
    num_items = int(self.item_ids.shape[0])
    new = np.zeros([num_items], bool) if new_items is None else np.asarray(new_items, bool)
    if new.shape != (num_items,):
      raise ValueError(f"new_items must be [{num_items}] (one per item), got {new.shape}")
    self.new_items = tf.constant(new)
    self.new_item_boost = tf.constant(float(new_item_boost), tf.float32)
    self.source_names = tf.constant(features.source_names)
    reasons = [_REASONS.get(k, (_DEFAULT_PREFIX, True)) for k in features.source_names]
    self.reason_prefixes = tf.constant([r[0] for r in reasons])
    self.reason_names_item = tf.constant([r[1] for r in reasons])

  @property
  def signature_names(self):
    return super().signature_names + ["recommend_at"]

  # === Requests → index space ===
  def _request(self, user_id, history, history_time, now):
    """[B] users + request → (history [B, H'] int32, times [B, H'] int64, now [B] int64)."""
    user = self.user_table.lookup(user_id)
    index = self.item_table.lookup(history)
    keep = tf.logical_and(index >= 0, item_encoder_lib.first_occurrences(index))
    position = tf.cumsum(tf.cast(keep, tf.int64), axis=1, exclusive=True)
    count = tf.reduce_sum(tf.cast(keep, tf.int64), axis=1)
    stored = self._known_items(user)
    starts = tf.gather(self.seen_indptr, tf.maximum(user, 0))
    stored_time = tf.RaggedTensor.from_row_lengths(
        tf.gather(self.seen_times, tf.ragged.range(starts, starts + stored.row_lengths())
                  .flat_values), stored.row_lengths())
    latest = tf.reduce_max(stored_time, axis=1)  # -inf-like for empty rows.
    latest = tf.where(stored.row_lengths() > 0, latest, self.clock)
    default_now = tf.maximum(latest, 0) + count
    now = default_now if now is None else tf.where(now >= 0, now, default_now)
    times = now[:, None] - position
    if history_time is not None:
      times = tf.where(history_time >= 0, history_time, times)
    items = tf.concat([tf.where(keep, index, -1), stored.to_tensor(default_value=-1)], axis=1)
    times = tf.concat([tf.where(keep, times, -1), stored_time.to_tensor(default_value=-1)],
                      axis=1)
    return tf.cast(items, tf.int32), times, now

  def _user_query(self, user_id, user_attributes=None):
    """[B, D] the graph tower source's user part (module docstring): a known user's stored one,
    an unknown user's from their attributes, zeros for the others; None when the export has
    neither."""
    user = self.user_table.lookup(user_id)
    query = None
    if self.user_states is not None:
      query = tf.where((user >= 0)[:, None], tf.gather(self.user_states, tf.maximum(user, 0)),
                       0.0)
    if user_attributes is not None and self.user_encoder is not None:
      new, _ = self.user_encoder(user_attributes)
      new = tf.where((user < 0)[:, None], new, 0.0)
      query = new if query is None else query + new
    return query

  def _recommend(self, user_id, history, history_time=None, now=None, user_attributes=None):
    items, times, now = self._request(user_id, history, history_time, now)
    out = self.features(items, times, now,
                        user_query=self._user_query(user_id, user_attributes))
    logits = ranker_lib.boost_new_items(
        self.ranker({"features": out["features"], "valid": out["valid"]}), out["candidates"],
        out["valid"], self.new_items, self.new_item_boost)
    top = tf.math.top_k(logits, k=self.k)
    chosen = tf.gather(out["candidates"], top.indices, batch_dims=1)
    ok = top.values > features_lib.MASKED / 2
    return {"item_ids": tf.where(ok, tf.gather(self.item_ids, chosen), ""),
            "scores": tf.where(ok, top.values, serving_module.UNKNOWN_SCORE)}

  # === Signatures ===
  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name="user_id"),
      tf.TensorSpec([None, None], tf.string, name="history")])
  def recommend(self, user_id, history):
    return self._recommend(user_id, history)

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name="user_id"),
      tf.TensorSpec([None, None], tf.string, name="history"),
      tf.TensorSpec([None, None], tf.int64, name="history_time"),
      tf.TensorSpec([None], tf.int64, name="now"),
      tf.TensorSpec([None, None], tf.string, name="user_attributes")])
  def recommend_at(self, user_id, history, history_time, now, user_attributes):
    return self._recommend(user_id, history, history_time, now, user_attributes)

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name="user_id"),
      tf.TensorSpec([None, None], tf.string, name="history"),
      tf.TensorSpec([None, None], tf.string, name="item_ids")])
  def explain(self, user_id, history, item_ids):
    base = serving_module.ServingModule.explain.python_function(self, user_id, history,
                                                                  item_ids)
    items, times, now = self._request(user_id, history, None, None)
    out = self.features(items, times, now, user_query=self._user_query(user_id))
    target = tf.cast(self.item_table.lookup(item_ids), tf.int32)          # [B, N]
    hit = tf.logical_and(tf.equal(target[:, :, None], out["candidates"][:, None, :]),
                         out["valid"][:, None, :])                       # [B, N, C]
    found = tf.reduce_any(hit, axis=2)
    slot = tf.argmax(tf.cast(hit, tf.int32), axis=2, output_type=tf.int32)
    best = tf.gather(out["best_source"], slot, batch_dims=1)
    source = tf.where(found, tf.gather(self.source_names, best), "")
    prefix = tf.where(found, tf.gather(self.reason_prefixes, best), _DEFAULT_PREFIX)
    names_item = tf.where(found, tf.gather(self.reason_names_item, best), True)
    reason = tf.where(names_item, tf.strings.join([prefix, base["because"]]), prefix)
    # No history item behind it: say nothing rather than half a sentence.
    reason = tf.where(tf.logical_and(names_item, tf.equal(base["because"], "")), "", reason)
    return {**base, "source": source, "reason": reason}


def warmup_inputs(module: TwoStageModule) -> Dict[str, Dict[str, np.ndarray]]:
  """Warmup inputs of the signatures this module adds."""
  item = module.item_ids.numpy()[0].decode()
  user = module.user_table.export()[0].numpy()[0].decode()
  return {"recommend_at": {"user_id": np.array([user, ""], object),
                           "history": np.array([["", ""], [item, ""]], object),
                           "history_time": np.full([2, 2], -1, np.int64),
                           "now": np.full([2], -1, np.int64),
                           "user_attributes": np.array([[""], [""]], object)}}

