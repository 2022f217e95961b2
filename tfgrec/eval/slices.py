"""Evaluation slices: where a recommender is strong or weak, measured with the same harness.

Every slice is a ``metrics.evaluate`` run on one split (test: relevant = test items, excluded =
train and validation items; validation: relevant = validation items, excluded = train items):

* all: every user with a relevant item.
* cold_items: the relevant items are restricted to cold items, items without any training
  interaction (``popularity == 0``). Only users with a relevant cold item count.
* long_tail: the relevant items are restricted to tail items. The head is the smallest set of the
  most popular items (training users per item; ties broken by the lower item index) that together
  hold ``head_share`` of the training interactions; every other item, cold items included, is in
  the tail. Only users with a relevant tail item count.
* short_history: users with 1 to ``short_history_max`` training items (all relevant items).

A slice without users reports ``users`` 0 and every metric 0.0.
"""
from typing import Dict, Sequence

import numpy as np

from tfgrec.data import splits
from tfgrec.eval import metrics


def cold_items(data: splits.EvalData) -> np.ndarray:
  """[num_items] bool: True for items without a training interaction."""
  return np.asarray(data.popularity) == 0


def long_tail_items(data: splits.EvalData, head_share: float = 0.5) -> np.ndarray:
  """[num_items] bool: True for tail items (see the module docstring).

  Args:
    data: evaluation data; its ``popularity`` ranks the items.
    head_share: share of the training interactions the head holds, in [0, 1].

  Returns:
    [num_items] bool mask of the tail; cold items are always in the tail.
  """
  if not 0.0 <= head_share <= 1.0:
    raise ValueError(f"head_share must be in [0, 1], got {head_share}")
  popularity = np.asarray(data.popularity, np.int64)
  order = np.lexsort((np.arange(len(popularity)), -popularity))  # Most popular, then lower index.
  cumulative = np.cumsum(popularity[order])
  target = head_share * float(cumulative[-1]) if len(cumulative) else 0.0
  num_head = int(np.searchsorted(cumulative, target, side="left")) + 1 if target > 0 else 0
  tail = np.ones(len(popularity), bool)
  tail[order[:num_head]] = False
  return tail


def short_history_users(data: splits.EvalData, max_items: int = 20) -> np.ndarray:
  """[n] int64 indices of the users with 1 to `max_items` training items."""
  sizes = data.train.sizes()
  return np.flatnonzero((sizes >= 1) & (sizes <= max_items)).astype(np.int64)


def evaluate_slices(score_fn: metrics.ScoreFn, data: splits.EvalData, *, split: str = "test",
                    ks: Sequence[int] = (20,), long_tail_head_share: float = 0.5,
                    short_history_max: int = 20,
                    user_batch: int = 256) -> Dict[str, Dict[str, float]]:
  """Full-ranking metrics on every slice of the module docstring.

  Args:
    score_fn: user indices [B] -> scores [B, num_items].
    data: evaluation data.
    split: "test" or "validation".
    ks: cut-offs.
    long_tail_head_share: the head's share of training interactions (long_tail slice).
    short_history_max: most training items of a short-history user.
    user_batch: users scored at once.

  Returns:
    {slice: metrics.evaluate result} for slices 'all', 'cold_items', 'long_tail',
    'short_history'.
  """
  if split == "test":
    relevant, exclude = data.test, [data.train, data.validation]
  elif split == "validation":
    relevant, exclude = data.validation, [data.train]
  else:
    raise ValueError(f"split must be 'test' or 'validation', got {split!r}")

  def run(rel: metrics.Interactions, users=None) -> Dict[str, float]:
    # evaluate() averages over max(users, 1), so an empty slice already gives 0.0 metrics and
    # users 0; user indices must stay integers even when there are none.
    return metrics.evaluate(score_fn, rel, exclude, num_items=data.num_items, ks=ks,
                            train_popularity=data.popularity, num_train_users=data.num_users,
                            user_batch=user_batch,
                            users=None if users is None else np.asarray(users, np.int64))

  return {
      "all": run(relevant),
      "cold_items": run(relevant.restrict_items(cold_items(data))),
      "long_tail": run(relevant.restrict_items(long_tail_items(data, long_tail_head_share))),
      "short_history": run(relevant, short_history_users(data, short_history_max)),
  }
