"""Candidate lists: each user's candidates, features and labels at a reference time, and what
is scored over them (the ranker's logits, NDCG over a list, a full-catalog score function).

  lists = build_lists(features, histories, users, now, relevant)
  logits = rank_lists(ranker, lists)
  list_ndcg(logits, lists, k=20)
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from tfgrec.eval import metrics
from tfgrec.ranking import features as features_lib
from tfgrec.ranking import ranker as ranker_lib
from tfgrec.sources import base

tf = features_lib.tf


@dataclasses.dataclass
class Lists:
  """Candidate lists of a set of users (numpy, [N, C] unless noted)."""
  users: np.ndarray          # [N]
  candidates: np.ndarray     # int32
  valid: np.ndarray          # bool
  features: np.ndarray       # [N, C, F] float32
  best_source: np.ndarray    # int32
  labels: Optional[np.ndarray] = None        # float32
  num_relevant: Optional[np.ndarray] = None  # [N] all label items, proposed or not

  def take(self, rows) -> "Lists":
    return Lists(**{f.name: (None if getattr(self, f.name) is None
                             else getattr(self, f.name)[rows])
                    for f in dataclasses.fields(self)})

  @staticmethod
  def concat(parts: Sequence["Lists"]) -> "Lists":
    """The lists of `parts`, one after the other (a field None in any part is None)."""
    def joined(name):
      values = [getattr(p, name) for p in parts]
      return None if any(v is None for v in values) else np.concatenate(values)
    return Lists(**{f.name: joined(f.name) for f in dataclasses.fields(Lists)})



def build_lists(feats: features_lib.CandidateFeatures, histories: base.UserHistories,
                users: np.ndarray, now: np.ndarray,
                relevant: Optional[metrics.Interactions] = None, *, batch: int = 64,
                progress: bool = False, user_query: Optional[np.ndarray] = None) -> Lists:
  """Candidates and features of `users` ([N]) at reference times `now` ([num_users]).

  user_query: [num_users, D] the new-user queries the graph tower source reads
  (features.CandidateFeatures), e.g. states from attributes; None: none.
  """
  call = tf.function(feats.__call__, reduce_retracing=True)
  parts: Dict[str, List[np.ndarray]] = {}
  users = np.asarray(users, np.int64)
  iterator = range(0, len(users), batch)
  if progress:
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    iterator = tqdm(iterator, desc="candidate lists", unit="batch")
  for start in iterator:
    chunk = users[start:start + batch]
    history, history_time = histories.batch(chunk)
    extra = {} if user_query is None else {"user_query": tf.constant(user_query[chunk])}
    out = call(tf.constant(history), tf.constant(history_time), tf.constant(now[chunk]),
               **extra)
    for key, value in out.items():
      parts.setdefault(key, []).append(value.numpy())
  lists = Lists(users=users, **{k: np.concatenate(v) for k, v in parts.items()})
  if relevant is not None:
    lists.labels = np.zeros(lists.candidates.shape, np.float32)
    lists.num_relevant = np.zeros(len(users), np.int64)
    for row, u in enumerate(users):
      items = relevant.indices[relevant.indptr[u]:relevant.indptr[u + 1]]
      lists.num_relevant[row] = len(items)
      lists.labels[row] = np.isin(lists.candidates[row], items) & lists.valid[row]
  return lists



def list_ndcg(logits: np.ndarray, lists: Lists, k: int) -> float:
  """Mean NDCG@k (metrics.ndcg) of ranking each list by `logits`, relevant items outside the
  list missed, over the lists with a relevant item (0.0 when none has one)."""
  order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
  gains = np.take_along_axis(lists.labels * lists.valid, order, axis=1)
  has = lists.num_relevant > 0
  return float(metrics.ndcg(gains, lists.num_relevant, k)[has].mean()) if has.any() else 0.0



def rank_lists(ranker: ranker_lib.Ranker, lists: Lists, batch: int = 256) -> np.ndarray:
  """[N, C] ranker logits of lists (MASKED at invalid candidates)."""
  out = [ranker({"features": lists.features[s:s + batch], "valid": lists.valid[s:s + batch]}
                ).numpy() for s in range(0, len(lists.users), batch)]
  return np.concatenate(out) if out else np.zeros(lists.valid.shape, np.float32)



def list_scorer(lists: Lists, logits: np.ndarray, num_items: int
                ) -> Callable[[np.ndarray], np.ndarray]:
  """A `metrics.ScoreFn` over the full catalog from ranked lists: the candidates by their
  logits (scaled into (0, 1]), every other item below them."""
  row_of = {int(u): r for r, u in enumerate(lists.users)}
  order = np.argsort(-np.where(lists.valid, logits, -np.inf), axis=1, kind="stable")

  def score(users):
    out = np.full([len(users), num_items], -1.0, np.float32)
    for row, u in enumerate(users):
      r = row_of.get(int(u))
      if r is None:
        continue
      ranked = order[r][lists.valid[r][order[r]]]
      out[row, lists.candidates[r][ranked]] = 1.0 / (1.0 + np.arange(len(ranked)))
    return out

  return score

