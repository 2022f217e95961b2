"""Time-aware causal self-attention over each user's history (SASRec with TiSASRec-style time).

SASRec (Kang & McAuley, ICDM 2018) reads a user's last L items, oldest first, with causal
self-attention; the output at position t predicts item t+1 with a dot product against the same
item table that embeds the inputs. TiSASRec (Li, Wang & McAuley, WSDM 2020) adds the time
between events. Here, with e_i the item states [I, D], s_1..s_L the history (left padding) and
now_t the reference time of position t (the time of the event it predicts, event t+1; `now` for
the last position at query time):

  e_i   = E_id[i] + text_i W_text + state_i W_state      (the last two when item_data has them)
  x_t   = sqrt(D) e_{s_t} + P_t                            (P: learned position embedding)
  h     = Blocks(x)       `tfgrec.layers.CausalTimeAttention`: position t attends to j <= t,
                          with a per-head logit bias b_h[bucket(now_t - time_j)] (age of event j)
  q_t   = LayerNorm(h_t) + T[bucket(now_t - time_t)]      (time since the last event)
  score_i(history, now) = q_L . e_i

bucket: `tfgrec.layers.causal_time_attention.time_bucket`, log-scale from one second to three
years, bucket 0 for unknown times (NO_TIME), so logs without time run (every gap unknown, or 0).

Training (`fit`): each user's events sorted by time (oldest first, ties in input order; a
repeated item keeps its latest event, as `base.history_ranks` does), cut into windows of L + 1
events (the last window ends at the user's latest event, the others every `window_stride`
events before it), and every position predicts the next item with the softmax loss of
`tfrs.tasks.Retrieval`: exact over the whole catalog up to `full_softmax_max_items` items, above
that over the batch's positives with the logQ correction. Padding positions weigh 0.

Inductive: nothing is stored per user; the scores of any history come from the item table and
the encoder weights, so a SavedModel of the source serves new users as it serves known ones.
"""
import logging
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from tfgrec.layers import causal_time_attention
from tfgrec.sources import base
import tensorflow_recommenders as tfrs

tf = base.tf

logger = logging.getLogger(__name__)

TEXT_EMBEDDING = "text_embedding"
ITEM_STATES = "item_states"
time_bucket = causal_time_attention.time_bucket
NUM_TIME_BUCKETS = causal_time_attention.NUM_TIME_BUCKETS
# Time of an unusable history entry while sorting: older than every event, NO_TIME included.
_UNUSABLE_TIME = -(2 ** 62)
# The saved state's name of the encoder's k-th weight (`get_weights()` order).
_ENCODER_WEIGHT = "encoder_{:03d}"


class SequenceSource(base.CandidateSource):
  """SASRec with time buckets: the next item after the user's last L events (module docstring).

    source = SequenceSource(max_len=50, epochs=15).fit(user, item, timestamp, num_items=I)
    source.scores(history, history_time, now)["scores"]      # [B, I]

  Reads ``item_data["text_embedding"]`` ([I, T] float, frozen; a learned projection is added to
  each item's state) and ``item_data["item_states"]`` ([I, D'] float, e.g. graph-tower
  embeddings, frozen, projected the same way) when given.

  Defaults: a fit on the embedded MovieLens (80k training events, 9,066 items, exact softmax)
  takes about 2 minutes on 2 CPU cores (about 9 s an epoch); the full softmax costs
  O(positions x items) per epoch. 15 epochs is the best of 6, 10, 15, 20 and 30 by validation
  NDCG@20 there (docs/decisions/sequence-source-training.md).

  Init args:
    max_len: L, the most recent events read (and the training window, L + 1 events).
    dim: D, the width of item states and of the encoder (a multiple of num_heads).
    num_heads: attention heads per block.
    num_blocks: attention blocks.
    dropout: rate on the input, the attention and the feed-forward networks (training only).
    epochs: passes over the training windows.
    batch_size: windows per training step.
    learning_rate: of Adam.
    window_stride: events between the ends of two windows of a user (None: L, so every event
      is predicted once; smaller strides repeat events with a longer context).
    time_bias: add the per-head age-bucket bias to the attention logits.
    time_since_last: add the embedding of the time-since-last-event bucket to the query.
    full_softmax_max_items: largest catalog trained with the exact softmax over every item;
      above it, in-batch negatives with the logQ correction.
    seed: seeds the initializers, the dropout and the window order (fit is deterministic).
    verbose: log one line per epoch (Keras) during fit.
    name: the module name.
  """

  def __init__(self, *, max_len: int = 50, dim: int = 64, num_heads: int = 2,
               num_blocks: int = 2, dropout: float = 0.2, epochs: int = 15,
               batch_size: int = 16, learning_rate: float = 1e-3,
               window_stride: Optional[int] = None, time_bias: bool = True,
               time_since_last: bool = True, full_softmax_max_items: int = 50_000,
               seed: int = 0, verbose: bool = True, name: str = "sequence"):
    super().__init__(name=name)
    for key, value in (("max_len", max_len), ("dim", dim), ("num_heads", num_heads),
                       ("num_blocks", num_blocks), ("epochs", epochs),
                       ("batch_size", batch_size)):
      if int(value) != value or int(value) <= 0:
        raise ValueError(f"{key} must be an integer > 0, got {value}")
    if dim % num_heads:
      raise ValueError(f"dim must be a multiple of num_heads={num_heads}, got {dim}")
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if not learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if window_stride is not None and not 1 <= window_stride <= max_len:
      raise ValueError(f"window_stride must be in [1, max_len={max_len}] or None, got "
                       f"{window_stride}")
    if int(full_softmax_max_items) < 0:
      raise ValueError(f"full_softmax_max_items must be >= 0, got {full_softmax_max_items}")
    self.max_len = int(max_len)
    self.dim = int(dim)
    self.num_heads = int(num_heads)
    self.num_blocks = int(num_blocks)
    self.dropout = float(dropout)
    self.epochs = int(epochs)
    self.batch_size = int(batch_size)
    self.learning_rate = float(learning_rate)
    self.window_stride = int(window_stride or max_len)
    self.time_bias = bool(time_bias)
    self.time_since_last = bool(time_since_last)
    self.full_softmax_max_items = int(full_softmax_max_items)
    self.seed = int(seed)
    self.verbose = bool(verbose)

  # === Fit ===
  def _fit(self, events: base.Events, item_data: Dict[str, np.ndarray]) -> None:
    windows, times = training_windows(events, self.max_len, self.window_stride)
    text = item_data.get(TEXT_EMBEDDING)
    states = item_data.get(ITEM_STATES)
    for key, value in ((TEXT_EMBEDDING, text), (ITEM_STATES, states)):
      if value is not None and np.ndim(value) != 2:
        raise ValueError(f"item_data[{key!r}] must be [num_items, width], got shape "
                         f"{np.shape(value)}")
    items = _ItemTable(events.num_items, self.dim, text=text, states=states, seed=self.seed)
    encoder = self._build_encoder()
    target = windows[:, 1:][windows[:, :-1] >= 0]
    frequency = np.bincount(target, minlength=events.num_items) / max(len(target), 1)
    trainer = _Trainer(items, encoder,
                       full_softmax=events.num_items <= self.full_softmax_max_items,
                       frequency=frequency)
    # Clipping the global gradient norm keeps the full-softmax loss from spiking between epochs.
    trainer.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate, global_clipnorm=1.0))
    if len(windows):
      data = (tf.data.Dataset.from_tensor_slices({"item": windows, "time": times})
              .shuffle(len(windows), seed=self.seed, reshuffle_each_iteration=True)
              .batch(self.batch_size))
      logger.info("%s: %d windows of %d events, %d training positions", self.name,
                  len(windows), self.max_len + 1, len(target))
      trainer.fit(data, epochs=self.epochs, verbose=2 if self.verbose else 0)
    else:
      logger.warning("%s: no user has two events; the encoder stays untrained", self.name)
    arrays = {_ENCODER_WEIGHT.format(k): w for k, w in enumerate(encoder.get_weights())}
    arrays["item_embeddings"] = items.table().numpy()
    self._set_state(arrays, {"encoder_variables": [v.name for v in encoder.weights]})

  def _build_encoder(self) -> "_Encoder":
    """A new encoder of this config, its weights built (eagerly)."""
    encoder = _Encoder(max_len=self.max_len, dim=self.dim, num_heads=self.num_heads,
                       num_blocks=self.num_blocks, dropout=self.dropout,
                       time_bias=self.time_bias, time_since_last=self.time_since_last,
                       seed=self.seed + 1000)
    empty = tf.fill([1, self.max_len], tf.constant(base.NO_TIME, tf.int64))
    encoder(tf.zeros([1, self.max_len, self.dim]), empty, empty,
            tf.zeros([1, self.max_len], tf.bool))
    return encoder

  # === Config and state ===
  def get_config(self) -> Dict[str, Any]:
    return {"max_len": self.max_len, "dim": self.dim, "num_heads": self.num_heads,
            "num_blocks": self.num_blocks, "dropout": self.dropout, "epochs": self.epochs,
            "batch_size": self.batch_size, "learning_rate": self.learning_rate,
            "window_stride": self.window_stride, "time_bias": self.time_bias,
            "time_since_last": self.time_since_last,
            "full_softmax_max_items": self.full_softmax_max_items, "seed": self.seed,
            "verbose": self.verbose, "name": self.name}

  def _get_state(self):
    encoder = self._holder.encoder
    arrays = {_ENCODER_WEIGHT.format(k): w for k, w in enumerate(encoder.get_weights())}
    arrays["item_embeddings"] = self.item_embeddings.numpy()
    return arrays, {"encoder_variables": [v.name for v in encoder.weights]}

  def _set_state(self, arrays, state):
    """Arrays: "item_embeddings" [I, D] (the item table, side data included) and the encoder's
    weights in `get_weights()` order ("encoder_000", ...); state["encoder_variables"] their
    names. The encoder is rebuilt from the config and its weights set."""
    encoder = self._build_encoder()
    names = state["encoder_variables"]
    if len(names) != len(encoder.weights):
      raise ValueError(f"{self.name}: {len(names)} saved encoder weights, the config builds "
                       f"{len(encoder.weights)} ({[v.name for v in encoder.weights]})")
    encoder.set_weights([arrays[_ENCODER_WEIGHT.format(k)] for k in range(len(names))])
    self.item_embeddings = tf.Variable(np.asarray(arrays["item_embeddings"], np.float32),
                                       trainable=False, name="item_embeddings")
    # The encoder is kept out of tf.Module tracking (a plain holder) and its variables are
    # tracked instead: a SavedModel holds the weights and the traced `scores`, not Keras'
    # own serialization of every layer.
    self._holder = _Holder(encoder)
    self.encoder_variables = list(encoder.variables)

  # === TF path ===
  def encode(self, item, time, reference, training: bool = False) -> tf.Tensor:
    """[B, L, D] query vector of every position of oldest-first sequences (causal).

    Args:
      item: [B, L] int32 items, oldest first, -1 padding (on the left).
      time: [B, L] int64 their times (NO_TIME where unknown).
      reference: [B, L] int64 the reference time of each position (the time of the event it
        predicts).
      training: applies dropout.
    """
    self._check_fitted()
    item = tf.convert_to_tensor(item, tf.int32)
    valid = item >= 0
    states = tf.gather(base.read_table(self.item_embeddings), tf.maximum(item, 0))
    return self._holder.encoder(states, tf.convert_to_tensor(time, tf.int64),
                                tf.convert_to_tensor(reference, tf.int64), valid,
                                training=training)

  def _scores(self, history, history_time, now):
    item, time, reference = last_events(history, history_time, now, self.max_len)
    query = self.encode(item, time, reference)[:, -1]                     # [B, D]
    return tf.matmul(query, self.item_embeddings, transpose_b=True)

  def _score_numpy(self, history, history_time, now):
    return self.scores(tf.constant(history, tf.int32), tf.constant(history_time, tf.int64),
                       tf.constant(now, tf.int64))["scores"].numpy()


def last_events(history, history_time, now, max_len: int):
  """The usable history as an oldest-first sequence of its `max_len` latest events, stock TF ops.

  Usable entries are those `base.history_ranks` keeps (item >= 0, time <= now, the latest event
  of a repeated item).

  Args:
    history: [B, H] int32 items (any order), -1 padding.
    history_time: [B, H] int64 their times.
    now: [B] int64 reference times.
    max_len: L.

  Returns:
    (item [B, L] int32, time [B, L] int64, reference [B, L] int64): oldest first, left padding
    (item -1, time NO_TIME); reference[:, t] = time[:, t + 1], and `now` for the last position.
  """
  history = tf.convert_to_tensor(history, tf.int32)
  history_time = tf.convert_to_tensor(history_time, tf.int64)
  now = tf.convert_to_tensor(now, tf.int64)
  valid = (history >= 0) & (history_time <= now[:, None])
  # Newest first, unusable entries last; history_ranks keeps rows already in that order.
  key = tf.where(valid, history_time, _UNUSABLE_TIME)
  order = tf.argsort(key, axis=1, direction="DESCENDING", stable=True)
  history = tf.gather(tf.where(valid, history, -1), order, batch_dims=1)
  time = tf.gather(key, order, batch_dims=1)
  item, _, keep = base.history_ranks(history, time, now)
  # Kept entries first (still newest first), then the L latest, then oldest first.
  kept_first = tf.argsort(tf.cast(tf.logical_not(keep), tf.int32), axis=1, stable=True)
  item = tf.where(keep, item, -1)
  time = tf.where(keep, time, base.NO_TIME)
  item = tf.gather(item, kept_first, batch_dims=1)
  time = tf.gather(time, kept_first, batch_dims=1)
  item = tf.pad(item, [[0, 0], [0, max_len]], constant_values=-1)[:, :max_len]
  time = tf.pad(time, [[0, 0], [0, max_len]], constant_values=base.NO_TIME)[:, :max_len]
  item, time = tf.reverse(item, [1]), tf.reverse(time, [1])
  reference = tf.concat([time[:, 1:], now[:, None]], axis=1)
  return item, time, reference


def training_windows(events: base.Events, max_len: int, stride: int
                     ) -> Tuple[np.ndarray, np.ndarray]:
  """Each user's events cut into windows of L + 1 (see the module docstring).

  >>> e = base.Events(np.array([0, 0, 0, 0, 1]), np.array([5, 6, 5, 7, 1]),
  ...                 np.array([1, 2, 3, 4, 9]), num_items=8)
  >>> training_windows(e, 2, 2)[0].tolist()  # User 0: 6, 5, 7 (5 at its latest event).
  [[6, 5, 7]]

  Args:
    events: the fit events.
    max_len: L.
    stride: events between the ends of two consecutive windows of a user.

  Returns:
    (item [W, L + 1] int32, time [W, L + 1] int64), left padding (-1, NO_TIME); users with
    fewer than two events give no window.
  """
  sequences = user_sequences(events)
  items: List[np.ndarray] = []
  times: List[np.ndarray] = []
  width = max_len + 1
  for item, time in sequences:
    n = len(item)
    if n < 2:
      continue
    end = n
    while True:
      start = max(end - width, 0)
      pad = width - (end - start)
      items.append(np.concatenate([np.full(pad, -1), item[start:end]]))
      times.append(np.concatenate([np.full(pad, base.NO_TIME), time[start:end]]))
      if start == 0:
        break
      end -= stride
      if end < 2:
        break
  if not items:
    return np.zeros([0, width], np.int32), np.zeros([0, width], np.int64)
  return np.stack(items).astype(np.int32), np.stack(times).astype(np.int64)


def user_sequences(events: base.Events) -> List[Tuple[np.ndarray, np.ndarray]]:
  """Per user (ascending index): (item [n], time [n]) oldest first, ties in input order, each
  repeated item once, at its latest event (the last one in that order)."""
  order = np.lexsort((np.arange(len(events.user)), events.timestamp, events.user))
  user, item = events.user[order], events.item[order]
  key = user * np.int64(events.num_items) + item
  # The last occurrence of each (user, item) in `order`.
  _, last = np.unique(key[::-1], return_index=True)
  keep = np.zeros(len(order), bool)
  keep[len(order) - 1 - last] = True
  order = order[keep]
  user, item, time = events.user[order], events.item[order], events.timestamp[order]
  bounds = np.flatnonzero(np.diff(user)) + 1
  return [(i, t) for i, t in zip(np.split(item, bounds), np.split(time, bounds)) if len(i)]


# === Keras pieces (training) ===
class _Holder:
  """A plain object (not tracked by tf.Module) holding the Keras encoder."""

  def __init__(self, encoder):
    self.encoder = encoder


class _ItemTable(tf.keras.layers.Layer):
  """The item states e_i = E_id[i] + text_i W_text + state_i W_state, [I, D] (`table()`)."""

  def __init__(self, num_items: int, dim: int, *, text: Optional[np.ndarray],
               states: Optional[np.ndarray], seed: int):
    super().__init__(name="item_table")
    self.ids = self.add_weight(
        name="id_embedding", shape=[num_items, dim],
        initializer=tf.keras.initializers.TruncatedNormal(stddev=dim ** -0.5, seed=seed))
    self.side = []
    for k, (name, value) in enumerate(((TEXT_EMBEDDING, text), (ITEM_STATES, states))):
      if value is None:
        continue
      value = tf.constant(np.asarray(value, np.float32))
      kernel = self.add_weight(
          name=f"{name}_projection", shape=[value.shape[1], dim],
          initializer=tf.keras.initializers.GlorotUniform(seed=seed + 1 + k))
      self.side.append((value, kernel))

  def table(self) -> tf.Tensor:
    out = tf.convert_to_tensor(self.ids)
    for value, kernel in self.side:
      out += tf.matmul(value, kernel)
    return out


class _Encoder(tf.keras.layers.Layer):
  """Item states of a sequence -> query vectors [B, L, D] (the module docstring's x, h, q)."""

  def __init__(self, *, max_len, dim, num_heads, num_blocks, dropout, time_bias,
               time_since_last, seed):
    super().__init__(name="encoder")
    self.dim = dim
    self.position = tf.keras.layers.Embedding(
        max_len, dim, embeddings_initializer=tf.keras.initializers.TruncatedNormal(
            stddev=0.02, seed=seed), name="position")
    self.input_dropout = tf.keras.layers.Dropout(dropout, seed=seed + 1)
    self.blocks = [causal_time_attention.CausalTimeAttention(
        num_heads=num_heads, use_time_bias=time_bias, dropout=dropout,
        seed=seed + 100 * (b + 1), name=f"block_{b}") for b in range(num_blocks)]
    self.final_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")
    self.since_last = tf.keras.layers.Embedding(
        NUM_TIME_BUCKETS, dim, embeddings_initializer="zeros",
        name="since_last") if time_since_last else None

  def call(self, states, time, reference, valid, training=None):
    length = tf.shape(states)[1]
    x = states * (self.dim ** 0.5) + self.position(tf.range(length))[None]
    x = self.input_dropout(x, training=training) * tf.cast(valid, x.dtype)[..., None]
    ages = time_bucket(reference[:, :, None], time[:, None, :])   # [B, L(query), L(key)]
    for block in self.blocks:
      x = block(x, age_buckets=ages, padding_mask=valid, training=training)
    x = self.final_norm(x)
    if self.since_last is not None:
      x += self.since_last(time_bucket(reference, time))
    return x


class _Trainer(tfrs.Model):
  """Every position of a window predicts the next item (`tfrs.tasks.Retrieval`)."""

  def __init__(self, items: _ItemTable, encoder: _Encoder, *, full_softmax: bool,
               frequency: np.ndarray):
    super().__init__()
    self.items = items
    self.encoder = encoder
    self.full_softmax = full_softmax
    self.frequency = tf.constant(np.maximum(frequency, 1e-12), tf.float32)
    self.task = tfrs.tasks.Retrieval(remove_accidental_hits=True)

  def compute_loss(self, inputs, training=False):
    item, time = inputs["item"], inputs["time"]                  # [B, L + 1]
    table = self.items.table()                                   # [I, D]
    source, target = item[:, :-1], item[:, 1:]
    valid = source >= 0  # With left padding, the target of a real event is real too.
    out = self.encoder(tf.gather(table, tf.maximum(source, 0)), time[:, :-1], time[:, 1:], valid,
                       training=training)
    query = tf.reshape(out, [-1, out.shape[-1]])                 # [N, D], N = B L
    positive = tf.reshape(tf.maximum(target, 0), [-1])
    weight = tf.reshape(tf.cast(valid, tf.float32), [-1])
    positive_states = tf.gather(table, positive)
    n = tf.shape(query)[0]
    own = tf.range(n)[:, None] == tf.range(n)[None, :]          # [N, N]
    if self.full_softmax:
      # Exact softmax over the catalog. Retrieval's label of query r is candidate column r, so
      # the candidates are [the N positives, the whole table]: score_mask hides the other
      # queries' positives, and remove_accidental_hits hides the table's copy of the query's
      # own positive; what is left is the positive once and every other item once.
      num_items = tf.shape(table)[0]
      loss = self.task(
          query, tf.concat([positive_states, table], axis=0), sample_weight=weight,
          candidate_ids=tf.concat([positive, tf.range(num_items)], axis=0),
          score_mask=tf.concat([own, tf.ones([n, num_items], tf.bool)], axis=1),
          compute_metrics=False, compute_batch_metrics=False)
    else:
      # In-batch negatives (the other real positions' positives), logQ-corrected by the item
      # frequency, accidental hits removed.
      loss = self.task(
          query, positive_states, sample_weight=weight,
          candidate_sampling_probability=tf.gather(self.frequency, positive),
          candidate_ids=positive, score_mask=own | (weight > 0)[None, :],
          compute_metrics=False, compute_batch_metrics=False)
    return loss / tf.maximum(tf.reduce_sum(weight), 1.0)  # Retrieval sums; mean over positions.
