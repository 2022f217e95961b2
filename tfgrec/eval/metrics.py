"""Full-ranking evaluation over the whole catalog, vectorized on the GPU/CPU in batches of users.

For each evaluated user, every item of the catalog is scored, the user's already-seen items
(``exclude``: the training items, and for a test evaluation also the validation items) are removed,
and the top K is compared with the user's held-out items (``relevant``):

  Recall@K  = |top-K ∩ relevant| / |relevant|
  NDCG@K    = DCG / ideal DCG, DCG = sum over hits at rank r (0-based) of 1 / log2(r + 2)
              (`ndcg`: the one home of the formula; tfgrec.ranking scores lists with it)
  HR@K      = 1 if top-K ∩ relevant is not empty
  MRR@K     = 1 / (rank of the first hit + 1), 0 without a hit
  coverage@K = distinct items recommended to the evaluated users / catalog size
  novelty@K  = mean over recommended items of -log2(p(item)), p = share of users with the item
               in training (add-one smoothed)

Metrics are averaged over users with at least one relevant item. ``slices`` restrict the
relevant items (cold items, long-tail items) or the users (short history).
"""
from typing import Callable, Dict, Optional, Sequence

import numpy as np

import tensorflow as tf

from tfgrec.data import histories


# Per-user item sets (CSR): their home is tfgrec.data.histories; the harness's name for them.
Interactions = histories.Interactions


ScoreFn = Callable[[np.ndarray], np.ndarray]


def dcg_discounts(k: int) -> np.ndarray:
  """The DCG discount of each rank below `k`: 1 / log2(r + 2) at 0-based rank r.

  Args:
    k: the cut-off (>= 1).

  Returns:
    [k] float64.
  """
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}")
  return 1.0 / np.log2(np.arange(2, k + 2))


def dcg(gains: np.ndarray, k: int) -> np.ndarray:
  """DCG@k of rankings: the gain at each rank times its discount, summed over the top k.

  Args:
    gains: [N, R] the relevance of the item at each 0-based rank (binary or graded; ranks at or
      after `k` are ignored).
    k: the cut-off.

  Returns:
    [N] float64. With graded relevance, the ideal DCG is `dcg` of each row's grades sorted in
    decreasing order.
  """
  gains = np.asarray(gains)[:, :k]
  return (gains * dcg_discounts(k)[:gains.shape[1]]).sum(1)


def ideal_dcg(num_relevant: np.ndarray, k: int) -> np.ndarray:
  """DCG@k of the ideal ranking under binary relevance: min(n, k) relevant items on top.

  Args:
    num_relevant: [N] int, the relevant items of each ranking (ranked or not).
    k: the cut-off.

  Returns:
    [N] float64 (0 where a ranking has no relevant item).
  """
  num_relevant = np.asarray(num_relevant, np.int64)
  if num_relevant.size and num_relevant.min() < 0:
    raise ValueError(f"num_relevant must be >= 0, got {num_relevant.min()}")
  discounts = dcg_discounts(k)
  by_count = np.array([discounts[:n].sum() for n in range(k + 1)])
  return by_count[np.minimum(num_relevant, k)]


def ndcg(gains: np.ndarray, num_relevant: np.ndarray, k: int) -> np.ndarray:
  """NDCG@k: `dcg` over `ideal_dcg`, the one home of the formula (the full-catalog harness
  and tfgrec.ranking's candidate lists both call it).

  Args:
    gains: [N, R] relevance of the item at each 0-based rank (ranks at or after `k` ignored).
    num_relevant: [N] relevant items of each ranking, ranked or not: a relevant item the ranking
      leaves out counts as a miss.
    k: the cut-off.

  Returns:
    [N] float64 in [0, 1] for binary gains; 0 where a ranking has no relevant item.
  """
  gains = np.asarray(gains)
  if len(gains) != len(num_relevant):
    raise ValueError(f"gains and num_relevant must have one row per ranking, got "
                     f"{len(gains)} and {len(num_relevant)}")
  ideal = ideal_dcg(num_relevant, k)
  out = np.zeros(len(gains), np.float64)
  np.divide(dcg(gains, k), ideal, out=out, where=ideal > 0)
  return out


def _batch_metrics(scores: tf.Tensor, relevant: tf.Tensor, k: int):
  """scores [B, I] (excluded items at -inf), relevant [B, I] bool -> ({metric: [B] per-user
  values (tensors; NDCG a float64 array from `ndcg`)}, top-k indices [B, K])."""
  top = tf.math.top_k(scores, k=k)
  hits = tf.cast(tf.gather(relevant, top.indices, batch_dims=1), tf.float32)  # [B, K]
  n_rel = tf.reduce_sum(tf.cast(relevant, tf.int32), axis=1)
  first = tf.argmax(hits, axis=1, output_type=tf.int32)
  any_hit = tf.reduce_max(hits, axis=1)
  return {
      "recall": tf.reduce_sum(hits, axis=1) / tf.maximum(tf.cast(n_rel, tf.float32), 1.0),
      "ndcg": ndcg(hits.numpy(), n_rel.numpy(), k),
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
