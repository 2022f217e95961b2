"""A causal self-attention block over a sequence of events, with a learned bias for event age.

SASRec (Kang & McAuley, ICDM 2018, "Self-Attentive Sequential Recommendation") encodes a user's
history with causal self-attention: position t attends only to positions <= t. TiSASRec (Li,
Wang & McAuley, WSDM 2020, "Time Interval Aware Self-Attention for Sequential Recommendation")
adds the time between events to the attention. This block keeps the time information as a
per-head additive bias on the attention logits, one learned scalar per (time bucket, head):

  a_h(t, j) = softmax_j( q_h(t) . k_h(j) / sqrt(d_h) + b_h[age_bucket(t, j)] ),   j <= t

age_bucket(t, j) = time_bucket(now_t, time_j) buckets the age of key event j at the reference
time now_t of query position t (`time_bucket`: log-scale, seconds to years). The block is a
pre-norm transformer layer:

  x = x + Dropout(Attention(LayerNorm(x)))
  x = x + Dropout(FFN(LayerNorm(x)))          FFN(h) = W2 Dropout(relu(W1 h))
  x = x * padding_mask                        (padding positions output zeros)

Masks: key j is visible to query t when j <= t and j is not padding; every position also sees
itself, so no row of the softmax is empty (a padding query reads only its own zero state, and an
all-padding sequence gives finite outputs, never NaN).
"""
from typing import Optional

import tensorflow as tf

from tfgrec.data import contract

NO_TIME = contract.NO_TIME  # An event without a timestamp (-1).

# Upper bounds (exclusive, seconds) of the time buckets after "unknown" (0) and "same second"
# (1): < 1 min, < 10 min, < 1 h, < 6 h, < 1 day, < 3 days, < 1 week, < 30 days, < 90 days,
# < 1 year, < 3 years; the last bucket holds everything older.
_MINUTE, _HOUR, _DAY = 60, 3600, 86_400
TIME_BUCKET_BOUNDS = (1, _MINUTE, 10 * _MINUTE, _HOUR, 6 * _HOUR, _DAY, 3 * _DAY, 7 * _DAY,
                      30 * _DAY, 90 * _DAY, 365 * _DAY, 3 * 365 * _DAY)
NUM_TIME_BUCKETS = len(TIME_BUCKET_BOUNDS) + 2  # 14: unknown, then one per bound, then older.
_MASKED = -1e9


def time_bucket(reference, time) -> tf.Tensor:
  """Log-scale bucket of the gap `reference - time` (seconds), stock TF ops.

  Bucket 0 is "unknown": either time is NO_TIME (-1), or the gap is negative (an event after
  the reference, or padding with a very negative time). Otherwise bucket 1 + the number of
  bounds <= gap (`TIME_BUCKET_BOUNDS`): 1 = same second, 2 = under a minute, ..., 6 = under
  a day, ..., 13 = three years or more. A log without time (every time -1, or all equal) puts
  every gap in bucket 0 (or 1).

  >>> day = 86_400
  >>> time_bucket([100, 100, 100, 100, 100, -1], [100, 41, 40, 100 - day, 101, 50]).numpy()
  array([1, 2, 3, 7, 0, 0], dtype=int32)

  Args:
    reference: [...] int64 reference times (epoch seconds, NO_TIME = -1).
    time: [...] int64 event times, broadcastable with `reference`.

  Returns:
    [...] int32 buckets in [0, NUM_TIME_BUCKETS), the broadcast shape.
  """
  reference = tf.convert_to_tensor(reference, tf.int64)
  time = tf.convert_to_tensor(time, tf.int64)
  gap = reference - time
  bucket = tf.ones_like(gap, tf.int32)
  for bound in TIME_BUCKET_BOUNDS:
    bucket += tf.cast(gap >= bound, tf.int32)
  known = (time != NO_TIME) & (reference != NO_TIME) & (gap >= 0)
  return tf.where(known, bucket, 0)


@tf.keras.utils.register_keras_serializable(package="tfgrec")
class CausalTimeAttention(tf.keras.layers.Layer):
  """A pre-norm causal self-attention block with a per-head time-bucket bias (module docstring).

    block = CausalTimeAttention(num_heads=2, dropout=0.2)
    out = block(x, age_buckets=buckets, padding_mask=valid)   # x [B, L, D] -> [B, L, D]

  Init args:
    num_heads: attention heads (the input width D must be a multiple).
    num_time_buckets: rows of the bias table (the range of `age_buckets`).
    use_time_bias: add b_h[age_bucket] to the logits (False: plain SASRec attention).
    dropout: rate on the attention weights, the attention output and the feed-forward network.
    feed_forward_dim: hidden width of the feed-forward network (None: D).
    epsilon: of both layer normalizations.
    seed: seeds the initializers and the dropout (None: unseeded).
    **kwargs: Keras layer arguments (name, dtype, ...).

  Call args:
    inputs: [B, L, D] float states of the sequence, oldest first.
    age_buckets: [B, L, L] int32, age_buckets[b, t, j] the bucket of key j's age at query t's
      reference time (`time_bucket`); entries with j > t are ignored. None: no time bias.
    padding_mask: [B, L] bool, False at padding positions. None: no padding.
    training: applies dropout when True.

  Returns:
    [B, L, D] float, zeros at padding positions.
  """

  def __init__(self, *, num_heads: int, num_time_buckets: int = NUM_TIME_BUCKETS,
               use_time_bias: bool = True, dropout: float = 0.0,
               feed_forward_dim: Optional[int] = None, epsilon: float = 1e-6,
               seed: Optional[int] = None, **kwargs):
    super().__init__(**kwargs)
    if int(num_heads) <= 0:
      raise ValueError(f"num_heads must be > 0, got {num_heads}")
    if int(num_time_buckets) <= 0:
      raise ValueError(f"num_time_buckets must be > 0, got {num_time_buckets}")
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if feed_forward_dim is not None and int(feed_forward_dim) <= 0:
      raise ValueError(f"feed_forward_dim must be > 0 or None, got {feed_forward_dim}")
    if not epsilon > 0:
      raise ValueError(f"epsilon must be > 0, got {epsilon}")
    self.num_heads = int(num_heads)
    self.num_time_buckets = int(num_time_buckets)
    self.use_time_bias = bool(use_time_bias)
    self.dropout = float(dropout)
    self.feed_forward_dim = None if feed_forward_dim is None else int(feed_forward_dim)
    self.epsilon = float(epsilon)
    self.seed = None if seed is None else int(seed)

  # === Layers ===
  def build(self, input_shape):
    dim = int(input_shape[-1])
    if dim % self.num_heads:
      raise ValueError(f"the input width must be a multiple of num_heads={self.num_heads}, got "
                       f"{dim}")
    seeds = iter(range(100)) if self.seed is None else iter(range(self.seed, self.seed + 100))

    def init():
      return tf.keras.initializers.GlorotUniform(seed=None if self.seed is None else next(seeds))

    def dropout():
      return tf.keras.layers.Dropout(self.dropout,
                                     seed=None if self.seed is None else next(seeds))

    self.attention_norm = tf.keras.layers.LayerNormalization(epsilon=self.epsilon,
                                                             name="attention_norm")
    self.query = tf.keras.layers.Dense(dim, kernel_initializer=init(), name="query")
    self.key = tf.keras.layers.Dense(dim, kernel_initializer=init(), name="key")
    self.value = tf.keras.layers.Dense(dim, kernel_initializer=init(), name="value")
    self.output_projection = tf.keras.layers.Dense(dim, kernel_initializer=init(),
                                                   name="output_projection")
    self.feed_forward_norm = tf.keras.layers.LayerNormalization(epsilon=self.epsilon,
                                                                name="feed_forward_norm")
    self.hidden = tf.keras.layers.Dense(self.feed_forward_dim or dim, activation="relu",
                                        kernel_initializer=init(), name="hidden")
    self.feed_forward_output = tf.keras.layers.Dense(dim, kernel_initializer=init(),
                                                     name="feed_forward_output")
    self.attention_dropout = dropout()
    self.output_dropout = dropout()
    self.hidden_dropout = dropout()
    self.feed_forward_dropout = dropout()
    # b_h[bucket]: zero at first, so training starts from plain causal attention.
    self.time_bias = (self.add_weight(name="time_bias", shape=[self.num_time_buckets,
                                                                self.num_heads],
                                      initializer="zeros")
                      if self.use_time_bias else None)
    super().build(input_shape)

  def call(self, inputs, age_buckets=None, padding_mask=None, training=None):
    x = tf.convert_to_tensor(inputs)
    batch, length, dim = tf.shape(x)[0], tf.shape(x)[1], x.shape[-1]
    heads = self.num_heads
    head_dim = dim // heads
    if padding_mask is None:
      padding_mask = tf.ones([batch, length], tf.bool)
    padding_mask = tf.cast(padding_mask, tf.bool)

    def split_heads(t):  # [B, L, D] -> [B, L, heads, D / heads]
      return tf.reshape(t, [batch, length, heads, head_dim])

    h = self.attention_norm(x)
    q, k, v = (split_heads(layer(h)) for layer in (self.query, self.key, self.value))
    logits = tf.einsum("bqhd,bkhd->bhqk", q, k) / tf.sqrt(tf.cast(head_dim, x.dtype))
    if self.time_bias is not None and age_buckets is not None:
      bias = tf.gather(self.time_bias, tf.cast(age_buckets, tf.int32))  # [B, L, L, heads]
      logits += tf.cast(tf.transpose(bias, [0, 3, 1, 2]), logits.dtype)
    position = tf.range(length)
    causal = position[None, :] <= position[:, None]                     # [L(q), L(k)]
    itself = position[None, :] == position[:, None]
    visible = causal[None] & (padding_mask[:, None, :] | itself[None])  # [B, L, L]
    logits = tf.where(visible[:, None], logits, tf.cast(_MASKED, logits.dtype))
    weights = self.attention_dropout(tf.nn.softmax(logits, axis=-1), training=training)
    attended = tf.reshape(tf.einsum("bhqk,bkhd->bqhd", weights, v), [batch, length, dim])
    x = x + self.output_dropout(self.output_projection(attended), training=training)
    h = self.hidden_dropout(self.hidden(self.feed_forward_norm(x)), training=training)
    x = x + self.feed_forward_dropout(self.feed_forward_output(h), training=training)
    return x * tf.cast(padding_mask, x.dtype)[..., None]

  # === Config ===
  def get_config(self):
    config = super().get_config()
    config.update(num_heads=self.num_heads, num_time_buckets=self.num_time_buckets,
                  use_time_bias=self.use_time_bias, dropout=self.dropout,
                  feed_forward_dim=self.feed_forward_dim, epsilon=self.epsilon, seed=self.seed)
    return config
