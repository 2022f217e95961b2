"""A degree-normalized graph convolution that works across node sets (user -> item, ...).

For an edge set from senders S to receivers R (S and R may differ), with d(v) the number of edges
of this edge set at node v, the convolution of receiver i is

  conv(i) = sum over edges (j -> i) of  w_ji * x_j W / sqrt(d(j) * d(i))

the symmetric D^-1/2 A D^-1/2 normalization of Kipf & Welling (2017), with optional edge weights
w (e.g. a recency weight; 1 when absent). ``tfgnn.models.gcn.GCNConv`` computes this only when S
and R are the same node set (its self-loops need that); a bipartite edge set has no self-loops,
so the node's own state enters through a separate skip term, as in the GCN formula's A + I:

  out(i) = 0.5 * conv(i) + x_i W_self          (skip=True, the default)
  out(i) = conv(i)                             (skip=False)

The normalization factors depend only on the graph's structure, so they are computed once per
graph by :func:`add_gcn_normalization` and stored as an edge feature; the layer reads them from
there (``norm_feature``).
"""
from typing import Iterable, Optional

import tensorflow as tf
import tensorflow_gnn as tfgnn

GCN_NORM = "gcn_norm"


def gcn_normalization(graph: tfgnn.GraphTensor, edge_set_name: str) -> tf.Tensor:
  """[num_edges] 1 / sqrt(d(source) * d(target)) for each edge of the edge set."""
  d_src = tfgnn.node_degree(graph, edge_set_name, tfgnn.SOURCE)
  d_tgt = tfgnn.node_degree(graph, edge_set_name, tfgnn.TARGET)
  src = tfgnn.broadcast_node_to_edges(graph, edge_set_name, tfgnn.SOURCE,
                                      feature_value=tf.cast(d_src, tf.float32))
  tgt = tfgnn.broadcast_node_to_edges(graph, edge_set_name, tfgnn.TARGET,
                                      feature_value=tf.cast(d_tgt, tf.float32))
  return tf.math.rsqrt(tf.maximum(src * tgt, 1.0))


def add_gcn_normalization(graph: tfgnn.GraphTensor,
                          edge_set_names: Optional[Iterable[str]] = None,
                          feature_name: str = GCN_NORM) -> tfgnn.GraphTensor:
  """Returns `graph` with the feature `feature_name` [num_edges, 1] on each edge set."""
  names = list(edge_set_names if edge_set_names is not None else graph.edge_sets)
  edge_sets = {}
  for name in graph.edge_sets:
    features = dict(graph.edge_sets[name].features)
    if name in names:
      features[feature_name] = gcn_normalization(graph, name)[:, None]
    edge_sets[name] = features
  return graph.replace_features(edge_sets=edge_sets)


@tf.keras.utils.register_keras_serializable(package="tfgrec")
class GCNConv(tf.keras.layers.Layer):
  """Degree-normalized convolution over one edge set, sender and receiver sets may differ.

  Call it like a TF-GNN convolution (e.g. inside tfgnn.keras.layers.NodeSetUpdate), after
  :func:`add_gcn_normalization`:

    graph = add_gcn_normalization(graph)
    conv = GCNConv(64, receiver_tag=tfgnn.TARGET)
    messages = conv(graph, edge_set_name="interacted")   # [num_items, 64]

  The sum over edges is one sparse [R, S] x [S, units] product with the edges' factors
  (norm * weight) as entries: no [E, units] message tensor is gathered forward or
  scatter-added backward (the factors are constants of the graph and get no gradient).

  Args:
    units: output width.
    receiver_tag: tfgnn.TARGET or tfgnn.SOURCE.
    skip: add a linear map of the receiver's own state (see the module docstring).
    edge_weight_feature: optional edge feature [num_edges] or [num_edges, 1] multiplying each
      message (e.g. recency); it must be added to the graph beforehand.
    norm_feature: the edge feature written by add_gcn_normalization.
    use_bias: bias in the message transformation.
    kernel_initializer, kernel_regularizer: for both linear maps.
  """

  def __init__(self, units: int, *, receiver_tag: str = tfgnn.TARGET,
               skip: bool = True, edge_weight_feature: Optional[str] = None,
               norm_feature: str = GCN_NORM, use_bias: bool = False,
               kernel_initializer="glorot_uniform", kernel_regularizer=None, **kwargs):
    kwargs.setdefault("name", "gcn_conv")
    super().__init__(**kwargs)
    if units < 1:
      raise ValueError(f"units must be >= 1, got {units}")
    if receiver_tag not in (tfgnn.SOURCE, tfgnn.TARGET):
      raise ValueError(f"receiver_tag must be tfgnn.SOURCE or tfgnn.TARGET, got {receiver_tag!r}")
    self.units = units
    self.receiver_tag = receiver_tag
    self.skip = skip
    self.edge_weight_feature = edge_weight_feature
    self.norm_feature = norm_feature
    self.use_bias = use_bias
    self._kernel_initializer = tf.keras.initializers.get(kernel_initializer)
    self._kernel_regularizer = tf.keras.regularizers.get(kernel_regularizer)
    self._transform = tf.keras.layers.Dense(
        units, use_bias=use_bias, kernel_initializer=self._kernel_initializer,
        kernel_regularizer=self._kernel_regularizer, name="message")
    self._self_transform = tf.keras.layers.Dense(
        units, use_bias=False, kernel_initializer=self._kernel_initializer,
        kernel_regularizer=self._kernel_regularizer, name="skip") if skip else None

  def get_config(self):
    return dict(super().get_config(), units=self.units, receiver_tag=self.receiver_tag,
                skip=self.skip, edge_weight_feature=self.edge_weight_feature,
                norm_feature=self.norm_feature, use_bias=self.use_bias,
                kernel_initializer=tf.keras.initializers.serialize(self._kernel_initializer),
                kernel_regularizer=tf.keras.regularizers.serialize(self._kernel_regularizer)
                if self._kernel_regularizer else None)

  def call(self, graph: tfgnn.GraphTensor, *, edge_set_name: Optional[str] = None,
           training=None):
    del training
    if edge_set_name is None:
      raise ValueError("GCNConv convolves over an edge set: pass edge_set_name")
    edge_set = graph.edge_sets[edge_set_name]
    if self.norm_feature not in edge_set.features:
      raise ValueError(f"edge set {edge_set_name!r} has no feature {self.norm_feature!r}: "
                       "apply tfgrec.layers.add_gcn_normalization(graph) first")
    factor = tf.reshape(edge_set[self.norm_feature], [-1])
    if self.edge_weight_feature is not None:
      if self.edge_weight_feature not in edge_set.features:
        raise ValueError(f"edge set {edge_set_name!r} has no feature "
                         f"{self.edge_weight_feature!r} (edge_weight_feature)")
      factor *= tf.cast(tf.reshape(edge_set[self.edge_weight_feature], [-1]), factor.dtype)
    sender_tag = tfgnn.reverse_tag(self.receiver_tag)
    receivers = graph.node_sets[edge_set.adjacency.node_set_name(self.receiver_tag)][
        tfgnn.HIDDEN_STATE]
    messages = self._transform(
        graph.node_sets[edge_set.adjacency.node_set_name(sender_tag)][tfgnn.HIDDEN_STATE])
    indices = tf.stack([tf.cast(edge_set.adjacency[self.receiver_tag], tf.int64),
                        tf.cast(edge_set.adjacency[sender_tag], tf.int64)], axis=1)
    shape = tf.cast(tf.stack([tf.shape(receivers)[0], tf.shape(messages)[0]]), tf.int64)
    adjacency = tf.sparse.SparseTensor(indices, tf.stop_gradient(tf.cast(factor,
                                                                         messages.dtype)), shape)
    pooled = tf.sparse.sparse_dense_matmul(adjacency, messages)  # Duplicate edges add up.
    if self._self_transform is None:
      return pooled
    return 0.5 * pooled + self._self_transform(receivers)
