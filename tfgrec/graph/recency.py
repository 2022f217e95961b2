"""Recency of each interaction edge, relative to its user's latest interaction.

What a user did last predicts what they do next far better than what they did long ago. Each
interaction edge gets its rank r among its user's interactions, counted from the most recent
(r = 0 for the latest; ties by timestamp share the same rank), and the encoding

  recency[e] = [0.5 ** (r / h) for h in half_lives]          [num_edges, len(half_lives)]

(several half-lives, so the model can pick its own time scale), plus one weight
0.5 ** (r / conv_half_life) that the convolution multiplies each message by. Ranks rather than
seconds make the encoding independent of how often a dataset's users come back.

Events without a time (timestamp ``tfgrec.data.contract.NO_TIME`` = -1, see
``schemas/README.md``) tie: a user whose edges all lack a time has rank 0 on every edge, so every
weight is 1 (equally recent). In a user with both kinds, the edges without a time tie among
themselves and rank after (older than) every timed edge.
"""
from typing import Sequence

import numpy as np

from tfgrec.graph import schema as schema_lib

tf = schema_lib.tf
tfgnn = schema_lib.tfgnn

RECENCY = "recency"
RECENCY_WEIGHT = "recency_weight"
# [E] 1.0 on the edges among their user's `window` most recent interactions, else 0.0.
RECENT = "recent"
# Interaction edge set -> the tag of its user endpoint.
USER_ENDPOINT = {schema_lib.INTERACTED: tfgnn.SOURCE, schema_lib.INTERACTED_BY: tfgnn.TARGET}


def recency_ranks(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
  """[E] int64: per edge, how many of its user's edges are strictly more recent.

  >>> recency_ranks(np.array([0, 0, 0, 1]), np.array([5, 9, 7, 1])).tolist()
  [2, 0, 1, 0]

  Edges without a time (-1) tie, and are older than any timed edge of their user:

  >>> recency_ranks(np.array([0, 0, 1, 1, 1]), np.array([-1, -1, -1, 8, -1])).tolist()
  [0, 0, 1, 0, 1]
  """
  users = np.asarray(users, np.int64)
  timestamps = np.asarray(timestamps, np.int64)
  if not len(users):
    return np.zeros([0], np.int64)
  order = np.lexsort((-timestamps, users))  # By user, newest first.
  u, t = users[order], timestamps[order]
  starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))
  position = np.arange(len(u)) - np.repeat(starts, np.diff(np.append(starts, len(u))))
  # Ties share the rank of their first member: rank = position of the first equal timestamp.
  new_value = np.concatenate([[True], (u[1:] != u[:-1]) | (t[1:] != t[:-1])])
  first = np.maximum.accumulate(np.where(new_value, np.arange(len(u)), 0))
  ranks_sorted = position - (np.arange(len(u)) - first)
  ranks = np.empty(len(u), np.int64)
  ranks[order] = ranks_sorted
  return ranks


def weights_from_ranks(ranks: np.ndarray, half_life: float) -> np.ndarray:
  """[E] float32 0.5 ** (rank / half_life): the one recency weight of tfgrec (NumPy side).

  >>> weights_from_ranks(np.array([0, 2]), 2.0).tolist()
  [1.0, 0.5]
  """
  if half_life <= 0:
    raise ValueError(f"half_life must be > 0, got {half_life}")
  return np.power(0.5, np.asarray(ranks, np.float64) / float(half_life)).astype(np.float32)


def recency_weights(users: np.ndarray, timestamps: np.ndarray, half_life: float) -> np.ndarray:
  """[E] float32 per event: 0.5 ** (recency rank among its user's events / half_life), ties
  (and events without a time) sharing a rank (`recency_ranks`)."""
  return weights_from_ranks(recency_ranks(users, timestamps), half_life)


def earlier_events(users: np.ndarray, timestamps: np.ndarray):
  """Where each event's strictly earlier events of its user lie, for readouts as of that event.

  Returns (order, start, end, offset), each [E]:
    order: the event ids sorted by user, oldest first (ties in any fixed order);
    start, end: the user's events strictly before event e are order[start[e]:end[e]] (those at
      e's own time are not before it);
    offset: how many of the user's events are at or after e's time. An earlier event x then
      has recency rank recency_ranks(...)[x] - offset[e] among the events before e: the rank it
      had when e happened, with the same tie rule.

  >>> order, start, end, offset = earlier_events(np.array([0, 0, 0, 1]), np.array([5, 9, 5, 1]))
  >>> order.tolist(), start.tolist(), end.tolist(), offset.tolist()
  ([0, 2, 1, 3], [0, 0, 0, 3], [0, 2, 0, 3], [3, 1, 3, 1])
  """
  users = np.asarray(users, np.int64)
  timestamps = np.asarray(timestamps, np.int64)
  n = len(users)
  order = np.lexsort((timestamps, users))  # By user, oldest first.
  u, t = users[order], timestamps[order]
  first_of_user = np.concatenate([[True], u[1:] != u[:-1]]) if n else np.zeros([0], bool)
  user_start = np.maximum.accumulate(np.where(first_of_user, np.arange(n), 0))
  # The first position of each (user, time) group: the events before it are the earlier ones.
  first_of_time = (np.concatenate([[True], (u[1:] != u[:-1]) | (t[1:] != t[:-1])]) if n
                   else np.zeros([0], bool))
  group_start = np.maximum.accumulate(np.where(first_of_time, np.arange(n), 0))
  user_end = np.empty(n, np.int64)
  if n:
    last_of_user = np.append(np.flatnonzero(first_of_user)[1:], n)
    user_end = np.repeat(last_of_user, np.diff(np.append(np.flatnonzero(first_of_user), n)))
  start, end, offset = (np.empty(n, np.int64) for _ in range(3))
  start[order] = user_start
  end[order] = group_start
  offset[order] = user_end - group_start
  return order, start, end, offset


def encode(ranks, half_lives: Sequence[float]):
  """[E] ranks -> [E, len(half_lives)] float32 0.5 ** (rank / h)."""
  ranks = tf.cast(tf.reshape(ranks, [-1, 1]), tf.float32)
  h = tf.constant(list(half_lives), tf.float32)[None, :]
  return tf.pow(0.5, ranks / h)


def add_recency_features(graph: "tfgnn.GraphTensor", half_lives: Sequence[float],
                         conv_half_life: float = 0.0, recent_window: int = 0
                         ) -> "tfgnn.GraphTensor":
  """Returns `graph` with `recency` (and `recency_weight`, `recent`) on the interaction edge
  sets.

  Args:
    graph: a scalar GraphTensor with a `timestamp` feature on interacted / interacted_by.
    half_lives: half-lives of the `recency` encoding (empty: no `recency` feature).
    conv_half_life: half-life of the [E, 1] `recency_weight` feature (0: none).
    recent_window: the [E] `recent` feature, 1.0 where the rank is below this (0: none).
  """
  edge_sets = {}
  for name, edge_set in graph.edge_sets.items():
    features = dict(edge_set.features)
    if name in USER_ENDPOINT and (half_lives or conv_half_life or recent_window):
      users = edge_set.adjacency[USER_ENDPOINT[name]]
      ranks = tf.numpy_function(recency_ranks, [users, edge_set["timestamp"]], tf.int64,
                                stateful=False)
      if half_lives:
        features[RECENCY] = tf.ensure_shape(encode(ranks, half_lives), [None, len(half_lives)])
      if conv_half_life:
        features[RECENCY_WEIGHT] = tf.ensure_shape(encode(ranks, [conv_half_life]), [None, 1])
      if recent_window:
        features[RECENT] = tf.cast(ranks < recent_window, tf.float32)
    edge_sets[name] = features
  return graph.replace_features(edge_sets=edge_sets)
