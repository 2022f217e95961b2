"""Recency ranks and encodings of interaction edges."""
import numpy as np
import pandas as pd

from tfgrec import graph as graph_lib
from tfgrec.graph import build, recency


def test_ranks_count_more_recent_edges_of_the_same_user():
  users = np.array([0, 0, 0, 1, 0, 1])
  stamps = np.array([5, 9, 7, 1, 9, 3])
  # User 0: two edges at 9 (rank 0), 7 (rank 2: two edges are newer), 5 (rank 3).
  # User 1: 3 (rank 0), 1 (rank 1).
  assert graph_lib.recency_ranks(users, stamps).tolist() == [3, 0, 2, 1, 0, 0]
  assert graph_lib.recency_ranks(np.array([], np.int64), np.array([], np.int64)).size == 0


def test_features_on_both_interaction_edge_sets():
  edges = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"],
                        "value": [1.0, 2.0, 3.0], "timestamp": [10, 20, 5], "count": [1, 1, 1]})
  catalog = pd.DataFrame({"item_id": ["a", "b"], "text": ["A", "B"],
                          "categories": [("x",), ("y",)]})
  graph = build.to_graph_tensor(build.make_tables(edges, catalog))
  graph = graph_lib.add_recency_features(graph, [1.0, 4.0], conv_half_life=2.0)
  fwd = graph.edge_sets["interacted"]
  # Edges sorted by (user, item): u1-a (older, rank 1), u1-b (latest), u2-a (latest).
  np.testing.assert_allclose(fwd[recency.RECENCY].numpy(),
                             [[0.5, 0.5 ** 0.25], [1, 1], [1, 1]], rtol=1e-6)
  np.testing.assert_allclose(fwd[recency.RECENCY_WEIGHT].numpy()[:, 0], [0.5 ** 0.5, 1, 1],
                             rtol=1e-6)
  back = graph.edge_sets["interacted_by"]
  ranks = dict(zip(zip(back.adjacency.target.numpy(), back.adjacency.source.numpy()),
                   back[recency.RECENCY].numpy()[:, 0]))
  assert ranks == {(0, 0): 0.5, (0, 1): 1.0, (1, 0): 1.0}
  assert recency.RECENCY not in graph.edge_sets["in_category"].features
  assert recency.RECENT not in fwd.features  # Only with a window.
  windowed = graph_lib.add_recency_features(graph, [1.0], recent_window=1)
  assert windowed.edge_sets["interacted"][recency.RECENT].numpy().tolist() == [0.0, 1.0, 1.0]


def test_add_interactions_extends_both_directions_and_keeps_nodes():
  edges = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "b"], "value": [1.0, 2.0],
                        "timestamp": [10, 20], "count": [1, 1]})
  catalog = pd.DataFrame({"item_id": ["a", "b", "c"], "text": ["A", "B", "C"],
                          "categories": [("x",), ("y",), ("x",)]})
  graph = build.to_graph_tensor(build.make_tables(edges, catalog))
  # u1 (node 0) later interacts with the cold item c (node 2).
  later = graph_lib.add_interactions(graph, np.array([0]), np.array([2]), np.array([30]))
  fwd, back = later.edge_sets["interacted"], later.edge_sets["interacted_by"]
  assert int(fwd.total_size) == int(back.total_size) == 3
  assert (int(fwd.adjacency.source[-1]), int(fwd.adjacency.target[-1])) == (0, 2)
  assert (int(back.adjacency.source[-1]), int(back.adjacency.target[-1])) == (2, 0)
  assert fwd["timestamp"].numpy().tolist() == [10, 20, 30]
  assert {n: int(s.total_size) for n, s in later.node_sets.items()} == {
      n: int(s.total_size) for n, s in graph.node_sets.items()}
  assert int(later.edge_sets["in_category"].total_size) == 3
  # Recency is recomputed on the larger graph: u1's old edge is no longer its latest.
  ranked = graph_lib.add_recency_features(later, [1.0])
  assert ranked.edge_sets["interacted"][recency.RECENCY].numpy()[:, 0].tolist() == [0.5, 1, 1]


def test_edges_without_a_time_tie_and_weigh_one():
  # u1 has no time at all (-1 on every edge): all rank 0, all weights 1. u2 is mixed: its
  # timed edge is the latest, its edges without a time tie behind it (rank 1).
  edges = pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2", "u2", "u2"],
                        "item_id": ["a", "b", "c", "a", "b", "c"], "value": [1.0] * 6,
                        "timestamp": [-1, -1, -1, -1, 1700000000, -1], "count": [1] * 6})
  catalog = pd.DataFrame({"item_id": ["a", "b", "c"], "text": ["A", "B", "C"],
                          "categories": [("x",)] * 3})
  graph = build.to_graph_tensor(build.make_tables(edges, catalog))
  graph = graph_lib.add_recency_features(graph, [1.0, 4.0], conv_half_life=2.0)
  for name in ("interacted", "interacted_by"):
    edge_set = graph.edge_sets[name]
    users = edge_set.adjacency[recency.USER_ENDPOINT[name]].numpy()
    weights = edge_set[recency.RECENCY_WEIGHT].numpy()[:, 0]
    np.testing.assert_allclose(edge_set[recency.RECENCY].numpy()[users == 0], 1.0)
    np.testing.assert_allclose(weights[users == 0], 1.0)
  fwd = graph.edge_sets["interacted"]
  np.testing.assert_allclose(fwd[recency.RECENCY_WEIGHT].numpy()[3:, 0],
                             [0.5 ** 0.5, 1.0, 0.5 ** 0.5], rtol=1e-6)
