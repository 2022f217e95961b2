"""The sequence source (SASRec with time buckets) and its attention layer: causality, time
buckets, a planted next-item pattern, no future events, SavedModel and Keras round trips."""
import numpy as np
import pytest

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec import layers
from tfgrec.layers import causal_time_attention
from tfgrec.sources import base, sequence

tf = base.tf
MINUTE, HOUR, DAY = 60, 3600, 86_400
NUM_ITEMS = 8
L = 6
T0 = 1_000_000


def cycle_events(seed=0, users=48):
  """Every user walks the cycle 0 -> 1 -> ... -> 7 -> 0 from a random item, 4 to 8 steps (no
  repeat), one event every 30 s, 2 h or 2 days (so several time buckets are trained)."""
  rng = np.random.default_rng(seed)
  user, item, time = [], [], []
  for u in range(users):
    start, steps = rng.integers(0, NUM_ITEMS), rng.integers(4, NUM_ITEMS + 1)
    gap = (30, 2 * HOUR, 2 * DAY)[u % 3]
    for k in range(steps):
      user.append(u)
      item.append((start + k) % NUM_ITEMS)
      time.append(T0 + k * gap)
  return np.array(user), np.array(item), np.array(time, np.int64)


def tiny_source(**kwargs):
  settings = dict(max_len=L, dim=16, num_heads=2, num_blocks=1, dropout=0.0, epochs=25,
                  batch_size=16, learning_rate=1e-2, verbose=False)
  settings.update(kwargs)
  return sequence.SequenceSource(**settings)


@pytest.fixture(scope="module")
def cycle_source():
  return tiny_source().fit(*cycle_events(), num_items=NUM_ITEMS)


def tf_scores(source, history, history_time, now):
  return source.scores(tf.constant(history, tf.int32), tf.constant(history_time, tf.int64),
                       tf.constant(now, tf.int64))["scores"].numpy()


def cycle_queries(gap=2 * HOUR):
  """History ending at item k (newest first: k, k - 1, k - 2) for every k, `now` one gap on."""
  history = np.array([[k, (k - 1) % NUM_ITEMS, (k - 2) % NUM_ITEMS] for k in range(NUM_ITEMS)],
                     np.int32)
  history_time = np.tile(np.array([[T0 + 2 * gap, T0 + gap, T0]], np.int64), [NUM_ITEMS, 1])
  return history, history_time, np.full(NUM_ITEMS, T0 + 3 * gap, np.int64)


# === Time buckets ===
def test_time_buckets_hand_checked():
  bucket = causal_time_attention.time_bucket
  gaps = [0, 1, 59, 60, 599, 600, HOUR - 1, HOUR, 6 * HOUR, DAY - 1, DAY, 3 * DAY, 7 * DAY,
          30 * DAY, 90 * DAY, 365 * DAY, 3 * 365 * DAY - 1, 3 * 365 * DAY, 50 * 365 * DAY]
  # 0 s: same second (1); under a minute (2); under 10 min (3); under an hour (4); under 6 h (5);
  # under a day (6); under 3 days (7); under a week (8); under 30 days (9); under 90 days (10);
  # under a year (11); under 3 years (12); older (13).
  expected = [1, 2, 2, 3, 3, 4, 4, 5, 6, 6, 7, 8, 9, 10, 11, 12, 12, 13, 13]
  now = T0 + 100 * 365 * DAY
  assert bucket(np.full(len(gaps), now), now - np.array(gaps)).numpy().tolist() == expected
  # Unknown: an event without time, a reference without time, an event after the reference.
  assert bucket([now, -1, now], [-1, now, now + 1]).numpy().tolist() == [0, 0, 0]
  assert causal_time_attention.NUM_TIME_BUCKETS == 14


# === Causality ===
def test_encoder_is_causal(cycle_source):
  item = np.array([[-1, 0, 1, 2, 3, 4]], np.int32)
  time = np.array([[-1, T0, T0 + 10, T0 + 20, T0 + 30, T0 + 40]], np.int64)
  reference = np.full_like(time, T0 + 50)  # Held fixed: only items and their times change.
  out = cycle_source.encode(item, time, reference).numpy()[0]
  later = item.copy(), time.copy()
  later[0][0, 4], later[1][0, 4] = 7, T0 + 35
  out_later = cycle_source.encode(*later, reference).numpy()[0]
  np.testing.assert_allclose(out_later[:4], out[:4], atol=1e-6)
  assert not np.allclose(out_later[4:], out[4:], atol=1e-4)
  earlier = item.copy(), time.copy()
  earlier[0][0, 1], earlier[1][0, 1] = 6, T0 - DAY
  out_earlier = cycle_source.encode(*earlier, reference).numpy()[0]
  for t in range(1, L):
    assert not np.allclose(out_earlier[t], out[t], atol=1e-4), t


def test_layer_is_causal_and_ignores_padding_keys():
  block = layers.CausalTimeAttention(num_heads=2, seed=3)
  x = tf.random.stateless_normal([1, 5, 4], seed=[1, 2])
  valid = tf.constant([[False, True, True, True, True]])
  ages = tf.zeros([1, 5, 5], tf.int32)
  out = block(x, age_buckets=ages, padding_mask=valid).numpy()
  assert (out[0, 0] == 0).all()  # Padding outputs zeros.
  # Changing the padding state, or position 3, leaves positions 1 and 2 unchanged.
  x2 = x.numpy()
  x2[0, 0] += 5.0
  x2[0, 3] -= 5.0
  out2 = block(tf.constant(x2), age_buckets=ages, padding_mask=valid).numpy()
  np.testing.assert_allclose(out2[0, 1:3], out[0, 1:3], atol=1e-6)
  assert not np.allclose(out2[0, 3:], out[0, 3:], atol=1e-4)
  # The time bias changes the outputs where a query sees two or more keys.
  block.time_bias.assign(tf.reshape(tf.range(28, dtype=tf.float32), [14, 2]))
  biased = block(x, age_buckets=ages + tf.eye(5, dtype=tf.int32) * 3,
                 padding_mask=valid).numpy()
  np.testing.assert_allclose(biased[0, 1], out[0, 1], atol=1e-6)  # Sees only itself.
  assert not np.allclose(biased[0, 2:], out[0, 2:], atol=1e-4)


# === What the source learns and reads ===
def test_learns_the_planted_cycle(cycle_source):
  scores = tf_scores(cycle_source, *cycle_queries())
  assert scores.argmax(axis=1).tolist() == [(k + 1) % NUM_ITEMS for k in range(NUM_ITEMS)]
  np.testing.assert_allclose(cycle_source.score_numpy(*cycle_queries()), scores, rtol=1e-6)


def test_times_change_the_scores_and_logs_without_time_run(cycle_source):
  # Same items, events a minute vs. two days apart: the age and time-since-last buckets differ.
  minutes = tf_scores(cycle_source, *cycle_queries(gap=30))
  days = tf_scores(cycle_source, *cycle_queries(gap=2 * DAY))
  assert not np.allclose(minutes, days, atol=1e-3)
  # Only the time since the last event changes (now two days later instead of 2 h).
  history, history_time, now = cycle_queries()
  later = tf_scores(cycle_source, history, history_time, now + 2 * DAY - 2 * HOUR)
  assert not np.allclose(later, tf_scores(cycle_source, history, history_time, now), atol=1e-3)
  # Every timestamp equal (all gaps 0).
  history, history_time, now = cycle_queries()
  assert np.isfinite(tf_scores(cycle_source, history, np.full_like(history_time, T0),
                               np.full_like(now, T0))).all()
  # A log without time: fit and queried with every timestamp NO_TIME (every bucket unknown).
  user, item, _ = cycle_events()
  no_time = np.full(len(user), base.NO_TIME)
  source = tiny_source(epochs=2).fit(user, item, no_time, num_items=NUM_ITEMS)
  assert np.isfinite(tf_scores(source, history, np.full_like(history_time, base.NO_TIME),
                               np.full_like(now, base.NO_TIME))).all()


def test_history_after_now_repeats_and_empty_histories(cycle_source):
  history, history_time, now = cycle_queries()
  expected = tf_scores(cycle_source, history, history_time, now)
  # Later entries (ignored), an older repeat of the newest item (ignored) and padding.
  extra = np.tile(np.array([[5, 3, -1]], np.int32), [NUM_ITEMS, 1])
  extra[:, 1] = history[:, 0]
  extra_time = np.tile(np.array([[0, 0, 7]], np.int64), [NUM_ITEMS, 1])
  extra_time[:, 0] = now + 1
  extra_time[:, 1] = T0 - DAY
  mixed = np.concatenate([extra, history], axis=1)[:, [0, 3, 1, 4, 2, 5]]
  mixed_time = np.concatenate([extra_time, history_time], axis=1)[:, [0, 3, 1, 4, 2, 5]]
  np.testing.assert_allclose(tf_scores(cycle_source, mixed, mixed_time, now), expected,
                             rtol=1e-5, atol=1e-6)
  # A history longer than L keeps the L latest events.
  long_history = np.array([[k % NUM_ITEMS for k in range(12, 0, -1)]], np.int32)
  long_time = T0 + np.arange(12, 0, -1, dtype=np.int64)[None] * HOUR
  np.testing.assert_allclose(
      tf_scores(cycle_source, long_history, long_time, [T0 + 13 * HOUR]),
      tf_scores(cycle_source, long_history[:, :L], long_time[:, :L], [T0 + 13 * HOUR]),
      rtol=1e-5, atol=1e-6)
  # No usable history (padding only, or every event after now): finite scores, all equal rows.
  empty = tf_scores(cycle_source, [[-1, -1], [3, 4]], [[0, 0], [T0 + 9, T0 + 9]], [T0, T0])
  assert np.isfinite(empty).all()
  np.testing.assert_allclose(empty[0], empty[1], rtol=1e-6)


def test_last_events_order_and_reference_times():
  item, time, reference = sequence.last_events(
      [[4, 2, 9, 2, -1]], [[30, 20, 99, 10, 5]], [50], max_len=4)
  # Item 9 is after now, the older event of item 2 and the padding are dropped.
  assert item.numpy().tolist() == [[-1, -1, 2, 4]]
  assert time.numpy().tolist() == [[-1, -1, 20, 30]]
  assert reference.numpy().tolist() == [[-1, 20, 30, 50]]


def test_fit_is_deterministic_and_reads_item_data():
  # In-batch negatives with logQ (the catalog is above full_softmax_max_items), dropout, frozen
  # text embeddings and item states with learned projections: two fits give equal scores.
  user, item, time = cycle_events(seed=1, users=12)
  rng = np.random.default_rng(0)
  item_data = {"text_embedding": rng.normal(size=[NUM_ITEMS, 5]).astype(np.float32),
               "item_states": rng.normal(size=[NUM_ITEMS, 3]).astype(np.float32)}
  queries = cycle_queries()
  a, b = (tiny_source(epochs=2, dropout=0.3, full_softmax_max_items=4).fit(
      user, item, time, num_items=NUM_ITEMS, item_data=item_data) for _ in range(2))
  scores = tf_scores(a, *queries)
  assert np.isfinite(scores).all()
  np.testing.assert_array_equal(tf_scores(b, *queries), scores)
  with pytest.raises(ValueError, match=r"must be \[num_items, width\], got shape \(8,\)"):
    tiny_source().fit(user, item, time, num_items=NUM_ITEMS,
                      item_data={"text_embedding": np.zeros(NUM_ITEMS)})


def test_training_windows():
  # One user, events 0..6 oldest first; L = 3, stride 2: windows end at 7, 5, 3 (the last one
  # starts at the first event).
  events = base.Events(np.zeros(7, np.int64), np.arange(7), np.arange(7), num_items=7)
  windows, times = sequence.training_windows(events, 3, 2)
  assert windows.tolist() == [[3, 4, 5, 6], [1, 2, 3, 4], [-1, 0, 1, 2]]
  assert times[-1].tolist() == [base.NO_TIME, 0, 1, 2]
  # Ties keep the input order; a repeated item keeps its latest event.
  events = base.Events(np.zeros(5, np.int64), np.array([5, 6, 4, 5, 7]),
                       np.array([1, 1, 1, 2, 2]), num_items=8)
  assert sequence.training_windows(events, 3, 3)[0].tolist() == [[6, 4, 5, 7]]


# === Round trips ===
def test_saved_model_round_trip(cycle_source, tmp_path):
  history, history_time, now = (tf.constant(a) for a in cycle_queries())
  path = str(tmp_path / "sequence")
  tf.saved_model.save(cycle_source, path, signatures={
      "scores": cycle_source.scores.get_concrete_function(),
      "top_n": cycle_source.top_n.get_concrete_function()})
  loaded = tf.saved_model.load(path)
  expected = cycle_source.scores(history, history_time, now)["scores"].numpy()
  served = loaded.signatures["scores"](history=history, history_time=history_time, now=now)
  np.testing.assert_allclose(served["scores"], expected, rtol=1e-6, atol=1e-6)
  top = loaded.signatures["top_n"](history=history, history_time=history_time, now=now,
                                   n=tf.constant(1))
  assert top["item_ids"].numpy()[:, 0].tolist() == expected.argmax(axis=1).tolist()


def test_layer_config_and_keras_reload(tmp_path):
  block = layers.CausalTimeAttention(num_heads=2, num_time_buckets=5, use_time_bias=True,
                                     dropout=0.1, feed_forward_dim=6, epsilon=1e-5, seed=7,
                                     name="block")
  config = block.get_config()
  assert {k: config[k] for k in ("num_heads", "num_time_buckets", "use_time_bias", "dropout",
                                 "feed_forward_dim", "epsilon", "seed")} == dict(
                                     num_heads=2, num_time_buckets=5, use_time_bias=True,
                                     dropout=0.1, feed_forward_dim=6, epsilon=1e-5, seed=7)
  x = tf.keras.Input([4, 4])
  ages = tf.keras.Input([4, 4], dtype=tf.int32)
  valid = tf.keras.Input([4], dtype=tf.bool)
  model = tf.keras.Model([x, ages, valid], block(x, age_buckets=ages, padding_mask=valid))
  block.time_bias.assign(tf.random.stateless_normal([5, 2], seed=[3, 4]))
  inputs = [tf.random.stateless_normal([2, 4, 4], seed=[5, 6]),
            tf.random.stateless_uniform([2, 4, 4], seed=[7, 8], maxval=5, dtype=tf.int32),
            tf.constant([[False, True, True, True], [True] * 4])]
  expected = model(inputs).numpy()
  again = layers.CausalTimeAttention.from_config(config)
  assert again.get_config() == config
  again(inputs[0], age_buckets=inputs[1], padding_mask=inputs[2])
  again.set_weights(block.get_weights())
  np.testing.assert_allclose(again(inputs[0], age_buckets=inputs[1], padding_mask=inputs[2]),
                             expected, rtol=1e-6)
  path = str(tmp_path / "block.keras")
  model.save(path)
  reloaded = tf.keras.models.load_model(path)
  np.testing.assert_allclose(reloaded(inputs).numpy(), expected, rtol=1e-6)


# === Arguments ===
@pytest.mark.parametrize("make, message", [
    (lambda: sequence.SequenceSource(max_len=0), "max_len must be an integer > 0, got 0"),
    (lambda: sequence.SequenceSource(dim=10, num_heads=4),
     "dim must be a multiple of num_heads=4, got 10"),
    (lambda: sequence.SequenceSource(num_blocks=-1), "num_blocks must be an integer > 0, got -1"),
    (lambda: sequence.SequenceSource(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (lambda: sequence.SequenceSource(epochs=2.5), "epochs must be an integer > 0, got 2.5"),
    (lambda: sequence.SequenceSource(learning_rate=0), "learning_rate must be > 0, got 0"),
    (lambda: sequence.SequenceSource(max_len=5, window_stride=6),
     r"window_stride must be in \[1, max_len=5\] or None, got 6"),
    (lambda: sequence.SequenceSource(full_softmax_max_items=-1),
     "full_softmax_max_items must be >= 0, got -1"),
    (lambda: layers.CausalTimeAttention(num_heads=0), "num_heads must be > 0, got 0"),
    (lambda: layers.CausalTimeAttention(num_heads=2, dropout=-0.1),
     r"dropout must be in \[0, 1\), got -0.1"),
    (lambda: layers.CausalTimeAttention(num_heads=3)(tf.zeros([1, 2, 4])),
     "multiple of num_heads=3, got 4"),
    (lambda: sequence.SequenceSource().score_numpy([[0]], [[0]], [0]), "not fit yet"),
])
def test_bad_arguments_name_the_value(make, message):
  with pytest.raises(ValueError, match=message):
    make()
