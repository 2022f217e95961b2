"""Graph <-> text alignment: a symmetric InfoNCE loss between two views of the same nodes.

For a batch of B nodes with graph embeddings g [B, D] and text embeddings t [B, D] (both already in
a shared space), the logits are cos(g_i, t_j) / temperature and the loss is the mean of the two
cross-entropies "g_i should pick t_i among all t" and "t_i should pick g_i among all g" (van den
Oord et al., 2018; Radford et al., 2021). Rows that are the same node (duplicates in the batch,
given `ids`) are not negatives of each other.
"""
from typing import Optional

from tfgrec import _keras_guard

_keras_guard.ensure_legacy_keras()

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position


def info_nce(a: tf.Tensor, b: tf.Tensor, *, temperature: float = 0.1,
             ids: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Symmetric InfoNCE between rows of a [B, D] and b [B, D]; returns a scalar.

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
  return 0.5 * (tf.reduce_mean(loss_ab) + tf.reduce_mean(loss_ba))


@tf.keras.utils.register_keras_serializable(package="tfgrec")
class AlignmentTask(tf.keras.layers.Layer):
  """InfoNCE alignment as a task layer (the tfrs tasks' shape): call(a, b, ids) -> loss.

  Args:
    temperature: see info_nce.
  """

  def __init__(self, *, temperature: float = 0.1, **kwargs):
    super().__init__(**kwargs)
    if temperature <= 0:
      raise ValueError(f"temperature must be > 0, got {temperature}")
    self.temperature = temperature

  def call(self, a, b, ids=None):
    return info_nce(a, b, temperature=self.temperature, ids=ids)

  def get_config(self):
    return {**super().get_config(), "temperature": self.temperature}
