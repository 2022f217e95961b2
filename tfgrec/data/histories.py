"""Per-user histories: each user's events (or items) as CSR, in one place.

User u's entries are positions indptr[u]:indptr[u + 1] of an array grouped by user. Evaluation's
item sets (`Interactions`), the sources' query batches (tfgrec.sources.base.UserHistories), the
baselines' weighted histories and the served model's seen items (tfgrec.train.final_fit) are all
built by `user_csr`; they differ only in how a user's events are ordered and whether an item is
kept once.

  indptr, order = user_csr(user, num_users=3, by=(-timestamp,))   # Most recent first.
  items_of_u = item[order][indptr[u]:indptr[u + 1]]

No TensorFlow here (NumPy only).
"""
import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np


def user_indptr(user: np.ndarray, *, num_users: int) -> np.ndarray:
  """[num_users + 1] int64 row offsets of entries already grouped by user (ascending).

  Args:
    user: [E] int user index of each entry, sorted (0 <= user < num_users).
    num_users: rows of the CSR.

  >>> user_indptr(np.array([0, 0, 2]), num_users=4).tolist()
  [0, 2, 2, 3, 3]
  """
  user = np.asarray(user, np.int64)
  if user.size and (user.min() < 0 or user.max() >= num_users):
    bad = user.min() if user.min() < 0 else user.max()
    raise ValueError(f"user indices must be in [0, num_users={num_users}), got {int(bad)}")
  counts = np.bincount(user, minlength=num_users)
  return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def user_csr(user: np.ndarray, *, num_users: int, by: Sequence[np.ndarray] = (),
             item: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
  """Events grouped by user as CSR: the row offsets and the permutation that groups them.

  Args:
    user: [E] int user index of each event (0 <= user < num_users).
    num_users: rows of the CSR.
    by: [E] arrays that order each user's events: the first decides, the next breaks its ties,
      and so on; events equal on all of them keep their input order (a stable sort). E.g.
      `(-timestamp,)`: most recent first; `(item,)`: by item index.
    item: [E] int item index of each event; when given, an item is kept once per user, at its
      first event in that order (with `by=(-timestamp, item)`: at its latest event).

  Returns:
    (indptr [num_users + 1] int64, order [N] int64): user u's events are the inputs at
    order[indptr[u]:indptr[u + 1]]; N = E, or the distinct (user, item) pairs with `item`.

  >>> indptr, order = user_csr(np.array([1, 0, 1, 1]), num_users=2, by=(-np.array([5, 7, 9, 5]),))
  >>> indptr.tolist(), order.tolist()
  ([0, 1, 4], [1, 2, 0, 3])
  >>> indptr, order = user_csr(np.array([0, 0, 0]), num_users=1, by=(np.array([2, 1, 2]),),
  ...                          item=np.array([2, 1, 2]))
  >>> indptr.tolist(), order.tolist()
  ([0, 2], [1, 0])
  """
  user = np.asarray(user, np.int64)
  keys = [np.asarray(k) for k in by]
  for k in keys:
    if k.shape != user.shape:
      raise ValueError(f"every key of `by` must be [E={len(user)}], got shape {k.shape}")
  order = np.lexsort(tuple(reversed(keys)) + (user,))
  if item is not None:
    item = np.asarray(item, np.int64)
    if item.shape != user.shape:
      raise ValueError(f"item must be [E={len(user)}], got shape {item.shape}")
    num_items = int(item.max(initial=-1)) + 1
    _, first = np.unique(user[order] * max(num_items, 1) + item[order], return_index=True)
    keep = np.zeros(len(order), bool)
    keep[first] = True
    order = order[keep]
  return user_indptr(user[order], num_users=num_users), order


@dataclasses.dataclass
class Interactions:
  """Per-user item sets in CSR form: items of user u are indices[indptr[u]:indptr[u + 1]].

  The held-out and excluded items of the full-ranking harness (tfgrec.eval.metrics) and the
  splits of a graph directory (tfgrec.data.splits.EvalData).

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
    """Unique (user, item) pairs -> CSR, each user's items in increasing order."""
    items = np.asarray(items, np.int64)
    indptr, order = user_csr(users, num_users=num_users, by=(items,), item=items)
    return cls(indptr, items[order])

  @property
  def num_users(self) -> int:
    return len(self.indptr) - 1

  def sizes(self) -> np.ndarray:
    return np.diff(self.indptr)

  def restrict_items(self, keep: np.ndarray) -> "Interactions":
    """Keeps only items with keep[item] True."""
    mask = keep[self.indices]
    user_of = np.repeat(np.arange(self.num_users), self.sizes())
    return Interactions(user_indptr(user_of[mask], num_users=self.num_users),
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
