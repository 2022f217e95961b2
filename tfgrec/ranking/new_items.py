"""New items in the ranker's lists: the items the sources were fit without, and the boost of
their logits priced on the ranker's held-out lists (tfgrec/ranking/README.md, "New items").

  boost, curve = fit_new_item_boost(ranker, lists, holdout_rows, new, k=20, budget=0.005)
  logits = boosted(rank_lists(ranker, lists), lists, new, boost)
"""
import dataclasses
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tfgrec.ranking import features as features_lib
from tfgrec.ranking import ranker as ranker_lib
from tfgrec.ranking.lists import Lists
from tfgrec.ranking.lists import list_ndcg
from tfgrec.ranking.lists import rank_lists


def new_items(items: np.ndarray, num_items: int) -> np.ndarray:
  """[num_items] bool: the items without an event among `items` (the item column of the events
  the sources were fit on): the new items of `fit_new_item_boost`."""
  items = np.asarray(items, np.int64)
  if len(items) and (items.min() < 0 or items.max() >= num_items):
    raise ValueError(f"event items must be in [0, {num_items}), got "
                     f"[{items.min()}, {items.max()}]")
  return np.bincount(items, minlength=num_items) == 0



def boosted(logits: np.ndarray, lists: Lists, new: np.ndarray, boost: float) -> np.ndarray:
  """[N, C] `logits` of `lists` with `boost` added at their new items (`new`: [num_items])."""
  if not boost:
    return logits
  return ranker_lib.boost_new_items(logits, lists.candidates, lists.valid, new, boost).numpy()



# The held-out lists cannot price new items much rarer than theirs: a new candidate is kept with
# at least this probability when they are thinned (new_item_keep_share).
MIN_NEW_ITEM_KEEP = 0.1
NEW_ITEM_DRAWS = 8  # Thinned copies of the held-out lists the boost's curve is averaged over.



def new_candidate_share(lists: Lists, new: np.ndarray) -> float:
  """Share of the valid candidates of `lists` that are new items (`new`: [num_items] bool)."""
  if not lists.valid.any():
    return 0.0
  return float(np.asarray(new, bool)[np.maximum(lists.candidates, 0)][lists.valid].mean())



def new_item_keep_share(lists: Lists, holdout_rows: Sequence[np.ndarray], new: np.ndarray,
                        target_share: Optional[float]) -> float:
  """The probability with which `fit_new_item_boost` keeps each new candidate of the held-out
  lists so that their share of new candidates matches `target_share` (the share in the lists
  the boost will be applied to: `new_candidate_share`): 1 when that is None, or at least the
  held-out share; at least MIN_NEW_ITEM_KEEP.

  A boost's cost grows with how many new candidates it lifts over the known ones: lists with
  fewer new items (the test lists, whose new items are those without a training or validation
  event, or the served lists, without any event) pay less for the same boost than the held-out
  lists (without a training event), so the boost is priced on held-out lists thinned to them.
  """
  rows = np.concatenate([np.asarray(r, np.int64) for r in holdout_rows] + [np.zeros([0], int)])
  if target_share is None or not len(rows):
    return 1.0
  held = new_candidate_share(lists.take(np.unique(rows)), new)
  if held <= target_share:
    return 1.0
  return float(max(MIN_NEW_ITEM_KEEP, target_share / held))



def fit_new_item_boost(ranker: ranker_lib.RankerEnsemble, lists: Lists,
                       holdout_rows: Sequence[np.ndarray], new: np.ndarray, *, k: int,
                       budget: float, step: float = 0.25, max_boost: float = 8.0,
                       keep_share: float = 1.0, seed: int = 0
                       ) -> Tuple[float, List[Tuple[float, float]]]:
  """The logit boost of new items: the largest multiple of `step` up to `max_boost` such that
  it and every smaller one keep the held-out NDCG@k within `budget` (a share) of no boost.

  Each member is scored on its own held-out lists (`holdout_rows[m]`, lists it never trained
  on) and the NDCG@k of every boost is averaged over the members; the ensemble's logit is the
  members' mean, so their common boost adds to it unchanged. With `keep_share` < 1
  (new_item_keep_share) each new candidate of those lists is kept with that probability (a
  dropped one leaves its list, as an item no source proposed), and the curve is the mean over
  NEW_ITEM_DRAWS such draws (seeds seed, seed + 1, ...).

  Returns:
    (boost, [(boost, mean held-out NDCG@k)] over the grid); 0.0 when `budget` is 0 or no member
    has held-out lists (then the curve is []). Without a held-out hit in the top k at no boost,
    the boost of the best NDCG@k (0.0 when none has a hit).
  """
  rows = [np.asarray(r, np.int64) for r in holdout_rows]
  if budget <= 0 or not any(len(r) for r in rows):
    return 0.0, []
  if not 0.0 < keep_share <= 1.0:
    raise ValueError(f"keep_share must be in (0, 1], got {keep_share}")
  grid = np.arange(0.0, max_boost + step / 2, step)
  draws = 1 if keep_share >= 1.0 else NEW_ITEM_DRAWS
  new = np.asarray(new, bool)
  curves = []
  for member, held_rows in zip(ranker.members, rows):
    if not len(held_rows):
      continue
    held = lists.take(held_rows)
    logits = rank_lists(member, held)
    is_new = new[np.maximum(held.candidates, 0)] & held.valid
    for draw in range(draws):
      thinned, thinned_logits = held, logits
      if draws > 1:
        dropped = is_new & (np.random.default_rng(seed + draw).random(is_new.shape) >= keep_share)
        thinned = dataclasses.replace(held, valid=held.valid & ~dropped)
        thinned_logits = np.where(dropped, features_lib.MASKED, logits)
      curves.append([list_ndcg(boosted(thinned_logits, thinned, new, b), thinned, k)
                     for b in grid])
  mean = np.mean(curves, axis=0)
  curve = [(float(b), float(v)) for b, v in zip(grid, mean)]
  if not mean[0] > 0:  # No hit in the held-out top k to lose: the best boost, if any helps.
    return (float(grid[int(np.argmax(mean))]) if mean.max() > 0 else 0.0), curve
  within = mean >= (1.0 - budget) * mean[0]
  last = int(np.argmin(within)) - 1 if not within.all() else len(grid) - 1
  return float(grid[last]), curve

