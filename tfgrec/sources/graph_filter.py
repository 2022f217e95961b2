"""A closed-form linear filter on the item-item graph (GF-CF), applied to a recency-weighted history.

Shen et al., CIKM 2021, "How Powerful is Graph Convolution for Recommendation?" show that a
training-free low-pass filter on the normalized item-item graph matches trained graph CF models;
EASE (Steck, WWW 2019) is its regularized least-squares cousin (``Ease`` and ``ease_weights``
below; the evaluation baseline ``ease_scorer`` of the ``eval`` package wraps the same maths).

With R [U, I] the 0/1 training matrix (a (user, item) pair counts once), D_u = diag(R 1) and
D_i = diag(Rᵀ 1) the degrees (d^-1/2 := 0 for a zero degree):

  R̃ = D_u^-1/2 R D_i^-1/2                                 normalized interactions [U, I]
  P̃ = R̃ᵀ R̃      P̃[i, j] = sum_u R[u,i] R[u,j] / (deg(u) sqrt(deg(i) deg(j)))      [I, I]
  L = D_i^-1/2 V̄ V̄ᵀ D_i^1/2    V̄ [I, k]: the top-k right singular vectors of R̃ (ideal low-pass)
  scores(x) = x P̃ + alpha x L                                                         [I]

x [I] is the user's history: x[i] = 0.5 ** (rank_i / half_life) for the items in it (rank 0 for
the most recent, see ``tfgrec.graph.recency``; 1 for every item when half_life is None, GF-CF's
original binary row), 0 elsewhere; weights below ``base.MIN_RECENCY_WEIGHT`` are dropped (a request
reads only its history's rows of the filter). alpha = 0 drops the low-pass term (no SVD is
computed).

Storage: up to ``dense_max_items`` items P̃ is one dense [I, I] matrix; above, each item keeps
only its ``neighbours`` strongest entries of P̃ (memory O(I × M), built in blocks of items). L
always stays in low-rank form (two [I, k] factors, a query costs O(B (H + I) k) for it). With M >= I both give the
same scores. The diagonal of P̃ only scores a user's own history items, which the caller
excludes.

Saved state (`base.save_source`): the filter (dense, or the neighbours' ids and weights), the
low-pass factors, and R̃ in CSR form for the NumPy path of the dense filter.
"""
from typing import Any, Dict, Optional

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from tfgrec.sources import base

tf = base.tf


class GraphFilter(base.CandidateSource):
  """GF-CF on the item-item graph with a recency-weighted history (see the module docstring).

  >>> gf = GraphFilter(half_life=None, alpha=0.0).fit([0, 0, 1], [0, 1, 1], [0, 0, 0],
  ...                                                 num_items=2)
  >>> [round(float(s), 3) for s in gf.score_numpy([[0]], [[0]], [0])[0]]
  [0.5, 0.354]

  Defaults (half_life 5, alpha 0.1, k 256) are the best of benchmarks/bench_sources.py's grid by
  validation NDCG@20 on the embedded MovieLens (the low-pass term adds +0.0014 there).

  Init args:
    half_life: recency half-life in history events (None: every history item weighs 1).
    alpha: weight of the ideal low-pass term (0: none).
    num_singular: k, the singular vectors of the low-pass term (at most the rank of R̃).
    dense_max_items: largest catalog stored as a dense [I, I] filter.
    neighbours: M, the entries kept per item above dense_max_items.
    block_items: items per block when building the sparse filter.
    name: the module name.
  """

  def __init__(self, *, half_life: Optional[float] = 5.0, alpha: float = 0.1,
               num_singular: int = 256, dense_max_items: int = 20_000, neighbours: int = 200,
               block_items: int = 2048, name: str = "graph_filter"):
    super().__init__(name=name)
    self.half_life = base.validate_half_life("half_life", half_life)
    if not alpha >= 0:
      raise ValueError(f"alpha must be >= 0, got {alpha}")
    for key, value in (("num_singular", num_singular), ("neighbours", neighbours),
                       ("block_items", block_items)):
      if int(value) <= 0:
        raise ValueError(f"{key} must be > 0, got {value}")
    if int(dense_max_items) < 0:
      raise ValueError(f"dense_max_items must be >= 0, got {dense_max_items}")
    self.alpha = float(alpha)
    self.num_singular = int(num_singular)
    self.dense_max_items = int(dense_max_items)
    self.neighbours = int(neighbours)
    self.block_items = int(block_items)

  # === Config ===
  def get_config(self) -> Dict[str, Any]:
    return {"half_life": self.half_life, "alpha": self.alpha, "num_singular": self.num_singular,
            "dense_max_items": self.dense_max_items, "neighbours": self.neighbours,
            "block_items": self.block_items, "name": self.name}

  # === Fit ===
  def _fit(self, events: base.Events, item_data: Dict[str, np.ndarray]) -> None:
    del item_data  # Unused.
    num_items = events.num_items
    _, user = np.unique(events.user, return_inverse=True)
    num_users = int(user.max()) + 1 if len(user) else 0
    r = _binary_matrix(user, events.item, num_users, num_items)
    du = np.asarray(r.sum(axis=1)).ravel()
    di = np.asarray(r.sum(axis=0)).ravel()
    du_inv = np.where(du > 0, 1.0 / np.sqrt(np.maximum(du, 1.0)), 0.0)
    di_inv = np.where(di > 0, 1.0 / np.sqrt(np.maximum(di, 1.0)), 0.0)
    r_norm = (scipy.sparse.diags(du_inv) @ r @ scipy.sparse.diags(di_inv)).tocsr()
    arrays = {}
    if self.alpha > 0 and num_users:
      v = _top_right_singular_vectors(r_norm, self.num_singular)           # [I, k]
      arrays["low_pass_left"] = (di_inv[:, None] * v).astype(np.float32)   # D_i^-1/2 V̄
      arrays["low_pass_right"] = (v * np.sqrt(di)[:, None]).T.astype(np.float32)  # (D_i^1/2 V̄)ᵀ
    if num_items <= self.dense_max_items:
      arrays["filter"] = (r_norm.T @ r_norm).astype(np.float32).toarray()
      r_norm = r_norm.astype(np.float32)  # The NumPy path multiplies through R̃.
      arrays.update(r_norm_data=r_norm.data, r_norm_indices=r_norm.indices,
                    r_norm_indptr=r_norm.indptr)
    else:
      arrays["neighbour_ids"], arrays["neighbour_weights"] = _top_neighbours(
          r_norm, min(self.neighbours, num_items), self.block_items)
    self._set_state(arrays, {"num_users": num_users})

  # === State ===
  def _get_state(self):
    arrays = {}
    if self.dense:
      arrays["filter"] = self.filter.numpy()
    else:
      arrays["neighbour_ids"] = self.neighbour_ids.numpy()
      arrays["neighbour_weights"] = self.neighbour_weights.numpy()
    if hasattr(self, "low_pass_left"):
      arrays["low_pass_left"] = self.low_pass_left.numpy()
      arrays["low_pass_right"] = self.low_pass_right.numpy()
    state = {}
    r_norm = self._ref.r_norm
    if r_norm is not None:
      arrays.update(r_norm_data=r_norm.data, r_norm_indices=r_norm.indices,
                    r_norm_indptr=r_norm.indptr)
      state["num_users"] = int(r_norm.shape[0])
    return arrays, state

  def _set_state(self, arrays, state):
    """Arrays: "filter" [I, I] (dense) or "neighbour_ids" / "neighbour_weights" [I, M]; with
    the low-pass term "low_pass_left" [I, k] and "low_pass_right" [k, I]; optionally R̃ as
    "r_norm_data" / "r_norm_indices" / "r_norm_indptr" (state["num_users"] rows)."""
    num_items = self._num_items
    self.dense = "filter" in arrays
    r_norm = None
    if "r_norm_indptr" in arrays:
      r_norm = scipy.sparse.csr_matrix(
          (arrays["r_norm_data"], arrays["r_norm_indices"], arrays["r_norm_indptr"]),
          shape=(int(state["num_users"]), num_items))
    low_left, low_right = arrays.get("low_pass_left"), arrays.get("low_pass_right")
    self._ref = _Reference(r_norm, low_left, low_right)
    if low_left is not None:
      self.low_pass_left = tf.Variable(low_left, trainable=False, name="low_pass_left")
      self.low_pass_right = tf.Variable(low_right, trainable=False, name="low_pass_right")
    if self.dense:
      self.filter = tf.Variable(arrays["filter"], trainable=False, name="filter")
      return
    ids = np.asarray(arrays["neighbour_ids"], np.int32)
    values = np.asarray(arrays["neighbour_weights"], np.float32)
    self._ref.neighbours = scipy.sparse.csr_matrix(
        (values.ravel(), ids.ravel(), np.arange(0, ids.size + 1, ids.shape[1])),
        shape=(num_items, num_items))
    self.neighbour_ids = tf.Variable(ids, trainable=False, name="neighbour_ids")
    self.neighbour_weights = tf.Variable(values, trainable=False, name="neighbour_weights")

  # === TF path ===
  def _scores(self, history, history_time, now):
    # Only the history's rows of the filter are read: x is sparse (at most H entries a user).
    row, item, weight = base.weighted_history(history, history_time, now, self.half_life)
    batch = tf.shape(history, out_type=tf.int64)[0]
    x = None
    if self.dense:
      x = base.history_matrix(row, item, weight, batch, self._num_items)
      scores = base.csr_matmul(x, self.filter, batch)
    else:
      ids = tf.gather(self.neighbour_ids, item)                          # [n, M]
      values = tf.gather(self.neighbour_weights, item) * weight[:, None]
      rows = tf.broadcast_to(row[:, None], tf.shape(ids, out_type=tf.int64))
      scores = tf.scatter_nd(tf.stack([rows, tf.cast(ids, tf.int64)], axis=-1), values,
                             tf.stack([batch, tf.constant(self._num_items, tf.int64)]))
    if hasattr(self, "low_pass_left"):  # alpha (x D_i^-1/2 V̄) (D_i^1/2 V̄)ᵀ, O(B (H + I) k).
      if x is None:
        x = base.history_matrix(row, item, weight, batch, self._num_items)
      scores += self.alpha * tf.matmul(base.csr_matmul(x, self.low_pass_left, batch),
                                       self.low_pass_right)
    return scores

  # === NumPy path ===
  def _history_matrix(self, history, history_time, now) -> np.ndarray:
    """[B, I] x: the weighted history (`base.weighted_history_numpy`)."""
    rows, item, weight = base.weighted_history_numpy(history, history_time, now, self.half_life)
    x = np.zeros([len(history), self._num_items], np.float32)
    x[rows, item] = weight
    return x

  def _score_numpy(self, history, history_time, now):
    x = self._history_matrix(history, history_time, now)
    ref = self._ref
    if self.dense:  # x R̃ᵀ R̃, through the sparse R̃ (never the dense filter).
      scores = np.asarray((ref.r_norm.T @ (ref.r_norm @ x.T)).T)
    else:
      scores = np.asarray((ref.neighbours.T @ x.T).T)
    if ref.low_left is not None:
      scores = scores + self.alpha * ((x @ ref.low_left) @ ref.low_right)
    return scores


class _Reference:
  """Fitted NumPy state of the NumPy path (a plain object: not saved with the module)."""

  def __init__(self, r_norm, low_left, low_right):
    self.r_norm = r_norm
    self.low_left = low_left
    self.low_right = low_right
    self.neighbours = None


def _top_right_singular_vectors(matrix: scipy.sparse.csr_matrix, k: int) -> np.ndarray:
  """[I, min(k, rank)] float64 right singular vectors of the k largest singular values.

  With few users (the smaller side <= 5,000) they come from the eigenvectors of the small Gram
  matrix R̃ R̃ᵀ [U, U] (V̄ = R̃ᵀ Ū / s); otherwise from a truncated sparse SVD.
  """
  num_users, num_items = matrix.shape
  if min(num_users, num_items) <= 5000:
    small_is_users = num_users <= num_items
    gram = (matrix @ matrix.T if small_is_users else matrix.T @ matrix).toarray()
    eigenvalues, vectors = np.linalg.eigh(gram)
    order = np.argsort(-eigenvalues)[:k]
    eigenvalues, vectors = eigenvalues[order], vectors[:, order]
    keep = eigenvalues > 1e-10 * max(float(eigenvalues.max(initial=0.0)), 1e-30)
    eigenvalues, vectors = eigenvalues[keep], vectors[:, keep]
    if not small_is_users:
      return vectors
    return np.asarray(matrix.T @ vectors) / np.sqrt(eigenvalues)[None, :]
  k = min(k, min(num_users, num_items) - 1)
  v0 = np.full(min(num_users, num_items), 1.0 / np.sqrt(min(num_users, num_items)))
  _, s, vt = scipy.sparse.linalg.svds(matrix, k=k, v0=v0)
  return vt[np.argsort(-s)].T


def _top_neighbours(r_norm: scipy.sparse.csr_matrix, m: int, block: int):
  """Each item's m largest entries of R̃ᵀR̃, strongest first: ids [I, m] int32, values float32."""
  num_items = r_norm.shape[1]
  r_csc = r_norm.tocsc()
  ids = np.zeros([num_items, m], np.int32)
  values = np.zeros([num_items, m], np.float32)
  for start in range(0, num_items, block):
    stop = min(start + block, num_items)
    rows = (r_csc[:, start:stop].T @ r_norm).toarray()  # [b, I]
    top = np.argpartition(-rows, m - 1, axis=1)[:, :m] if m < num_items else np.tile(
        np.arange(num_items), (stop - start, 1))
    top_values = np.take_along_axis(rows, top, axis=1)
    order = np.argsort(-top_values, axis=1, kind="stable")
    ids[start:stop] = np.take_along_axis(top, order, axis=1)
    values[start:stop] = np.take_along_axis(top_values, order, axis=1)
  return ids, values


class Ease(GraphFilter):
  """EASE (Steck, WWW 2019) on a recency-weighted history: scores(x) = x B.

  B is the closed-form item-item ridge regression of `ease_weights` (B = I − P / diag(P),
  P = (XᵀX + l2 I)^-1, zero diagonal), fit on the 0/1 training matrix; x is the history
  weighted as in GraphFilter. The inverse is cubic in the items with an event, so the catalog
  is limited to ``dense_max_items`` of them.

  Served, B is either the dense [I, I] matrix (330 MB for 9,000 items; a request reads the rows
  of its history items, I weights each) or, with ``neighbours`` = M, each history item's M
  largest weights (a request reads H × M of them; exact while M >= the catalog).

  Init args:
    half_life: recency half-life in history events (None: every history item weighs 1).
    l2: the ridge penalty (> 0).
    dense_max_items: the largest number of items with an event.
    neighbours: M, the weights kept per item (None: the dense B).
    name: the module name.
  """

  def __init__(self, *, half_life: Optional[float] = 20.0, l2: float = 200.0,
               dense_max_items: int = 20_000, neighbours: Optional[int] = None,
               name: str = "ease"):
    super().__init__(half_life=half_life, alpha=0.0, dense_max_items=dense_max_items,
                     neighbours=neighbours or 1, name=name)
    if not l2 > 0:
      raise ValueError(f"l2 must be > 0, got {l2}")
    if neighbours is not None and int(neighbours) <= 0:
      raise ValueError(f"neighbours must be > 0 or None, got {neighbours}")
    self.l2 = float(l2)
    self.sparse_neighbours = None if neighbours is None else int(neighbours)

  def get_config(self) -> Dict[str, Any]:
    return {"half_life": self.half_life, "l2": self.l2, "dense_max_items": self.dense_max_items,
            "neighbours": self.sparse_neighbours, "name": self.name}

  def _fit(self, events: base.Events, item_data: Dict[str, np.ndarray]) -> None:
    del item_data  # Unused.
    active = len(np.unique(events.item))
    if active > self.dense_max_items:
      raise ValueError(f"{self.name}: {active} items have events, more than dense_max_items="
                       f"{self.dense_max_items}; use GraphFilter (sparse) for this catalog")
    b = ease_weights(events.user, events.item, num_items=events.num_items, l2=self.l2)
    m = self.sparse_neighbours
    if m is None:
      self._set_state({"filter": b}, {})
      return
    m = min(m, events.num_items)
    top = (np.argpartition(-b, m - 1, axis=1)[:, :m] if m < events.num_items
           else np.tile(np.arange(events.num_items), (events.num_items, 1)))
    values = np.take_along_axis(b, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")                  # Strongest first.
    self._set_state({"neighbour_ids": np.take_along_axis(top, order, axis=1).astype(np.int32),
                     "neighbour_weights": np.take_along_axis(values, order, axis=1)}, {})

  def _set_state(self, arrays, state):
    super()._set_state(arrays, state)
    # The NumPy path of the dense B multiplies by it (there is no R̃ to go through).
    self._b = np.asarray(arrays["filter"], np.float32) if self.dense else None

  def _score_numpy(self, history, history_time, now):
    x = self._history_matrix(history, history_time, now)
    if self.dense:
      return x @ self._b
    return np.asarray((self._ref.neighbours.T @ x.T).T)


def ease_weights(user, item, *, num_items: int, l2: float = 200.0) -> np.ndarray:
  """[num_items, num_items] float32 EASE item-item weights B with a zero diagonal.

  X [U, A] is the 0/1 matrix of the (user, item) pairs (a pair counts once) over the A items
  with an event; P = (XᵀX + l2 I)^-1 and B = I − P / diag(P) (Steck, WWW 2019). The items
  without an event keep zero rows and columns, so the cubic cost is in A, not the catalog.

  >>> b = ease_weights([0, 0, 1, 1], [0, 1, 1, 2], num_items=4, l2=1.0)
  >>> b.shape, float(b[0, 0]), bool(b[0, 1] > 0), bool(b[3].any())
  ((4, 4), 0.0, True, False)

  Args:
    user: [E] user indices (any ids: only equality matters).
    item: [E] item indices in [0, num_items).
    num_items: catalog size.
    l2: the ridge penalty (> 0).

  Raises:
    ValueError: l2 <= 0, user and item of different lengths.
  """
  if not l2 > 0:
    raise ValueError(f"l2 must be > 0, got {l2}")
  user = np.asarray(user, np.int64).reshape(-1)
  item = np.asarray(item, np.int64).reshape(-1)
  if len(user) != len(item):
    raise ValueError(f"user and item must have one length, got {len(user)} and {len(item)}")
  active, column = np.unique(item, return_inverse=True)
  users, row = np.unique(user, return_inverse=True)
  x = _binary_matrix(row, column, len(users), len(active), np.float32)
  gram = (x.T @ x).toarray()  # Co-occurrence counts: exact in float32.
  gram[np.diag_indices(len(active))] += l2
  p = np.linalg.inv(gram)
  b_active = -p / np.diag(p)[None, :]
  b_active[np.diag_indices(len(active))] = 0.0
  b = np.zeros([num_items, num_items], np.float32)
  b[np.ix_(active, active)] = b_active
  return b


def _binary_matrix(row: np.ndarray, column: np.ndarray, num_rows: int, num_columns: int,
                   dtype=np.float64) -> scipy.sparse.csr_matrix:
  """[num_rows, num_columns] CSR with 1 at each (row, column) pair (a repeated pair once)."""
  pairs = np.unique(np.stack([np.asarray(row, np.int64), np.asarray(column, np.int64)]), axis=1)
  return scipy.sparse.csr_matrix((np.ones(pairs.shape[1], dtype), (pairs[0], pairs[1])),
                                 shape=(num_rows, num_columns))
