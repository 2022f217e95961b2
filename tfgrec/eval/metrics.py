"""Full-ranking evaluation over the whole catalog, vectorized on the GPU/CPU in batches of users.

For each evaluated user, every item of the catalog is scored, the user's already-seen items
(``exclude``: the training items, and for a test evaluation also the validation items) are removed,
and the top K is compared with the user's held-out items (``relevant``):

  Recall@K  = |top-K ∩ relevant| / |relevant|
  NDCG@K    = DCG / ideal DCG, DCG = sum over hits at rank r (0-based) of 1 / log2(r + 2)
  HR@K      = 1 if top-K ∩ relevant is not empty
  MRR@K     = 1 / (rank of the first hit + 1), 0 without a hit
  coverage@K = distinct items recommended to the evaluated users / catalog size
  novelty@K  = mean over recommended items of -log2(p(item)), p = share of users with the item
               in training (add-one smoothed)

Metrics are averaged over users with at least one relevant item. ``slices`` restrict the
relevant items (cold items, long-tail items) or the users (short history).
"""
import dataclasses
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from tfgrec import _keras_guard

_keras_guard.ensure_legacy_keras()

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position


@dataclasses.dataclass
class Interactions:
  """Per-user item sets in CSR form: items of user u are indices[indptr[u]:indptr[u + 1]].

  Attributes:
    indptr: [num_users + 1] int64.
    indices: [nnz] int64 item indices.
    weights: [nnz] float32 weight of each entry, or None (all 1).
  """
  indptr: np.ndarray
  indices: np.ndarray
  weights: Optional[np.ndarray] = None

  @classmethod
  def from_pairs(cls, users: np.ndarray, items: np.ndarray, num_users: int) -> "Interactions":
    """Unique (user, item) pairs -> CSR."""
    pairs = np.unique(np.stack([np.asarray(users, np.int64), np.asarray(items, np.int64)]),
                      axis=1)
    counts = np.bincount(pairs[0], minlength=num_users)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return cls(indptr, pairs[1].astype(np.int64))

  @property
  def num_users(self) -> int:
    return len(self.indptr) - 1

  def sizes(self) -> np.ndarray:
    return np.diff(self.indptr)

  def restrict_items(self, keep: np.ndarray) -> "Interactions":
    """Keeps only items with keep[item] True."""
    mask = keep[self.indices]
    user_of = np.repeat(np.arange(self.num_users), self.sizes())
    counts = np.bincount(user_of[mask], minlength=self.num_users)
    return Interactions(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                        self.indices[mask],
                        None if self.weights is None else self.weights[mask])

  def dense(self, users: np.ndarray, num_items: int, weighted: bool = False) -> np.ndarray:
    """[len(users), num_items]: bool membership, or float32 weights with `weighted`."""
    out = np.zeros([len(users), num_items], np.float32 if weighted else bool)
    for row, u in enumerate(users):
      span = slice(self.indptr[u], self.indptr[u + 1])
      if weighted and self.weights is not None:
        out[row, self.indices[span]] = self.weights[span]
      else:
        out[row, self.indices[span]] = True
    return out


ScoreFn = Callable[[np.ndarray], np.ndarray]


def _batch_metrics(scores: tf.Tensor, relevant: tf.Tensor, k: int):
  """scores [B, I] (excluded items at -inf), relevant [B, I] bool -> per-user metric tensors."""
  top = tf.math.top_k(scores, k=k)
  hits = tf.cast(tf.gather(relevant, top.indices, batch_dims=1), tf.float32)  # [B, K]
  n_rel = tf.reduce_sum(tf.cast(relevant, tf.float32), axis=1)
  discounts = 1.0 / (tf.math.log(tf.range(k, dtype=tf.float32) + 2.0) / tf.math.log(2.0))
  dcg = tf.reduce_sum(hits * discounts, axis=1)
  ideal_len = tf.minimum(n_rel, float(k))
  ideal = tf.reduce_sum(
      discounts[None, :] * tf.cast(tf.range(k, dtype=tf.float32)[None, :] < ideal_len[:, None],
                                   tf.float32), axis=1)
  first = tf.argmax(hits, axis=1, output_type=tf.int32)
  any_hit = tf.reduce_max(hits, axis=1)
  return {
      "recall": tf.reduce_sum(hits, axis=1) / tf.maximum(n_rel, 1.0),
      "ndcg": dcg / tf.maximum(ideal, 1e-9),
      "hr": any_hit,
      "mrr": any_hit / (tf.cast(first, tf.float32) + 1.0),
  }, top.indices


def evaluate(score_fn: ScoreFn, relevant: Interactions, exclude: Sequence[Interactions], *,
             num_items: int, ks: Sequence[int] = (20,), train_popularity: Optional[np.ndarray] = None,
             num_train_users: Optional[int] = None, user_batch: int = 256,
             users: Optional[np.ndarray] = None) -> Dict[str, float]:
  """Full-ranking metrics (see the module docstring).

  Args:
    score_fn: user indices [B] -> scores [B, num_items] (numpy or tensor).
    relevant: held-out items per user.
    exclude: item sets removed from each user's ranking (e.g. train, validation).
    num_items: catalog size.
    ks: cut-offs.
    train_popularity: [num_items] number of training users per item (for novelty).
    num_train_users: users in training (for novelty's probabilities).
    user_batch: users scored at once.
    users: which users to evaluate (default: every user with a relevant item).

  Returns:
    {'recall@20': ..., 'ndcg@20': ..., 'hr@20': ..., 'mrr@20': ..., 'coverage@20': ...,
     'novelty@20': ..., 'users': n}.
  """
  sizes = relevant.sizes()
  if users is None:
    users = np.flatnonzero(sizes > 0)
  else:
    users = np.asarray(users)[sizes[np.asarray(users)] > 0]
  sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg", "hr", "mrr")}
  recommended = {k: np.zeros(num_items, bool) for k in ks}
  novelty = {k: 0.0 for k in ks}
  info = None
  if train_popularity is not None:
    n = float(num_train_users or 1)
    info = -np.log2((np.asarray(train_popularity, np.float64) + 1.0) / (n + 1.0))
  for start in range(0, len(users), user_batch):
    batch = users[start:start + user_batch]
    scores = tf.convert_to_tensor(score_fn(batch), tf.float32)
    mask = np.zeros([len(batch), num_items], bool)
    for ex in exclude:
      mask |= ex.dense(batch, num_items)
    scores = tf.where(tf.constant(mask), tf.constant(-np.inf, tf.float32), scores)
    rel = tf.constant(relevant.dense(batch, num_items))
    for k in ks:
      per_user, top = _batch_metrics(scores, rel, k)
      for m, v in per_user.items():
        sums[f"{m}@{k}"] += float(tf.reduce_sum(v))
      top = top.numpy()
      recommended[k][top.ravel()] = True
      if info is not None:
        novelty[k] += float(info[top].mean(axis=1).sum())
  n_users = max(len(users), 1)
  out = {key: value / n_users for key, value in sums.items()}
  for k in ks:
    out[f"coverage@{k}"] = float(recommended[k].sum()) / num_items
    if info is not None:
      out[f"novelty@{k}"] = novelty[k] / n_users
  out["users"] = int(len(users))
  return out
