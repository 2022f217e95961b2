"""Multi-head scaled dot-product attention over one edge set, the graph tower's attention branch.

For an edge set from senders S to receivers R (S and R may differ, e.g. items -> users), each
receiver i attends over its incoming edges e = (j -> i), per head h:

  q_h(i) = W_q,h x_i + b_q,h
  k_h(e) = W_k,h x_j + U_k,h r_e + b_k,h          r_e: optional edge feature (e.g. recency)
  v_h(e) = W_v,h x_j + U_v,h r_e + b_v,h
  a_h(e) = softmax over the edges into i of  q_h(i) . k_h(e) / sqrt(d_h)
  out(i) = concat_h  sum_e a_h(e) v_h(e)          (zeros for a receiver without edges)

which is the attention of Vaswani et al. (2017) restricted to graph neighbourhoods, the form
TF-GNN's MultiHeadAttentionConv also computes. This layer computes it with fewer per-edge
tensors, which is what costs on CPU (gathers forward, scatter-adds backward):

  * node-level transforms: W_q x, W_k x and W_v x are computed once per node, never per edge;
  * the edge feature's key term enters the logit as r_e . (U_k,h^T q_h(i)), a [R, H, F] product
    gathered per edge, instead of a [E, H, d] key term;
  * values are never gathered: the pooled sum is a sparse [R*H, S*H] x [S*H, d] product of the
    unnormalized weights exp(logit - max) with the node-level values (one block per head), and
    the edge feature's value term is U_v,h (sum_e a_h(e) r_e); the softmax denominator divides
    the pooled result, not each edge.

The max subtracted for numerical stability is a constant of the softmax (its gradient is zero
mathematically), so it is computed without a gradient.
"""
import math
from typing import Optional

import tensorflow as tf
import tensorflow_gnn as tfgnn


def sparse_weighted_sum(rows: tf.Tensor, cols: tf.Tensor, weights: tf.Tensor,
                        values: tf.Tensor, num_rows: tf.Tensor) -> tf.Tensor:
  """[num_rows, d]: out[rows[n]] += weights[n] * values[cols[n]] over the N entries.

  A sparse [num_rows, V] x [V, d] product with its own gradient: TensorFlow's gradient of
  sparse_dense_matmul with respect to the sparse values runs one [1, d] x [d, 1] matrix product
  per entry (a third of the attention's backward pass on MovieLens); here it is a gathered
  elementwise product summed over d.

  Args:
    rows, cols: [N] int64 row of the output and row of `values` of each entry.
    weights: [N] the entries.
    values: [V, d].
    num_rows: the output's row count.
  """
  shape = tf.cast(tf.stack([num_rows, tf.shape(values, out_type=tf.int32)[0]]), tf.int64)
  indices = tf.stack([rows, cols], axis=1)

  @tf.custom_gradient
  def product(weights, values):
    matrix = tf.sparse.SparseTensor(indices, weights, shape)

    def gradient(upstream):
      d_weights = tf.reduce_sum(tf.gather(upstream, rows) * tf.gather(values, cols), axis=-1)
      return d_weights, tf.sparse.sparse_dense_matmul(matrix, upstream, adjoint_a=True)

    return tf.sparse.sparse_dense_matmul(matrix, values), gradient

  return product(weights, values)


@tf.keras.utils.register_keras_serializable(package="tfgrec")
class GraphAttentionConv(tf.keras.layers.Layer):
  """Multi-head attention of each receiver over its edges (see the module docstring).

  Call it like a TF-GNN convolution:

    conv = GraphAttentionConv(num_heads=4, per_head_channels=16, receiver_tag=tfgnn.TARGET,
                              sender_edge_feature="recency")
    pooled = conv(graph, edge_set_name="interacted")      # [num_items, 64]

  Args:
    num_heads: attention heads.
    per_head_channels: width of each head's queries, keys and values (output: their product).
    receiver_tag: tfgnn.TARGET or tfgnn.SOURCE, the side of the edges that attends.
    sender_edge_feature: optional edge feature [E, F] that enters keys and values (None: none).
    edge_mask_feature: optional [E] edge feature; only the edges where it is > 0 are attended
      over (None: every edge). The edges are the same in every step, so this is how the
      attention reads a part of a large edge set cheaply.
    use_bias: biases on the query, key and value transforms.
    kernel_initializer, kernel_regularizer: of every transform.
  """

  def __init__(self, *, num_heads: int, per_head_channels: int,
               receiver_tag: str = tfgnn.TARGET, sender_edge_feature: Optional[str] = None,
               edge_mask_feature: Optional[str] = None, use_bias: bool = True, kernel_initializer="glorot_uniform",
               kernel_regularizer=None, **kwargs):
    super().__init__(**kwargs)
    if num_heads < 1 or per_head_channels < 1:
      raise ValueError(f"num_heads and per_head_channels must be >= 1, got {num_heads}, "
                       f"{per_head_channels}")
    if receiver_tag not in (tfgnn.SOURCE, tfgnn.TARGET):
      raise ValueError(f"receiver_tag must be tfgnn.SOURCE or tfgnn.TARGET, got {receiver_tag!r}")
    self.num_heads = int(num_heads)
    self.per_head_channels = int(per_head_channels)
    self.receiver_tag = receiver_tag
    self.sender_edge_feature = sender_edge_feature
    self.edge_mask_feature = edge_mask_feature
    self.use_bias = bool(use_bias)
    self._kernel_initializer = tf.keras.initializers.get(kernel_initializer)
    self._kernel_regularizer = tf.keras.regularizers.get(kernel_regularizer)
    width = self.num_heads * self.per_head_channels

    def dense(name, bias=self.use_bias):
      return tf.keras.layers.Dense(
          width, use_bias=bias, name=name,
          kernel_initializer=tfgnn.keras.clone_initializer(self._kernel_initializer),
          kernel_regularizer=self._kernel_regularizer)

    self._query = dense("query")
    self._key = dense("key")
    self._value = dense("value")
    # The edge feature's terms (no bias: the node transforms have it).
    self._edge_key = dense("edge_key", bias=False) if sender_edge_feature else None
    self._edge_value = dense("edge_value", bias=False) if sender_edge_feature else None

  def get_config(self):
    return {**super().get_config(), "num_heads": self.num_heads,
            "per_head_channels": self.per_head_channels, "receiver_tag": self.receiver_tag,
            "sender_edge_feature": self.sender_edge_feature,
            "edge_mask_feature": self.edge_mask_feature, "use_bias": self.use_bias,
            "kernel_initializer": tf.keras.initializers.serialize(self._kernel_initializer),
            "kernel_regularizer": (tf.keras.regularizers.serialize(self._kernel_regularizer)
                                   if self._kernel_regularizer else None)}

  def call(self, graph: tfgnn.GraphTensor, *, edge_set_name: str, training=None):
    del training
    edge_set = graph.edge_sets[edge_set_name]
    sender_tag = tfgnn.reverse_tag(self.receiver_tag)
    receiver_name = edge_set.adjacency.node_set_name(self.receiver_tag)
    sender_name = edge_set.adjacency.node_set_name(sender_tag)
    receiver_index = tf.cast(edge_set.adjacency[self.receiver_tag], tf.int32)
    sender_index = tf.cast(edge_set.adjacency[sender_tag], tf.int32)
    receivers = graph.node_sets[receiver_name][tfgnn.HIDDEN_STATE]
    senders = graph.node_sets[sender_name][tfgnn.HIDDEN_STATE]
    num_receivers = tf.shape(receivers, out_type=tf.int32)[0]
    heads, channels = self.num_heads, self.per_head_channels
    edge_feature = None
    if self.sender_edge_feature is not None:
      if self.sender_edge_feature not in edge_set.features:
        raise ValueError(f"edge set {edge_set_name!r} has no feature "
                         f"{self.sender_edge_feature!r} (sender_edge_feature)")
      edge_feature = tf.cast(edge_set[self.sender_edge_feature], receivers.dtype)
      if edge_feature.shape.rank == 1:
        edge_feature = edge_feature[:, None]
    if self.edge_mask_feature is not None:
      if self.edge_mask_feature not in edge_set.features:
        raise ValueError(f"edge set {edge_set_name!r} has no feature "
                         f"{self.edge_mask_feature!r} (edge_mask_feature)")
      keep = tf.reshape(edge_set[self.edge_mask_feature], [-1]) > 0
      receiver_index = tf.boolean_mask(receiver_index, keep)
      sender_index = tf.boolean_mask(sender_index, keep)
      if edge_feature is not None:
        edge_feature = tf.boolean_mask(edge_feature, keep)

    split = lambda x: tf.reshape(x, [-1, heads, channels])
    query = split(self._query(receivers))                                # [R, H, d]
    key = split(self._key(senders))                                      # [S, H, d]
    value = split(self._value(senders))                                  # [S, H, d]
    logits = tf.reduce_sum(tf.gather(query, receiver_index) * tf.gather(key, sender_index),
                           axis=-1)                                      # [E, H]
    if edge_feature is not None:
      # r_e . (U_k,h^T q_h(i)): the edge feature's key term, per receiver and head.
      for layer in (self._edge_key, self._edge_value):
        if not layer.built:
          layer.build(tf.TensorShape([None, edge_feature.shape[-1]]))
      features = edge_feature.shape[-1]
      edge_key = tf.reshape(self._edge_key.kernel, [-1, heads, channels])  # [F, H, d]
      query_edge = tf.reshape(tf.einsum("rhd,fhd->rhf", query, edge_key),
                              [-1, heads * features])                    # [R, H * F]
      # Per-edge products as same-shape multiplies of [E, H * F] tensors (column h * F + f):
      # an einsum over the edge axis runs as E tiny matrix products, five times slower here,
      # and a broadcasting multiply is what Grappler mis-rewrites when E = 0 (SIGFPE).
      feature_per_head = tf.tile(edge_feature, [1, heads])               # [E, H * F]
      logits += tf.reduce_sum(tf.reshape(
          tf.gather(query_edge, receiver_index) * feature_per_head, [-1, heads, features]),
                              axis=-1)
    logits *= 1.0 / math.sqrt(channels)
    peak = tf.stop_gradient(tf.math.unsorted_segment_max(logits, receiver_index, num_receivers))
    weights = tf.exp(logits - tf.gather(peak, receiver_index))           # [E, H]
    total = tf.math.unsorted_segment_sum(weights, receiver_index, num_receivers)  # [R, H]
    # The pooled sum of weight * value as one sparse product: row i * H + h, column j * H + h
    # holds edge (j -> i)'s weight for head h (duplicate edges add up, as they should).
    heads_range = tf.range(heads, dtype=tf.int64)[None, :]
    rows = tf.reshape(tf.cast(receiver_index, tf.int64)[:, None] * heads + heads_range, [-1])
    cols = tf.reshape(tf.cast(sender_index, tf.int64)[:, None] * heads + heads_range, [-1])
    pooled = tf.reshape(sparse_weighted_sum(
        rows, cols, tf.reshape(weights, [-1]), tf.reshape(value, [-1, channels]),
        num_receivers * heads), [-1, heads, channels])                   # [R, H, d]
    if edge_feature is not None:
      summed = tf.math.unsorted_segment_sum(
          tf.repeat(weights, features, axis=1) * feature_per_head,
          receiver_index, num_receivers)                                 # [R, H * F]
      edge_value = tf.reshape(self._edge_value.kernel, [-1, heads, channels])
      pooled += tf.einsum("rhf,fhd->rhd", tf.reshape(summed, [-1, heads, features]), edge_value)
    # Receivers without edges have total 0 and pooled 0: their output is 0.
    pooled = tf.math.divide_no_nan(pooled, total[:, :, None])
    return tf.reshape(pooled, [-1, heads * channels])
