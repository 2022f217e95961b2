"""The interface of a stage-1 candidate source, and the history helpers every source shares.

A candidate source proposes items for a user from the user's history up to a reference time. It
is fit once on training events, then queried:

  source = GraphFilter(half_life=5.0).fit(user, item, timestamp, num_items=num_items)
  out = source.scores(history, history_time, now)           # {"scores": [B, num_items]}
  out = source.top_n(history, history_time, now, n=100)     # {"item_ids": [B, N], "scores": ...}
  tf.saved_model.save(source, path, signatures={             # TF Serving signatures
      "scores": source.scores.get_concrete_function(),
      "top_n": source.top_n.get_concrete_function()})

Inputs of a query (index space: item i = line i of the item vocabulary):

  history       [B, H] int32   the user's items, most recent first, -1 padding
  history_time  [B, H] int64   epoch seconds of each history event (NO_TIME = -1 without time)
  now           [B]    int64   the reference time: only events at or before it are used

History entries later than ``now`` are ignored, so a request may send everything it has. A
repeated item counts once, at its most recent event. Logs without time (every timestamp -1, or
every timestamp equal) make every event equally recent.

A source that reads a request's own query part (``reads_user_query``: the graph tower's, see
``tfgrec.sources.embedding``) takes it through ``score``, the public method beside the traced
signatures:

  source.score(history, history_time, now, user_query=q)   # [B, num_items] tensor, q [B, D]

A fit source is saved and restored without refitting (``save_source`` / ``load_source``: the
class, its ``get_config()``, and the fitted arrays; see there):

  save_source(source, "gs://bucket/run/sources/ease")
  source = load_source("gs://bucket/run/sources/ease")   # an Ease again, never refit

``scores`` and ``top_n`` use stock TensorFlow ops only (no ``numpy_function``, no
tensorflow-text), so a saved source runs in TF Serving as it runs here. ``score_numpy`` computes
the same scores with NumPy (a reference the tests compare with, and the fast path of offline
evaluation). Seen items are *not* excluded: the caller removes the user's known items (the
evaluation harness excludes them; a serving graph masks the request's history).
"""
import dataclasses
import importlib
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

import tensorflow as tf

from tfgrec import storage
from tfgrec.data import contract
from tfgrec.data import histories as histories_lib
from tfgrec.graph import recency

NO_TIME = contract.NO_TIME
# Time of a padding entry: older than every event, NO_TIME included (and safe to negate).
_PAD_TIME = -(2 ** 62)

HISTORY_SPECS = (tf.TensorSpec([None, None], tf.int32, name="history"),
                 tf.TensorSpec([None, None], tf.int64, name="history_time"),
                 tf.TensorSpec([None], tf.int64, name="now"))


@dataclasses.dataclass(frozen=True)
class Events:
  """Interaction events in index space, the input of `CandidateSource.fit`.

  Attributes:
    user: [E] int64 user indices.
    item: [E] int64 item indices in [0, num_items).
    timestamp: [E] int64 epoch seconds (NO_TIME = -1, or all equal, for logs without time).
    num_items: catalog size.
  """
  user: np.ndarray
  item: np.ndarray
  timestamp: np.ndarray
  num_items: int


class CandidateSource(tf.Module):
  """Base class of the stage-1 candidate sources (see the module docstring).

  Subclasses implement `get_config` (every constructor argument), `_fit` (NumPy: computes the
  fitted state and hands it to `_set_state`), `_get_state` / `_set_state` (the fitted state as
  arrays and plain values, and the tf.Variables and NumPy references built from them: the one
  path of both `fit` and `load_source`), `_scores` (TF, stock ops) and `_score_numpy` (NumPy
  reference). The public methods validate and dispatch.

  User query: a source with `reads_user_query` True (the graph tower's) adds a request's
  user_query [B, D] to its query, and its `_scores` takes it as a keyword. `score` is the public
  way to pass one: None means none (every source); a query given to a source that reads none
  raises a ValueError rather than being silently dropped, so callers pass
  `q if source.reads_user_query else None`.

  Init args:
    name: the module name.

  Call args (`scores`, `top_n`, `score`, `score_numpy`):
    history: [B, H] int32 item indices, most recent first, -1 padding.
    history_time: [B, H] int64 epoch seconds of the history events.
    now: [B] int64 reference times.
    n (`top_n` only): scalar int32, how many items (at most num_items).
    user_query (`score` only): optional [B, D] float32, the users' own query part.
  """

  # Whether `_scores` reads a request's user_query (the class docstring).
  reads_user_query = False

  def __init__(self, *, name: str):
    super().__init__(name=name)
    self._num_items = None

  @property
  def num_items(self) -> int:
    """The catalog size the source was fit for."""
    self._check_fitted()
    return self._num_items

  def get_config(self) -> Dict[str, Any]:
    """The constructor arguments (JSON values): `type(self)(**get_config())` is this source,
    unfit."""
    raise NotImplementedError(f"{type(self).__name__} does not implement get_config")

  def fit(self, user, item, timestamp, *, num_items: int,
          item_data: Optional[Mapping[str, np.ndarray]] = None) -> "CandidateSource":
    """Fits the source on training events; returns self.

    Args:
      user: [E] user indices.
      item: [E] item indices in [0, num_items).
      timestamp: [E] int64 epoch seconds (NO_TIME = -1 without time).
      num_items: catalog size (items without events included: cold items).
      item_data: optional per-item side data, each value [num_items, ...]; a source documents
        the keys it reads and ignores the others.

    Raises:
      ValueError: arrays of different lengths, items out of range, a wrong item_data shape.
    """
    if self._num_items is not None:
      raise ValueError(f"{self.name} is already fit; build a new source to refit")
    num_items = _check_num_items(num_items)
    user = np.asarray(user, np.int64).reshape(-1)
    item = np.asarray(item, np.int64).reshape(-1)
    timestamp = np.asarray(timestamp, np.int64).reshape(-1)
    if not len(user) == len(item) == len(timestamp):
      raise ValueError(f"user, item and timestamp must have one length, got {len(user)}, "
                       f"{len(item)}, {len(timestamp)}")
    if len(item) and (item.min() < 0 or item.max() >= num_items):
      raise ValueError(f"item indices must be in [0, {num_items}), got [{item.min()}, "
                       f"{item.max()}]")
    if len(user) and user.min() < 0:
      raise ValueError(f"user indices must be >= 0, got {user.min()}")
    item_data = dict(item_data or {})
    for key, value in item_data.items():
      if len(value) != num_items:
        raise ValueError(f"item_data[{key!r}] must have num_items={num_items} rows, got "
                         f"{len(value)}")
    self._num_items = num_items
    self._fit(Events(user, item, timestamp, num_items), item_data)
    return self

  @tf.function(input_signature=HISTORY_SPECS)
  def scores(self, history, history_time, now) -> Dict[str, tf.Tensor]:
    """{"scores": [B, num_items] float32}; higher is better (seen items not excluded)."""
    return {"scores": self.score(history, history_time, now)}

  @tf.function(input_signature=HISTORY_SPECS + (tf.TensorSpec([], tf.int32, name="n"),))
  def top_n(self, history, history_time, now, n) -> Dict[str, tf.Tensor]:
    """{"item_ids": [B, N] int32, "scores": [B, N] float32}, N = min(n, num_items)."""
    top = tf.math.top_k(self.score(history, history_time, now),
                        k=tf.minimum(n, self._num_items))
    return {"item_ids": top.indices, "scores": top.values}

  def score(self, history, history_time, now, *, user_query=None) -> tf.Tensor:
    """[B, num_items] float32 scores of `scores`, with an optional user_query (class docstring).

    Runs eagerly or inside a tf.function (the serving graph's features call it).

    Args:
      history: [B, H] int32 items, most recent first, -1 padding.
      history_time: [B, H] int64 their times.
      now: [B] int64 reference times.
      user_query: None, or [B, D] float32 the users' own query part (only for a source with
        `reads_user_query`).

    Raises:
      ValueError: not fit yet, or a user_query for a source that reads none.
    """
    self._check_fitted()
    history = tf.convert_to_tensor(history, tf.int32)
    history_time = tf.convert_to_tensor(history_time, tf.int64)
    now = tf.convert_to_tensor(now, tf.int64)
    if user_query is None:
      return self._scores(history, history_time, now)
    if not self.reads_user_query:
      raise ValueError(f"{self.name} ({type(self).__name__}) reads no user_query "
                       f"(reads_user_query is False); pass None, got a query of shape "
                       f"{tf.convert_to_tensor(user_query).shape}")
    return self._scores(history, history_time, now,
                        user_query=tf.cast(user_query, tf.float32))

  def score_numpy(self, history, history_time, now) -> np.ndarray:
    """[B, num_items] float32: the scores of `scores`, computed with NumPy."""
    self._check_fitted()
    history = np.asarray(history, np.int64)
    history_time = np.asarray(history_time, np.int64)
    now = np.asarray(now, np.int64).reshape(-1)
    if history.ndim != 2 or history.shape != history_time.shape or len(now) != len(history):
      raise ValueError(f"history [B, H], history_time [B, H] and now [B] must agree, got "
                       f"{history.shape}, {history_time.shape}, {now.shape}")
    return self._score_numpy(history, history_time, now).astype(np.float32)

  def _check_fitted(self):
    if self._num_items is None:
      raise ValueError(f"{self.name} is not fit yet: call fit(user, item, timestamp, "
                       "num_items=...) first")

  # === Hooks ===
  def _fit(self, events: Events, item_data: Dict[str, np.ndarray]) -> None:
    """Computes the fitted state and builds it with `_set_state`."""
    raise NotImplementedError

  def _get_state(self) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """The fitted state: ({name: array}, {name: JSON value}), what `_set_state` rebuilds from."""
    raise NotImplementedError(f"{type(self).__name__} does not implement _get_state")

  def _set_state(self, arrays: Dict[str, np.ndarray], state: Dict[str, Any]) -> None:
    """Builds the fitted state (tf.Variables for the TF path, anything for the NumPy path)
    from `_get_state`'s arrays and values; `_num_items` is already set."""
    raise NotImplementedError(f"{type(self).__name__} does not implement _set_state")

  def _scores(self, history: tf.Tensor, history_time: tf.Tensor, now: tf.Tensor) -> tf.Tensor:
    """[B, H] int32, [B, H] int64, [B] int64 -> [B, num_items] float32, stock TF ops (a source
    with `reads_user_query` also takes user_query=[B, D] float32)."""
    raise NotImplementedError

  def _score_numpy(self, history: np.ndarray, history_time: np.ndarray,
                   now: np.ndarray) -> np.ndarray:
    """The NumPy twin of `_scores`."""
    raise NotImplementedError


def _check_num_items(num_items) -> int:
  if int(num_items) != num_items or int(num_items) <= 0:
    raise ValueError(f"num_items must be an integer > 0, got {num_items}")
  return int(num_items)


# === History helpers ===
def history_ranks(history: tf.Tensor, history_time: tf.Tensor, now: tf.Tensor):
  """The usable history entries and their recency ranks, in the TF graph.

  An entry is usable when its item is >= 0, its time is at or before `now`, and it is the most
  recent usable event of its item in the row. Its rank counts the usable entries that are
  strictly more recent (ties share a rank, as in `tfgrec.graph.recency.recency_ranks`; NO_TIME
  events tie and are older than timed ones). Costs O(B H log H), no [B, H, H] or [B, I] tensor.

  Args:
    history: [B, H] int32 item indices, -1 padding (any order).
    history_time: [B, H] int64 event times.
    now: [B] int64 reference times.

  Returns:
    (item [B, H] int32, rank [B, H] int64, keep [B, H] bool), rows sorted newest first; item
    is 0 and rank 0 where keep is False.
  """
  history = tf.convert_to_tensor(history, tf.int32)
  history_time = tf.convert_to_tensor(history_time, tf.int64)
  now = tf.convert_to_tensor(now, tf.int64)
  valid = tf.logical_and(history >= 0, history_time <= now[:, None])
  time = tf.where(valid, history_time, _PAD_TIME)
  order = tf.argsort(time, axis=1, direction="DESCENDING", stable=True)
  item = tf.gather(tf.where(valid, history, -1), order, batch_dims=1)
  time = tf.gather(time, order, batch_dims=1)
  width = tf.shape(item)[1]
  position = tf.broadcast_to(tf.range(width, dtype=tf.int64)[None, :], tf.shape(item))
  # First occurrence of each item in newest-first order: sort by (item, position), padding last.
  key = (tf.cast(tf.where(item >= 0, item, tf.int32.max), tf.int64) * tf.cast(width, tf.int64)
         + position)
  by_item = tf.argsort(key, axis=1, stable=True)
  item_by_item = tf.gather(item, by_item, batch_dims=1)
  first = tf.concat([tf.ones_like(item_by_item[:, :1], tf.bool),
                     item_by_item[:, 1:] != item_by_item[:, :-1]], axis=1)
  first = tf.logical_and(first, item_by_item >= 0)
  keep = tf.gather(first, tf.argsort(by_item, axis=1), batch_dims=1)
  # Rank: kept entries before the first entry with the same time (rows are newest first).
  kept_before = tf.cumsum(tf.cast(keep, tf.int64), axis=1, exclusive=True)
  tie_start = tf.searchsorted(-time, -time, side="left")
  rank = tf.where(keep, tf.gather(kept_before, tie_start, batch_dims=1), 0)
  return tf.where(keep, item, 0), rank, keep


def history_ranks_numpy(history: np.ndarray, history_time: np.ndarray, now: np.ndarray):
  """NumPy twin of `history_ranks` on flat entries.

  Returns:
    (row [n], item [n], rank [n]) int64 of the usable entries (see `history_ranks`).
  """
  rows, cols = np.nonzero((history >= 0) & (history_time <= now[:, None]))
  item, time = history[rows, cols], history_time[rows, cols]
  order = np.lexsort((-time, item, rows))  # Per (row, item): newest first.
  rows, item, time = rows[order], item[order], time[order]
  first = np.ones(len(rows), bool)  # (No usable entry: no rows.)
  first[1:] = (rows[1:] != rows[:-1]) | (item[1:] != item[:-1])
  rows, item, time = rows[first], item[first], time[first]
  return rows, item, recency.recency_ranks(rows, time)


# History entries whose recency weight is below this share of the newest entry's are left out by
# the item-item sources (their scores change by less than it): with half-life h, events older than
# about 13.3 h ranks. A request then reads O(13 h) rows of the item-item weights, not one per
# stored event (heavy users have thousands).
MIN_RECENCY_WEIGHT = 1e-4


def weighted_history(history: tf.Tensor, history_time: tf.Tensor, now: tf.Tensor,
                     half_life: Optional[float]):
  """The usable history entries with a recency weight >= MIN_RECENCY_WEIGHT, flat.

  Returns:
    (row [n] int64, item [n] int32, weight [n] float32), in row order (`history_ranks`).
  """
  item, rank, keep = history_ranks(history, history_time, now)
  weight = recency_weight(rank, half_life)
  where = tf.where(tf.logical_and(keep, weight >= MIN_RECENCY_WEIGHT))   # [n, 2]
  return where[:, 0], tf.gather_nd(item, where), tf.gather_nd(weight, where)


def history_matrix(row: tf.Tensor, item: tf.Tensor, weight: tf.Tensor, batch: tf.Tensor,
                   num_items: int) -> tf.Tensor:
  """The weighted history (`weighted_history`) as a [max(B, 1), num_items] CSR sparse matrix (a
  variant tensor for `csr_matmul`, whose product keeps the first B rows); an item appears at
  most once a row. (At least one row: the CSR kernels divide by the row count.)"""
  x = tf.sparse.reorder(tf.SparseTensor(
      tf.stack([row, tf.cast(item, tf.int64)], axis=1), weight,
      tf.stack([tf.maximum(tf.cast(batch, tf.int64), 1), tf.constant(num_items, tf.int64)])))
  return tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=x.indices, values=x.values,
                                                  dense_shape=x.dense_shape)


def csr_matmul(csr: tf.Tensor, dense: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
  """[B, I] CSR (`history_matrix`) x [I, D] -> [B, D] float32.

  TensorFlow's CSR kernels (core TensorFlow ops, not an add-on library such as tensorflow-text)
  read each history row of `dense` once per user, as `tf.sparse.sparse_dense_matmul` does, but
  measured 3 to 4 times faster at 32 users a batch on this machine's 2 cores (BENCHMARKS.md);
  the sums are the same.
  """
  return tf.raw_ops.SparseMatrixMatMul(a=csr, b=dense)[:batch]


def read_table(variable: tf.Variable) -> tf.Tensor:
  """A variable read as one tensor, to gather from and to multiply with.

  Gathering straight from a resource variable (`tf.gather(variable, ...)`, a ResourceGather)
  marks it for copy-on-read: from then on every other read of it (a matmul, even `tf.shape`)
  copies the whole table. Reading it once and gathering from the tensor keeps reads free.
  """
  return variable.value()


def weighted_history_numpy(history: np.ndarray, history_time: np.ndarray, now: np.ndarray,
                           half_life: Optional[float]):
  """NumPy twin of `weighted_history`: (row [n], item [n], weight [n] float32)."""
  rows, item, rank = history_ranks_numpy(history, history_time, now)
  weight = recency_weight_numpy(rank, half_life)
  keep = weight >= MIN_RECENCY_WEIGHT
  return rows[keep], item[keep], weight[keep]


def recency_weight(rank, half_life: Optional[float]) -> tf.Tensor:
  """[...] float32 0.5 ** (rank / half_life) in the TF graph (`tfgrec.graph.recency.encode`), the
  shape of `rank`; 1 everywhere when half_life is None."""
  rank = tf.convert_to_tensor(rank)
  if not half_life:
    return tf.ones(tf.shape(rank), tf.float32)
  return tf.reshape(recency.encode(rank, [float(half_life)]), tf.shape(rank))


def recency_weight_numpy(rank: np.ndarray, half_life: Optional[float]) -> np.ndarray:
  """NumPy twin of `recency_weight` (`tfgrec.graph.recency.weights_from_ranks`)."""
  if not half_life:
    return np.ones(np.shape(rank), np.float32)
  return recency.weights_from_ranks(rank, half_life)


def validate_half_life(name: str, value: Optional[float]) -> Optional[float]:
  if value is None:
    return None
  value = float(value)
  if not value > 0:
    raise ValueError(f"{name} must be > 0 (or None for no recency weighting), got {value}")
  return value


def popularity_prior(items: np.ndarray, num_items: int, weight: float, temperature: float = 1.0
                     ) -> np.ndarray:
  """[num_items] float32 bias_i = weight * temperature * (log p_i - max log p), p_i = (n_i + 1)
  / (N + num_items), n_i the occurrences of item i in `items` (the known events, N in all).

  The items' popularity prior added to a cosine score (the graph tower's query,
  tfgrec.train.query; the graph-tower source, tfgrec.sources.embedding): 0 for the most popular
  item, lower for the others; temperature converts it to the cosine's scale.

  >>> [round(float(b), 3) for b in popularity_prior([0, 0, 0, 1], 3, 1.0)]
  [0.0, -0.693, -1.386]
  """
  counts = np.bincount(np.asarray(items, np.int64), minlength=num_items).astype(np.float64)
  log_p = np.log((counts + 1.0) / (counts.sum() + num_items))
  return (weight * temperature * (log_p - log_p.max())).astype(np.float32)


# === Evaluation helpers ===
class UserHistories:
  """Each user's known events, most recent first, to build query batches for evaluation.

  Args:
    user, item, timestamp: [E] the known events (e.g. `EvalData.known_events(split)`,
      tfgrec.data.splits).
    num_users: how many users.
    max_len: keep each user's `max_len` most recent events (None: all).
  """

  def __init__(self, user, item, timestamp, *, num_users: int, max_len: Optional[int] = None):
    if max_len is not None and max_len <= 0:
      raise ValueError(f"max_len must be > 0 or None, got {max_len}")
    user = np.asarray(user, np.int64)
    item = np.asarray(item, np.int64)
    timestamp = np.asarray(timestamp, np.int64)
    self.indptr, order = histories_lib.user_csr(user, num_users=num_users, by=(-timestamp,))
    self.item, self.timestamp = item[order], timestamp[order]
    self.max_len = max_len
    # Latest known time per user (NO_TIME without events).
    self.latest = np.full(num_users, NO_TIME, np.int64)
    has = np.diff(self.indptr) > 0
    self.latest[has] = self.timestamp[self.indptr[:-1][has]]

  def batch(self, users: np.ndarray):
    """([B, H] int32 history, [B, H] int64 history_time) of `users`, -1 padding."""
    users = np.asarray(users, np.int64)
    lengths = self.indptr[users + 1] - self.indptr[users]
    if self.max_len is not None:
      lengths = np.minimum(lengths, self.max_len)
    width = max(int(lengths.max()) if len(users) else 0, 1)
    history = np.full([len(users), width], -1, np.int32)
    history_time = np.full([len(users), width], NO_TIME, np.int64)
    for row, (u, n) in enumerate(zip(users, lengths)):
      span = slice(self.indptr[u], self.indptr[u] + n)
      history[row, :n] = self.item[span]
      history_time[row, :n] = self.timestamp[span]
    return history, history_time


def user_scorer(source: CandidateSource, histories: UserHistories,
                now: Optional[np.ndarray] = None, *, use_tf: bool = False,
                user_query: Optional[np.ndarray] = None
                ) -> Callable[[np.ndarray], np.ndarray]:
  """The evaluation harness's score function (`metrics.ScoreFn` in the `eval` package: user
  indices [B] -> scores [B, num_items]) of a source.

  Args:
    source: a fit source.
    histories: the users' known events.
    now: [num_users] int64 reference time per user (default: each user's latest known time).
    use_tf: score with the TF path (`scores`) instead of `score_numpy`.
    user_query: [num_users, D] the users' own query part, for a source that reads one
      (`reads_user_query`, the graph tower's; TF path).
  """
  now = histories.latest if now is None else np.asarray(now, np.int64)

  def score(users):
    history, history_time = histories.batch(users)
    batch_now = now[np.asarray(users)]
    if user_query is not None:
      return source.score(history, history_time, batch_now,
                          user_query=user_query[np.asarray(users)]).numpy()
    if use_tf:
      return source.scores(tf.constant(history), tf.constant(history_time),
                           tf.constant(batch_now))["scores"].numpy()
    return source.score_numpy(history, history_time, batch_now)

  return score


# === Saving a fit source ===
# A saved source is a folder: SOURCE_SPEC (JSON, written last, so a folder with it is complete)
# and SOURCE_ARRAYS (an .npz of the fitted arrays, one entry per array).
SOURCE_SPEC = "source.json"
SOURCE_ARRAYS = "arrays.npz"
_FORMAT = "tfgrec.sources/1"


def save_source(source: CandidateSource, path: str) -> None:
  """Saves a fit source in folder `path` (any filesystem `tfgrec.storage` knows).

  The folder holds SOURCE_SPEC, JSON:

    {"format": "tfgrec.sources/1", "class": "tfgrec.sources.graph_filter:Ease",
     "config": {...get_config()...}, "num_items": I, "state": {...plain values of the fit...},
     "arrays": ["filter", ...]}

  and SOURCE_ARRAYS, an .npz with one entry per fitted array (item-item weights, embeddings,
  event keys, the encoder's weights...): no table passes through a protobuf. `load_source`
  rebuilds the source from them without fitting.

  Raises:
    ValueError: the source is not fit yet.
  """
  source._check_fitted()  # pylint: disable=protected-access
  arrays, state = source._get_state()  # pylint: disable=protected-access
  cls = type(source)
  spec = {"format": _FORMAT, "class": f"{cls.__module__}:{cls.__qualname__}",
          "config": source.get_config(), "num_items": int(source.num_items), "state": state,
          "arrays": sorted(arrays)}
  storage.save_npz(storage.join(path, SOURCE_ARRAYS),
                   **{k: np.asarray(v) for k, v in arrays.items()})
  storage.write_json(storage.join(path, SOURCE_SPEC), spec)


def load_source(path: str) -> CandidateSource:
  """The fit source `save_source` wrote in folder `path`, of the same class, never refit.

  The source is built from its config (`type(**config)`) and its fitted state restored with
  `_set_state`; its `scores`, `top_n`, `score` and `score_numpy` equal the saved source's, and
  it saves again (alone or inside another tf.Module) like a fitted one.

  Raises:
    FileNotFoundError: no SOURCE_SPEC in `path`.
    ValueError: a spec of another format (an older tfgrec's SavedModel of `scores`: train
      again), or a class that is not a CandidateSource.
  """
  spec_path = storage.join(path, SOURCE_SPEC)
  spec = storage.read_json(spec_path)
  if spec is None:
    raise FileNotFoundError(f"no saved source in {path}: {SOURCE_SPEC} is missing")
  if spec.get("format") != _FORMAT:
    raise ValueError(f"{spec_path}: format {spec.get('format')!r}, expected {_FORMAT!r} (a "
                     "source saved by an older tfgrec: fit and save it again)")
  module_name, _, class_name = spec["class"].partition(":")
  cls = importlib.import_module(module_name)
  for part in class_name.split("."):
    cls = getattr(cls, part)
  if not (isinstance(cls, type) and issubclass(cls, CandidateSource)):
    raise ValueError(f"{spec_path}: class {spec['class']!r} is not a CandidateSource")
  source = cls(**spec["config"])
  arrays = storage.load_npz(storage.join(path, SOURCE_ARRAYS))
  missing = sorted(set(spec["arrays"]) - set(arrays))
  if missing:
    raise ValueError(f"{path}: {SOURCE_ARRAYS} lacks the arrays {missing}")
  source._num_items = _check_num_items(spec["num_items"])  # pylint: disable=protected-access
  source._set_state(arrays, spec["state"])  # pylint: disable=protected-access
  return source
