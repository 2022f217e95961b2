"""The graph tower on a small graph built by the graph job's own assembly code."""
import re

import numpy as np
import pandas as pd
import pytest

from tfgrec.graph import build
from tfgrec.models import graph_tower as gt

tf = gt.tf


def _raw_graph():
  """Users a, b, c; items cold, x, y, z (in node order); a had x, then y."""
  edges = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "item_id": ["x", "y", "y", "z"],
                        "value": np.float32([1, 1, 1, 1]), "timestamp": [1, 2, 3, 4],
                        "count": [1, 1, 1, 1]})
  catalog = pd.DataFrame({"item_id": ["x", "y", "z", "cold"], "text": ["X", "Y", "Z", "Cold"],
                          "categories": [("A",), ("A", "B"), ("B",), ("B",)]})
  return build.to_graph_tensor(build.make_tables(edges, catalog))


@pytest.fixture(scope="module")
def graph():
  return gt.prepare_graph(_raw_graph())


@pytest.mark.parametrize("branches,combine", [("both", "mean"), ("conv", "concat"),
                                              ("attention", "mean")])
def test_tower_shapes_and_gradients(graph, branches, combine):
  cfg = gt.GraphTowerConfig(dim=8, rounds=2, heads=2, dropout=0.0, branches=branches,
                            combine=combine)
  tower = gt.GraphTower(cfg, num_users=3, num_items=4, num_categories=2, item_text_dim=5)
  text = tf.random.normal([4, 5], seed=1)
  with tf.GradientTape() as tape:
    out = tower({"graph": graph, "item_text": text}, training=True)
    loss = tf.reduce_sum(out["user"]) + tf.reduce_sum(out["item"] ** 2)
  assert out["user"].shape == (3, 8) and out["item"].shape == (4, 8)
  grads = tape.gradient(loss, tower.trainable_variables)
  assert all(g is not None for g in grads)
  names = " ".join(v.name for v in tower.trainable_variables)
  assert ("gcn_" in names) == (branches != "attention")
  assert ("attention_" in names) == (branches != "conv")


@pytest.mark.parametrize("branches", ["both", "attention"])
def test_attention_only_on_the_edge_sets_named(graph, branches):
  cfg = gt.GraphTowerConfig(dim=8, rounds=2, heads=2, dropout=0.0, branches=branches,
                            attention_edge_sets=("interacted_by",))
  tower = gt.GraphTower(cfg, num_users=3, num_items=4, num_categories=2, item_text_dim=5)
  out = tower({"graph": graph, "item_text": tf.random.normal([4, 5], seed=1)})
  assert out["user"].shape == (3, 8)
  # The convolutions' names: gcn_<round>_<edge set>, attention_<round>_<edge set>.
  names = {part for v in tower.trainable_variables for part in v.name.split("/")
           if re.fullmatch(r"(gcn|attention)_\d_\w+", part)}
  attention = sorted(n for n in names if n.startswith("attention_"))
  assert attention == ["attention_0_interacted_by", "attention_1_interacted_by"]
  # The other edge sets keep a convolution (even with branches 'attention'); interacted_by
  # has one only with 'both'.
  assert {"gcn_0_interacted", "gcn_1_interacted", "gcn_0_has_item"} <= names
  assert ("gcn_0_interacted_by" in names) == (branches == "both")


def test_cold_item_state_comes_from_its_text(graph):
  cfg = gt.GraphTowerConfig(dim=8, rounds=1, heads=2, dropout=0.0)
  tower = gt.GraphTower(cfg, num_users=3, num_items=4, num_categories=2, item_text_dim=5)
  base = tf.zeros([4, 5])
  a = tower({"graph": graph, "item_text": base})["item"].numpy()
  changed = tf.tensor_scatter_nd_update(base, [[0]], [tf.ones([5])])  # "cold" is item 0.
  b = tower({"graph": graph, "item_text": changed})["item"].numpy()
  assert not np.allclose(a[0], b[0])


@pytest.mark.parametrize("kwargs", [dict(branches="both", combine="mean"),
                                    dict(branches="conv", combine="concat"),
                                    dict(branches="attention", rounds=3),
                                    dict(use_categories=False), dict(rounds=0)])
def test_new_item_embedding_matches_a_cold_item_of_the_graph(graph, kwargs):
  cfg = gt.GraphTowerConfig(**{**dict(dim=8, rounds=2, heads=2, dropout=0.0), **kwargs})
  tower = gt.GraphTower(cfg, num_users=3, num_items=4, num_categories=2, item_text_dim=5)
  text = tf.random.normal([4, 5], seed=2)
  inputs = {"graph": graph, "item_text": text}
  full = tower(inputs)["item"].numpy()
  states = tower.category_round_states(inputs)
  assert len(states) == cfg.rounds
  degree = gt.tfgnn.node_degree(graph, "has_item", gt.tfgnn.SOURCE)
  # "cold" (item 0) is in category B (index 1); it is encoded twice, once with a category the
  # tower does not know removed beforehand (an empty row), to check rows stay apart.
  new = tower.encode_new_items(tf.stack([text[0], text[0]]),
                               tf.ragged.constant([[1], []], dtype=tf.int64), states, degree)
  np.testing.assert_allclose(new[0].numpy(), full[0], rtol=1e-5, atol=1e-5)
  if cfg.rounds and cfg.use_categories:
    assert not np.allclose(new[1].numpy(), full[0], atol=1e-3)


def test_attention_reads_only_the_recent_interactions_of_each_user():
  raw = _raw_graph()
  text = tf.random.normal([4, 5], seed=3)
  x = 1  # Item order: cold, x, y, z. User a's older item x is outside a window of 1.
  moved = {}
  for window in (0, 1):
    cfg = gt.GraphTowerConfig(dim=8, rounds=1, heads=2, dropout=0.0, branches="attention",
                              attention_recent=window)
    graph = gt.prepare_graph(raw, cfg)
    tower = gt.GraphTower(cfg, num_users=3, num_items=4, num_categories=2, item_text_dim=5)
    before = tower({"graph": graph, "item_text": text})["user"].numpy()
    changed = tf.tensor_scatter_nd_add(text, [[x]], [tf.ones([5])])
    after = tower({"graph": graph, "item_text": changed})["user"].numpy()
    moved[window] = np.abs(after[0] - before[0]).max()
    # A new item is encoded as a cold item of the graph is, with the window's edge feature.
    states = tower.category_round_states({"graph": graph, "item_text": text})
    degree = gt.tfgnn.node_degree(graph, "has_item", gt.tfgnn.SOURCE)
    new = tower.encode_new_items(text[:1], tf.ragged.constant([[1]], dtype=tf.int64), states,
                                 degree)
    np.testing.assert_allclose(new[0], tower({"graph": graph, "item_text": text})["item"][0],
                               rtol=1e-5, atol=1e-5)
  assert moved[0] > 1e-4 and moved[1] < 1e-6  # The attention of user a no longer hears x.


def test_zero_rounds_is_an_embedding_table(graph):
  tower = gt.GraphTower(gt.GraphTowerConfig(dim=4, rounds=0, heads=1), num_users=3,
                        num_items=4, num_categories=2)
  out = tower({"graph": graph})
  np.testing.assert_allclose(out["user"], tower.user_embedding.embeddings.numpy())


@pytest.mark.parametrize("kwargs,message", [
    (dict(dim=10, heads=4), "divisible by heads"), (dict(branches="gat"), "branches must be"),
    (dict(combine="sum"), "combine must be"), (dict(dropout=1.0), "dropout must be"),
    (dict(attention_edge_sets=("interacted_by", "clicked")), "unknown edge set 'clicked'")])
def test_config_is_validated(kwargs, message):
  with pytest.raises(ValueError, match=message):
    gt.GraphTowerConfig(**kwargs)
