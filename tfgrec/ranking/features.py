"""Stage 1 → stage 2: the union of the sources' candidates, and each (user, candidate)'s features.

One TensorFlow function computes both, for training lists, offline evaluation and the served
SavedModel alike, so the ranker never sees a feature computed differently from how the server
computes it (no training/serving skew).

Inputs of a request (index space, as `tfgrec.sources.base`): ``history`` [B, H] int32 (−1
padding), ``history_time`` [B, H] int64, ``now`` [B] int64. Every feature reads only history
entries at or before ``now`` and events of the popularity index at or before ``now``: a feature
computed for a past reference time does not change when later events are added (the ranker's
time discipline, tested in tests/test_ranking.py).

Candidates: each source s proposes its top N_s items, the user's history items (at or before
``now``) excluded; the
union of the lists is the candidate list, [B, C] with C = sum_s N_s and a ``valid`` mask
(duplicates and empty slots invalid).

Features of (user, candidate i), by group (a group is dropped whole by the ablations):

  source:<s>   score_i (the source's raw score), z_i = (score_i − mean) / std over the source's
               top N_s in the row, 1 / (1 + rank_i) in the source's list (0 when not proposed),
               proposed_i (0/1). Every candidate gets every source's score, proposed or not.
  text         cosine of the candidate's text embedding with the most recent history item, the
               mean over the 5 most recent, the recency-weighted mean over all, the max.
  category     cosine of the candidate's categories with the user's recency-weighted and plain
               category profiles.
  popularity   log(1 + events) in windows of 1/7/30/365 days ending at now and ever, the trend
               log((n_7d + 1) / 7) − log((n_30d + 1) / 30), log(1 + age in days), available.
  user         log(1 + usable history length), log(1 + hours since the latest usable event).
"""
import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import tensorflow as tf

from tfgrec.sources import base
from tfgrec.sources import time_context

GROUPS = ("sources", "text", "category", "popularity", "user")
# Scores below this are masked entries (history items), never candidates.
MASKED = -1e9
_RECENT = 5          # History items in the "recent" text mean.
_HALF_LIFE = 5.0     # Recency half-life (history events) of the weighted text and category means.
_MAX_HISTORY = 200   # History items read by the text and category features.


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
  """Which features the ranker reads.

  Attributes:
    groups: feature groups on (a subset of GROUPS); "sources" adds one group per source.
    drop: groups to leave out, e.g. ("text", "source:trending") (ablations).
    windows_days: the popularity windows.
  """
  groups: Tuple[str, ...] = GROUPS
  drop: Tuple[str, ...] = ()
  windows_days: Tuple[float, ...] = (1.0, 7.0, 30.0, 365.0)

  def __post_init__(self):
    unknown = sorted(set(self.groups) - set(GROUPS))
    if unknown:
      raise ValueError(f"unknown feature groups {unknown}; known: {list(GROUPS)}")
    if any(not w > 0 for w in self.windows_days) or 7.0 not in self.windows_days or (
        30.0 not in self.windows_days):
      raise ValueError(f"windows_days must be > 0 and include 7 and 30 (the trend), got "
                       f"{self.windows_days}")


class CandidateFeatures(tf.Module):
  """Candidates from the sources and their features (see the module docstring).

  Init args:
    sources: {name: (fit CandidateSource, N)}, in a fixed order.
    events: a `tfgrec.sources.time_context.EventIndex` of the events known at serving time
      (popularity and item age read it, only up to `now`).
    text_embedding: [num_items, T] item text embeddings (zeros: no text), or None.
    item_categories: [num_items, G] 0/1 category matrix, or None.
    config: a FeatureConfig.

  Call args:
    history [B, H] int32, history_time [B, H] int64, now [B] int64.

  Returns:
    {"candidates": [B, C] int32 (0 where invalid), "valid": [B, C] bool,
     "features": [B, C, F] float32 (columns: `feature_names`),
     "best_source": [B, C] int32 (index of the source that ranks the candidate highest)}
  """

  def __init__(self, *, sources: Mapping[str, Tuple[base.CandidateSource, int]],
               events: time_context.EventIndex, text_embedding: Optional[np.ndarray] = None,
               item_categories: Optional[np.ndarray] = None,
               config: FeatureConfig = FeatureConfig(), name: str = "candidate_features"):
    super().__init__(name=name)
    if not sources:
      raise ValueError("sources must name at least one candidate source")
    self.source_names = list(sources)
    self.sources = [sources[k][0] for k in self.source_names]
    self.sizes = [int(sources[k][1]) for k in self.source_names]
    num_items = {s.num_items for s in self.sources} | {events.num_items}
    if len(num_items) != 1:
      raise ValueError(f"sources and events must share one catalog, got sizes {num_items}")
    self.num_items = num_items.pop()
    for k, n in zip(self.source_names, self.sizes):
      if not 0 < n <= self.num_items:
        raise ValueError(f"N of source {k!r} must be in [1, {self.num_items}], got {n}")
    self.events = events
    self.config = config
    on = lambda g: g in config.groups and g not in config.drop  # noqa: E731
    self.text = None
    if text_embedding is not None and on("text"):
      t = np.asarray(text_embedding, np.float32)
      norm = np.linalg.norm(t, axis=1, keepdims=True)
      self.text = tf.Variable(np.where(norm > 0, t / np.maximum(norm, 1e-12), 0.0),
                              trainable=False, name="text")
    self.categories = None
    if item_categories is not None and on("category"):
      c = np.asarray(item_categories, np.float32)
      norm = np.linalg.norm(c, axis=1, keepdims=True)
      self.categories = tf.Variable(np.where(norm > 0, c / np.maximum(norm, 1e-12), 0.0),
                                    trainable=False, name="categories")
    self.use_sources = [on("sources") and f"source:{k}" not in config.drop
                        for k in self.source_names]
    self.use_popularity = on("popularity")
    self.use_user = on("user")
    self.feature_names, self.feature_groups = self._names()

  def _names(self) -> Tuple[List[str], List[str]]:
    names, groups = [], []

    def add(group, *keys):
      names.extend(f"{group.replace(':', '/')}/{k}" for k in keys)
      groups.extend([group] * len(keys))

    for k, use in zip(self.source_names, self.use_sources):
      if use:
        add(f"source:{k}", "score", "z", "reciprocal_rank", "proposed")
    if self.text is not None:
      add("text", "last", f"recent_{_RECENT}", "weighted", "max")
    if self.categories is not None:
      add("category", "weighted", "mean")
    if self.use_popularity:
      add("popularity", *[f"log_count_{w:g}d" for w in self.config.windows_days], "log_count",
          "trend", "log_age_days", "available")
    if self.use_user:
      add("user", "log_history", "log_hours_since_last")
    if not names:
      raise ValueError(f"every feature group is off (groups {self.config.groups}, drop "
                       f"{self.config.drop})")
    return names, groups

  @property
  def num_features(self) -> int:
    return len(self.feature_names)

  def __call__(self, history, history_time, now,
               user_query: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
    """See the class docstring; user_query [B, D] (zero rows: none) reaches the sources that
    read one (`reads_user_query`: the graph tower source), for new users' attributes."""
    history = tf.convert_to_tensor(history, tf.int32)
    history_time = tf.convert_to_tensor(history_time, tf.int64)
    now = tf.convert_to_tensor(now, tf.int64)
    batch = tf.shape(history)[0]
    # The user's known items (history at or before now) are never candidates.
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(history))
    known = tf.logical_and(history >= 0, history_time <= now[:, None])
    seen = tf.scatter_nd(
        tf.boolean_mask(tf.stack([rows, history], -1), known),
        tf.ones([tf.reduce_sum(tf.cast(known, tf.int32))], tf.float32),
        [batch, self.num_items]) > 0
    full, tops = [], []
    for source, n in zip(self.sources, self.sizes):
      query = user_query if source.reads_user_query else None
      scores = tf.where(seen, MASKED, source.score(history, history_time, now, user_query=query))
      top = tf.math.top_k(scores, k=n)
      full.append(scores)
      tops.append(top)
    candidates, valid = _union([t.indices for t in tops], [t.values for t in tops])

    columns, ranks = [], []
    for scores, top, use in zip(full, tops, self.use_sources):
      rank = _rank_in(candidates, top.indices)  # [B, C], N where not proposed.
      ranks.append(rank)
      if not use:
        continue
      score = tf.gather(scores, candidates, batch_dims=1)
      score = tf.where(score <= MASKED / 2, 0.0, score)
      proposed = tf.cast(rank < tf.shape(top.indices)[1], tf.float32)
      mean, std = _moments(top.values)
      columns += [score, (score - mean) / (std + 1e-6),
                  proposed / (1.0 + tf.cast(rank, tf.float32)), proposed]
    item, rank, keep = base.history_ranks(history, history_time, now)
    item, rank, keep = (t[:, :_MAX_HISTORY] for t in (item, rank, keep))
    weight = tf.where(keep, base.recency_weight(rank, _HALF_LIFE), 0.0)
    if self.text is not None:
      columns += self._text(candidates, item, keep, weight)
    if self.categories is not None:
      columns += self._category(candidates, item, keep, weight)
    if self.use_popularity:
      columns += self._popularity(candidates, now)
    if self.use_user:
      columns += self._user(candidates, history_time, now, keep)
    features = tf.stack(columns, axis=-1)
    best = tf.argmin(tf.stack(ranks, -1), axis=-1, output_type=tf.int32)
    return {"candidates": tf.where(valid, candidates, 0), "valid": valid,
            "features": tf.where(valid[..., None], features, 0.0), "best_source": best}

  # === Feature groups ===
  def _text(self, candidates, item, keep, weight):
    cand = tf.gather(self.text, candidates)                      # [B, C, T]
    hist = tf.gather(self.text, item)                            # [B, H, T]
    keepf = tf.cast(keep, tf.float32)
    order = tf.cumsum(keepf, axis=1, exclusive=True)             # Newest first.

    def mean(mask):  # The mean similarity to the masked history = cand · (mean of its texts).
      profile = tf.math.divide_no_nan(tf.einsum("bh,bht->bt", mask, hist),
                                      tf.reduce_sum(mask, -1, keepdims=True))
      return tf.einsum("bct,bt->bc", cand, profile)

    sims = tf.einsum("bct,bht->bch", cand, hist)                 # [B, C, H]
    most = tf.reduce_max(tf.where(keepf[:, None, :] > 0, sims, -2.0), axis=-1)
    return [mean(tf.cast(order < 1, tf.float32) * keepf),
            mean(tf.cast(order < _RECENT, tf.float32) * keepf), mean(weight),
            tf.where(most < -1.5, 0.0, most)]

  def _category(self, candidates, item, keep, weight):
    cats = tf.gather(self.categories, item)                      # [B, H, G]
    weighted = tf.math.l2_normalize(tf.einsum("bh,bhg->bg", weight, cats), axis=-1)
    plain = tf.math.l2_normalize(
        tf.einsum("bh,bhg->bg", tf.cast(keep, tf.float32), cats), axis=-1)
    cand = tf.gather(self.categories, candidates)                # [B, C, G]
    return [tf.einsum("bcg,bg->bc", cand, weighted), tf.einsum("bcg,bg->bc", cand, plain)]

  def _popularity(self, candidates, now):
    windows = self.config.windows_days
    total, *counts = self.events.counts_many(
        candidates, [None] + [now - int(round(w * time_context.SECONDS_PER_DAY))
                              for w in windows], now)
    counts = dict(zip(windows, counts))
    trend = tf.math.log((counts[7.0] + 1.0) / 7.0) - tf.math.log((counts[30.0] + 1.0) / 30.0)
    age, available = self.events.age(candidates, now)
    days = tf.cast(tf.cast(tf.maximum(age, 0), tf.float64) / time_context.SECONDS_PER_DAY,
                   tf.float32)
    available = tf.cast(available, tf.float32)
    return ([tf.math.log1p(counts[w]) for w in self.config.windows_days]
            + [tf.math.log1p(total), trend, available * tf.math.log1p(days), available])

  def _user(self, candidates, history_time, now, keep):
    length = tf.reduce_sum(tf.cast(keep, tf.float32), axis=1)
    valid_time = tf.logical_and(history_time >= 0, history_time <= now[:, None])
    latest = tf.reduce_max(tf.where(valid_time, history_time, base.NO_TIME), axis=1)
    hours = tf.where(latest >= 0, tf.cast(now - latest, tf.float32) / 3600.0, 0.0)
    shape = tf.shape(candidates)
    return [tf.broadcast_to(tf.math.log1p(length)[:, None], shape),
            tf.broadcast_to(tf.math.log1p(tf.maximum(hours, 0.0))[:, None], shape)]


def _union(ids: Sequence[tf.Tensor], scores: Sequence[tf.Tensor]):
  """The distinct proposed items per row: ([B, C] int32 ids, [B, C] bool valid)."""
  ids = tf.concat(list(ids), axis=1)
  proposed = tf.concat(list(scores), axis=1) > MASKED / 2
  key = tf.where(proposed, ids, tf.int32.max)
  key = tf.sort(key, axis=1)
  first = tf.concat([tf.ones_like(key[:, :1], tf.bool), key[:, 1:] != key[:, :-1]], axis=1)
  valid = tf.logical_and(first, key != tf.int32.max)
  return tf.where(valid, key, 0), valid


def _moments(values: tf.Tensor):
  """Mean and standard deviation [B, 1] of each row's unmasked values."""
  mask = tf.cast(values > MASKED / 2, tf.float32)
  count = tf.maximum(tf.reduce_sum(mask, 1, keepdims=True), 1.0)
  mean = tf.reduce_sum(values * mask, 1, keepdims=True) / count
  var = tf.reduce_sum(tf.square(values - mean) * mask, 1, keepdims=True) / count
  return mean, tf.sqrt(var)


def _rank_in(candidates: tf.Tensor, top: tf.Tensor) -> tf.Tensor:
  """[B, C] int32 position of each candidate in `top` [B, N] (N where absent)."""
  n = tf.shape(top)[1]
  hit = tf.equal(candidates[:, :, None], top[:, None, :])       # [B, C, N]
  position = tf.range(n)[None, None, :]
  return tf.reduce_min(tf.where(hit, position, n), axis=-1)
