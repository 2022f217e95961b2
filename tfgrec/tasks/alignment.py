"""Graph <-> text alignment: a symmetric InfoNCE loss between two views of the same nodes.

For a batch of B nodes with graph embeddings g [B, D] and text embeddings t [B, D] (both already in
a shared space), the logits are cos(g_i, t_j) / temperature and the loss is the mean of the two
cross-entropies "g_i should pick t_i among all t" and "t_i should pick g_i among all g" (van den
Oord et al., 2018; Radford et al., 2021). Rows that are the same node (duplicates in the batch,
given `ids`) are not negatives of each other.

Under tf.distribute each replica sees its share of the global batch and the gradients of the
replicas are summed, so the task averages its per-node losses over the global batch
(`tf.nn.compute_average_loss`), as the retrieval and ranking losses do.
"""
from typing import Optional

import tensorflow as tf


def info_nce_per_row(a: tf.Tensor, b: tf.Tensor, *, temperature: float = 0.1,
                     ids: Optional[tf.Tensor] = None) -> tf.Tensor:
  """[B] symmetric InfoNCE of each row of a [B, D] and b [B, D] (the mean of both directions).

  Args:
    a, b: the two views; row i of each is the same node. L2-normalized inside.
    temperature: logits are cosine similarities divided by it.
    ids: [B] node ids; other rows with the same id are masked out of the negatives.
  """
  a = tf.math.l2_normalize(a, axis=-1)
  b = tf.math.l2_normalize(b, axis=-1)
  logits = tf.matmul(a, b, transpose_b=True) / temperature
  n = tf.shape(logits)[0]
  eye = tf.eye(n, dtype=tf.bool)
  if ids is not None:
    same = tf.equal(ids[:, None], ids[None, :])
    logits = tf.where(tf.logical_and(same, tf.logical_not(eye)), logits.dtype.min / 2, logits)
  labels = tf.range(n)
  loss_ab = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
  loss_ba = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                           logits=tf.transpose(logits))
  return 0.5 * (loss_ab + loss_ba)


def info_nce(a: tf.Tensor, b: tf.Tensor, *, temperature: float = 0.1,
             ids: Optional[tf.Tensor] = None) -> tf.Tensor:
  """The mean of `info_nce_per_row` over the rows (one process, no tf.distribute); a scalar."""
  return tf.reduce_mean(info_nce_per_row(a, b, temperature=temperature, ids=ids))


@tf.keras.utils.register_keras_serializable(package="tfgrec")
class AlignmentTask(tf.keras.layers.Layer):
  """InfoNCE alignment as a task layer (the tfrs tasks' shape): call(a, b, ids) -> loss.

  The loss is averaged over the global batch: under a tf.distribute strategy with N replicas,
  each replica returns its rows' sum / (rows per replica * N), so the summed gradients equal
  those of one device on the whole batch.

  Args:
    temperature: see info_nce.
  """

  def __init__(self, *, temperature: float = 0.1, **kwargs):
    super().__init__(**kwargs)
    if temperature <= 0:
      raise ValueError(f"temperature must be > 0, got {temperature}")
    self.temperature = temperature

  def call(self, a, b, ids=None):
    return tf.nn.compute_average_loss(
        info_nce_per_row(a, b, temperature=self.temperature, ids=ids))

  def get_config(self):
    return {**super().get_config(), "temperature": self.temperature}
