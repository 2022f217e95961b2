"""Graph-tower layers on tiny hand-checked graphs."""
import math
import os

import numpy as np
import pytest

from tfgrec import layers
from tfgrec.layers import gcn_conv

tf = gcn_conv.tf
tfgnn = gcn_conv.tfgnn


def _graph(users, items, edges):
  """users [U, D], items [I, D], edges [(user, item)] as a user -> item GraphTensor."""
  src = tf.constant([e[0] for e in edges], tf.int32)
  tgt = tf.constant([e[1] for e in edges], tf.int32)
  return tfgnn.GraphTensor.from_pieces(
      node_sets={
          "user": tfgnn.NodeSet.from_fields(
              sizes=[len(users)], features={"hidden_state": tf.constant(users, tf.float32)}),
          "item": tfgnn.NodeSet.from_fields(
              sizes=[len(items)], features={"hidden_state": tf.constant(items, tf.float32)}),
      },
      edge_sets={"interacted": tfgnn.EdgeSet.from_fields(
          sizes=[len(edges)],
          adjacency=tfgnn.Adjacency.from_indices(source=("user", src), target=("item", tgt)))})


def test_normalization_on_three_nodes():
  # Users a, b both interacted with item x: d(a) = d(b) = 1, d(x) = 2.
  g = _graph([[1.0, 0.0], [0.0, 1.0]], [[5.0, 7.0]], [(0, 0), (1, 0)])
  norm = layers.gcn_normalization(g, "interacted").numpy()
  np.testing.assert_allclose(norm, [1 / math.sqrt(2), 1 / math.sqrt(2)], rtol=1e-6)
  g = layers.add_gcn_normalization(g)
  conv = layers.GCNConv(2, receiver_tag=tfgnn.TARGET, kernel_initializer="identity")
  out = conv(g, edge_set_name="interacted").numpy()
  # out(x) = 0.5 * (x_a + x_b) / sqrt(2) + x_x = 0.5 * [1, 1] / 1.4142 + [5, 7].
  np.testing.assert_allclose(out, [[5 + 0.5 / math.sqrt(2), 7 + 0.5 / math.sqrt(2)]],
                             rtol=1e-6)
  # Towards the users: out(a) = 0.5 * x_x / sqrt(1 * 2) + x_a.
  back = layers.GCNConv(2, receiver_tag=tfgnn.SOURCE, kernel_initializer="identity")
  out = back(g, edge_set_name="interacted").numpy()
  np.testing.assert_allclose(out[0], [1 + 2.5 / math.sqrt(2), 3.5 / math.sqrt(2)], rtol=1e-6)


def test_normalization_uses_both_degrees_and_edge_weights():
  # a -> x, b -> x, b -> y: d(a) = 1, d(b) = 2, d(x) = 2, d(y) = 1.
  eye = np.eye(2).tolist()
  g = layers.add_gcn_normalization(_graph(eye, [[0, 0], [0, 0]], [(0, 0), (1, 0), (1, 1)]))
  conv = layers.GCNConv(2, skip=False, kernel_initializer="identity")
  out = conv(g, edge_set_name="interacted").numpy()
  # conv(x) = x_a / sqrt(1 * 2) + x_b / sqrt(2 * 2); conv(y) = x_b / sqrt(2 * 1).
  np.testing.assert_allclose(out, [[1 / math.sqrt(2), 0.5], [0, 1 / math.sqrt(2)]], rtol=1e-6)
  weighted = g.replace_features(edge_sets={"interacted": {
      **g.edge_sets["interacted"].features, "w": tf.constant([1.0, 0.0, 3.0])}})
  conv_w = layers.GCNConv(2, skip=False, edge_weight_feature="w",
                          kernel_initializer="identity")
  out = conv_w(weighted, edge_set_name="interacted").numpy()
  np.testing.assert_allclose(out, [[1 / math.sqrt(2), 0], [0, 3 / math.sqrt(2)]], rtol=1e-6)
  # No per-call state: nothing the call computed stays on the layer.
  assert not [k for k, v in vars(conv_w).items() if tf.is_tensor(v)]


def test_gcn_conv_gradient_is_the_transposed_normalized_adjacency():
  # a -> x, b -> x, b -> y as above: conv = A u with A = [[1/sqrt2, 1/2], [0, 1/sqrt2]], so the
  # gradient of sum(c * conv) with respect to the user states u is A^T c.
  users = tf.constant([[1.0, 2.0], [3.0, 4.0]])
  c = tf.constant([[1.0, -1.0], [2.0, 0.5]])
  conv = layers.GCNConv(2, skip=False, kernel_initializer="identity")
  with tf.GradientTape() as tape:
    tape.watch(users)
    g = layers.add_gcn_normalization(
        _graph(users, [[0.0, 0.0], [0.0, 0.0]], [(0, 0), (1, 0), (1, 1)]))
    loss = tf.reduce_sum(c * conv(g, edge_set_name="interacted"))
  a = np.array([[1 / math.sqrt(2), 0.5], [0.0, 1 / math.sqrt(2)]])
  np.testing.assert_allclose(tape.gradient(loss, users).numpy(), a.T @ c.numpy(), rtol=1e-6)


def test_gcn_conv_errors_and_config():
  g = _graph([[1.0, 0.0]], [[0.0, 1.0]], [(0, 0)])
  with pytest.raises(ValueError, match="add_gcn_normalization"):
    layers.GCNConv(2)(g, edge_set_name="interacted")
  with pytest.raises(ValueError, match="units must be >= 1"):
    layers.GCNConv(0)
  conv = layers.GCNConv(3, skip=False, edge_weight_feature="w", receiver_tag=tfgnn.SOURCE)
  again = layers.GCNConv.from_config(conv.get_config())
  assert again.get_config() == conv.get_config()


def test_multi_head_attention_weights_sum_to_one_per_receiver():
  # Three users with one-hot states attend into item x (and two into y). With identity value
  # projections and no activation, a head's output is its attention weights over the senders.
  from tensorflow_gnn.models import multi_head_attention as mha
  heads, d = 2, 3
  users = np.eye(d).tolist()
  items = [[4.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
  g = _graph(users, items, [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1)])
  tiled = tf.keras.initializers.Constant(np.tile(np.eye(d), heads))
  conv = mha.MultiHeadAttentionConv(
      num_heads=heads, per_head_channels=d, receiver_tag=tfgnn.TARGET, activation=None,
      use_bias=False, kernel_initializer=tiled)
  out = conv(g, edge_set_name="interacted").numpy().reshape(2, heads, d)
  np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)
  assert (out[1, :, 0] == 0).all()  # User 0 is not a neighbour of y.
  # x's state is aligned with user 0: scaled dot-product attention favours it.
  assert (out[0, :, 0] > out[0, :, 1]).all()


def _attention_graph(seed=0):
  """5 users -> 4 items with a 3-wide edge feature; item 3 has no edges, user 4 none either."""
  rng = np.random.default_rng(seed)
  edges = [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (3, 1), (0, 2), (0, 2), (3, 2)]
  g = _graph(rng.normal(size=(5, 6)).tolist(), rng.normal(size=(4, 6)).tolist(), edges)
  return g.replace_features(edge_sets={"interacted": {
      "r": tf.constant(rng.uniform(size=(len(edges), 3)), tf.float32)}})


@pytest.mark.parametrize("tag", [tfgnn.TARGET, tfgnn.SOURCE])
def test_graph_attention_equals_tfgnn_multi_head_attention(tag):
  # The same weights give TF-GNN's MultiHeadAttentionConv's outputs and gradients.
  from tensorflow_gnn.models import multi_head_attention as mha
  g = _attention_graph()
  ours = layers.GraphAttentionConv(num_heads=2, per_head_channels=4, receiver_tag=tag,
                                   sender_edge_feature="r")
  theirs = mha.MultiHeadAttentionConv(num_heads=2, per_head_channels=4, receiver_tag=tag,
                                      sender_edge_feature="r", activation=None)
  ours(g, edge_set_name="interacted")
  theirs(g, edge_set_name="interacted")
  # pylint: disable=protected-access
  pairs = [(ours._query, theirs._w_query), (ours._key, theirs._w_sender_node_to_key),
           (ours._edge_key, theirs._w_sender_edge_to_key),
           (ours._value, theirs._w_sender_node_to_value),
           (ours._edge_value, theirs._w_sender_edge_to_value)]
  for mine, other in pairs:
    mine.set_weights(other.get_weights())
  states = [g.node_sets[n]["hidden_state"] for n in ("user", "item")]

  def run(layer):
    with tf.GradientTape() as tape:
      tape.watch(states)
      graph = g.replace_features(node_sets={"user": {"hidden_state": states[0]},
                                            "item": {"hidden_state": states[1]}})
      out = layer(graph, edge_set_name="interacted")
      loss = tf.reduce_sum(tf.sin(out))
    return out.numpy(), [x.numpy() for x in tape.gradient(loss, states)]

  (out, grads), (expected, expected_grads) = run(ours), run(theirs)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
  for grad, expected_grad in zip(grads, expected_grads):
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-6)
  empty = 3 if tag == tfgnn.TARGET else 4  # A receiver without edges gets zeros.
  assert out.shape[0] == (4 if tag == tfgnn.TARGET else 5) and not out[empty].any()
  assert not [k for k, v in vars(ours).items() if tf.is_tensor(v)]  # No per-call state.


def test_graph_attention_config_and_reload(tmp_path):
  g = _attention_graph(seed=1)
  layer = layers.GraphAttentionConv(num_heads=2, per_head_channels=3, receiver_tag=tfgnn.SOURCE,
                                    sender_edge_feature="r", kernel_regularizer="l2",
                                    name="attend")
  out = layer(g, edge_set_name="interacted")
  config = layer.get_config()
  again = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
  assert type(again) is layers.GraphAttentionConv and again.get_config() == config
  again(g, edge_set_name="interacted")
  again.set_weights(layer.get_weights())
  np.testing.assert_allclose(again(g, edge_set_name="interacted"), out, rtol=1e-6)
  # Saved and restored as a SavedModel, it computes the same.
  module = tf.Module()
  module.layer = layer
  module.call = tf.function(lambda graph: layer(graph, edge_set_name="interacted"),
                            input_signature=[g.spec])
  tf.saved_model.save(module, str(tmp_path / "attention"))
  restored = tf.saved_model.load(str(tmp_path / "attention"))
  np.testing.assert_allclose(restored.call(g), out, rtol=1e-6)
  with pytest.raises(ValueError, match="no feature 'missing'"):
    layers.GraphAttentionConv(num_heads=1, per_head_channels=2,
                              sender_edge_feature="missing")(g, edge_set_name="interacted")
  with pytest.raises(ValueError, match="num_heads and per_head_channels must be >= 1"):
    layers.GraphAttentionConv(num_heads=0, per_head_channels=2)


def test_graph_attention_with_an_edge_mask_equals_it_without_the_masked_edges():
  g = _attention_graph(seed=2)
  keep = np.array([1, 0, 1, 1, 1, 0, 0, 1, 1], np.float32)  # Item 0 keeps 2 of 3, item 2 2.
  masked = g.replace_features(edge_sets={"interacted": {
      "r": g.edge_sets["interacted"]["r"], "m": tf.constant(keep)}})
  adjacency = g.edge_sets["interacted"].adjacency
  kept = np.flatnonzero(keep)
  pruned = _graph(g.node_sets["user"]["hidden_state"].numpy().tolist(),
                  g.node_sets["item"]["hidden_state"].numpy().tolist(),
                  list(zip(adjacency.source.numpy()[kept], adjacency.target.numpy()[kept])))
  pruned = pruned.replace_features(edge_sets={"interacted": {
      "r": tf.gather(g.edge_sets["interacted"]["r"], kept)}})
  layer = layers.GraphAttentionConv(num_heads=2, per_head_channels=3, sender_edge_feature="r",
                                    edge_mask_feature="m")
  plain = layers.GraphAttentionConv(num_heads=2, per_head_channels=3, sender_edge_feature="r")
  out = layer(masked, edge_set_name="interacted").numpy()
  plain(pruned, edge_set_name="interacted")
  plain.set_weights(layer.get_weights())
  np.testing.assert_allclose(out, plain(pruned, edge_set_name="interacted"), rtol=1e-5,
                             atol=1e-6)
  assert not np.allclose(out, plain(g, edge_set_name="interacted"), atol=1e-4)
  again = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
  assert again.get_config()["edge_mask_feature"] == "m"
  with pytest.raises(ValueError, match="no feature 'm' \\(edge_mask_feature\\)"):
    layer(g, edge_set_name="interacted")


_NO_EDGES = r"""
import sys
import tensorflow as tf
import tensorflow_gnn as tfgnn
from tfgrec import layers
layer = layers.GraphAttentionConv(num_heads=2, per_head_channels=3, sender_edge_feature="r",
                                  receiver_tag=int(sys.argv[1]))

@tf.function
def call(items):
  empty = tf.zeros([0], tf.int32)
  graph = tfgnn.GraphTensor.from_pieces(
      node_sets={"user": tfgnn.NodeSet.from_fields(sizes=[0], features={
                     "hidden_state": tf.zeros([0, 4])}),
                 "item": tfgnn.NodeSet.from_fields(sizes=tf.shape(items)[:1], features={
                     "hidden_state": items})},
      edge_sets={"interacted": tfgnn.EdgeSet.from_fields(
          sizes=[0], features={"r": tf.zeros([0, 3])},
          adjacency=tfgnn.Adjacency.from_indices(("user", empty), ("item", empty)))})
  return layer(graph, edge_set_name="interacted")

print(float(tf.reduce_sum(tf.abs(call(tf.ones([2, 4]))))), tuple(call(tf.ones([2, 4])).shape))
"""


@pytest.mark.parametrize("tag", [tfgnn.TARGET, tfgnn.SOURCE])
def test_graph_attention_without_edges_under_the_graph_optimizer(tag):
  # A new item's graph has no users and no interaction edges. With TensorFlow's graph optimizer
  # on (as in TF Serving and in any process that did not turn it off; the test suite's own
  # process has it off), a broadcasting multiply over the zero edges crashed it with SIGFPE.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  proc = subprocess.run([sys.executable, "-c", _NO_EDGES, str(tag)], capture_output=True, text=True,
                        timeout=300, env={**os.environ, "TFGREC_GRAPH_OPTIMIZER": "on"})
  assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
  total, shape = proc.stdout.split(" ", 1)
  assert float(total) == 0.0  # No edges: every receiver's output is zero.
  assert shape.strip() == ("(2, 6)" if tag == tfgnn.TARGET else "(0, 6)")
