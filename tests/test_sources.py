"""Stage-1 candidate sources: hand-checked scores on tiny graphs, TF = NumPy, no future events,
and a SavedModel round trip."""
import numpy as np
import pytest

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec import sources
from tfgrec.sources import base, embedding, graph_filter, time_context

tf = base.tf
DAY = time_context.SECONDS_PER_DAY

# The tiny graph: 3 users, 4 items (item 3 only by u2).
#   u0: items 0, 1      u1: items 1, 2      u2: items 0, 1, 3
# Degrees: D_u = [2, 2, 3], D_i = [2, 3, 1, 1]. P̃[i, j] = sum_u R[u,i] R[u,j] / (deg u sqrt(deg i
# deg j)):
#   P̃[0] = [(1/2 + 1/3)/2, (1/2 + 1/3)/√6, 0, (1/3)/√2]           = [.41667, .34021, 0, .23570]
#   P̃[1] = [(5/6)/√6, (1/2 + 1/2 + 1/3)/3, (1/2)/√3, (1/3)/√3]   = [.34021, .44444, .28868, .19245]
TINY_USER = [0, 0, 1, 1, 2, 2, 2]
TINY_ITEM = [0, 1, 1, 2, 0, 1, 3]
TINY_TIME = [1, 2, 1, 2, 1, 2, 3]
P0 = np.array([5 / 12, 5 / 6 / np.sqrt(6), 0.0, 1 / 3 / np.sqrt(2)])
P1 = np.array([5 / 6 / np.sqrt(6), 4 / 9, 0.5 / np.sqrt(3), 1 / 3 / np.sqrt(3)])

# A query: item 1 at t=20 (rank 0), item 0 at t=10 (rank 1), padding.
HISTORY = np.array([[1, 0, -1]], np.int32)
HISTORY_TIME = np.array([[20, 10, -1]], np.int64)
NOW = np.array([30], np.int64)


def tiny_filter(**kwargs):
  kwargs.setdefault("alpha", 0.0)
  return graph_filter.GraphFilter(**kwargs).fit(TINY_USER, TINY_ITEM, TINY_TIME, num_items=4)


def tf_scores(source, history, history_time, now):
  return source.scores(tf.constant(history, tf.int32), tf.constant(history_time, tf.int64),
                       tf.constant(now, tf.int64))["scores"].numpy()


def test_graph_filter_hand_checked_binary_history():
  # half_life None: x = [1, 1, 0, 0], scores = P̃[0] + P̃[1] = [.75688, .78465, .28868, .42815].
  source = tiny_filter(half_life=None)
  expected = (P0 + P1)[None, :]
  np.testing.assert_allclose(source.score_numpy(HISTORY, HISTORY_TIME, NOW), expected, rtol=1e-5)
  np.testing.assert_allclose(tf_scores(source, HISTORY, HISTORY_TIME, NOW), expected, rtol=1e-5)


def test_graph_filter_hand_checked_recency_weights():
  # half_life 1: item 1 (rank 0) weighs 1, item 0 (rank 1) weighs 0.5:
  # scores = P̃[1] + 0.5 P̃[0] = [.54854, .61454, .28868, .31030]; unseen 3 ranks above 2.
  source = tiny_filter(half_life=1.0)
  expected = (P1 + 0.5 * P0)[None, :]
  np.testing.assert_allclose(expected, [[.54854, .61454, .28868, .31030]], atol=1e-5)
  np.testing.assert_allclose(source.score_numpy(HISTORY, HISTORY_TIME, NOW), expected, rtol=1e-5)
  np.testing.assert_allclose(tf_scores(source, HISTORY, HISTORY_TIME, NOW), expected, rtol=1e-5)
  top = source.top_n(tf.constant(HISTORY), tf.constant(HISTORY_TIME), tf.constant(NOW),
                     tf.constant(2))
  assert top["item_ids"].numpy().tolist() == [[1, 0]]


def test_item_item_sources_leave_out_negligible_history():
  # half_life 1: the entry of rank r weighs 0.5 ** r; rank 14 weighs 6.1e-5 < MIN_RECENCY_WEIGHT
  # (1e-4), rank 13 1.2e-4 >= it. A history of 15 distinct times scores exactly as its newest
  # 14 entries, on both paths, dense and sparse, while the rank-13 entry still counts.
  assert 0.5 ** 14 < base.MIN_RECENCY_WEIGHT <= 0.5 ** 13
  # A random 6-user, 15-item graph; the query holds each item once, item r at rank r.
  user = np.repeat(np.arange(6), 15)
  item = np.tile(np.arange(15), 6)
  keep = np.random.default_rng(0).random(len(user)) < 0.6
  user, item = user[keep], item[keep]
  time = np.arange(len(user))
  items = np.arange(15, dtype=np.int32)[None, :]
  times = np.arange(100, 85, -1, dtype=np.int64)[None, :]   # Newest first, all distinct.
  now = np.array([200], np.int64)
  row, item_kept, weight = (t.numpy() for t in base.weighted_history(
      tf.constant(items), tf.constant(times), tf.constant(now), 1.0))
  assert row.tolist() == [0] * 14 and sorted(item_kept.tolist()) == list(range(14))
  np.testing.assert_allclose(sorted(weight), sorted(0.5 ** np.arange(14)), rtol=1e-6)
  for source in (graph_filter.GraphFilter(half_life=1.0, alpha=0.1, num_singular=3),
                 graph_filter.GraphFilter(half_life=1.0, alpha=0.0, dense_max_items=0,
                                          neighbours=15),
                 graph_filter.Ease(half_life=1.0, l2=1.0),
                 graph_filter.Ease(half_life=1.0, l2=1.0, neighbours=15)):
    source.fit(user, item, time, num_items=15)
    full = tf_scores(source, items, times, now)
    newest = tf_scores(source, items[:, :14], times[:, :14], now)
    np.testing.assert_allclose(full, newest, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(source.score_numpy(items, times, now), full, rtol=1e-5,
                               atol=1e-6)
    fewer = tf_scores(source, items[:, :13], times[:, :13], now)
    assert np.abs(full - fewer).max() > 1e-6  # The rank-13 entry is not dropped.


def test_event_index_counts_many_share_the_upper_bound():
  index = time_context.EventIndex(CTX_ITEM, CTX_TIME, num_items=4)
  items = tf.constant([[0, 1, 2, 3], [2, 1, 0, 0]], tf.int64)
  now = tf.constant([10 * DAY, 5 * DAY], tf.int64)
  week = now - 7 * DAY
  ever, window = index.counts_many(items, [None, week], now)
  beginning = tf.fill([2], tf.constant(time_context.BEGINNING, tf.int64))
  np.testing.assert_array_equal(ever, index.counts(items, beginning, now))
  np.testing.assert_array_equal(window, index.counts(items, week, now))
  # Day 10: every event so far: item 0 three, item 1 two, item 2 one; day 5: item 0 three.
  np.testing.assert_array_equal(ever, [[3, 2, 1, 0], [0, 0, 3, 3]])
  np.testing.assert_array_equal(window, [[0, 2, 1, 0], [0, 0, 3, 3]])


def test_history_entries_after_now_repeats_and_ties():
  source = tiny_filter(half_life=1.0)
  # Item 0 again at t=5 (older repeat: ignored), item 3 at t=40 (after now: ignored) and a tie:
  # item 2 at t=20 ties with item 1, both rank 0; item 0 at t=10 has rank 2 (two newer items).
  history = np.array([[3, 1, 2, 0, 0, -1]], np.int32)
  history_time = np.array([[40, 20, 20, 10, 5, 99]], np.int64)
  p2 = np.array([0.0, 0.5 / np.sqrt(3), 1 / 2, 0.0])  # P̃[2]: only u1 (deg 2) has item 2.
  expected = (P1 + p2 + 0.25 * P0)[None, :]
  np.testing.assert_allclose(source.score_numpy(history, history_time, NOW), expected, rtol=1e-5)
  np.testing.assert_allclose(tf_scores(source, history, history_time, NOW), expected, rtol=1e-5)
  item, rank, keep = base.history_ranks(history, history_time, NOW)
  kept = {int(i): int(r) for i, r, k in zip(item.numpy()[0], rank.numpy()[0], keep.numpy()[0])
          if k}
  assert kept == {1: 0, 2: 0, 0: 2}


def test_events_without_time_weigh_one():
  # Every time NO_TIME (-1): all items tie at rank 0, as with half_life None.
  source = tiny_filter(half_life=1.0)
  no_time = np.full_like(HISTORY_TIME, sources.NO_TIME)
  now = np.array([sources.NO_TIME])
  np.testing.assert_allclose(tf_scores(source, HISTORY, no_time, now), (P0 + P1)[None, :],
                             rtol=1e-5)


def test_low_pass_term_matches_the_gf_cf_formula():
  # scores = x P̃ + alpha x D_i^-1/2 V̄ V̄ᵀ D_i^1/2 with V̄ the top-2 right singular vectors of R̃.
  r = np.zeros([3, 4])
  r[TINY_USER, TINY_ITEM] = 1
  du, di = r.sum(1), r.sum(0)
  r_norm = r / np.sqrt(du)[:, None] / np.sqrt(di)[None, :]
  v = np.linalg.svd(r_norm)[2][:2].T
  x = np.array([0.5, 1.0, 0.0, 0.0])
  expected = x @ r_norm.T @ r_norm + 0.3 * (x / np.sqrt(di)) @ v @ v.T * np.sqrt(di)
  source = tiny_filter(half_life=1.0, alpha=0.3, num_singular=2)
  np.testing.assert_allclose(source.score_numpy(HISTORY, HISTORY_TIME, NOW)[0], expected,
                             rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(tf_scores(source, HISTORY, HISTORY_TIME, NOW)[0], expected,
                             rtol=1e-4, atol=1e-6)


def random_graph(seed=0, users=30, items=25, events=200):
  rng = np.random.default_rng(seed)
  user = rng.integers(0, users, events)
  item = rng.integers(0, items - 3, events)  # The last 3 items are cold.
  time = rng.integers(0, 40, events) * DAY
  time[:10] = sources.NO_TIME
  return user, item, time, items


def random_queries(num_items, seed=1, batch=6, width=9):
  rng = np.random.default_rng(seed)
  history = rng.integers(-1, num_items, [batch, width]).astype(np.int32)
  history_time = rng.integers(0, 12, [batch, width]) * 5 * DAY  # Ties and repeats.
  history_time[0, :3] = sources.NO_TIME
  now = rng.integers(10, 50, batch) * DAY
  return history, history_time, now


def test_dense_and_sparse_filters_give_the_same_top_n():
  user, item, time, num_items = random_graph()
  history, history_time, now = random_queries(num_items)
  kwargs = dict(half_life=3.0, alpha=0.5, num_singular=8)
  dense = graph_filter.GraphFilter(**kwargs).fit(user, item, time, num_items=num_items)
  sparse = graph_filter.GraphFilter(dense_max_items=0, neighbours=num_items, block_items=7,
                                    **kwargs).fit(user, item, time, num_items=num_items)
  assert dense.dense and not sparse.dense
  args = [tf.constant(a) for a in (history, history_time, now)] + [tf.constant(10)]
  top_dense, top_sparse = dense.top_n(*args), sparse.top_n(*args)
  np.testing.assert_allclose(top_dense["scores"], top_sparse["scores"], rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(top_dense["item_ids"], top_sparse["item_ids"])
  np.testing.assert_allclose(dense.score_numpy(history, history_time, now),
                             sparse.score_numpy(history, history_time, now), atol=1e-6)


def test_sparse_filter_keeps_each_items_strongest_neighbours():
  source = graph_filter.GraphFilter(alpha=0.0, dense_max_items=0, neighbours=2).fit(
      TINY_USER, TINY_ITEM, TINY_TIME, num_items=4)
  # P̃[1] = [.34021, .44444, .28868, .19245]: the two strongest are items 1 and 0.
  assert source.neighbour_ids.numpy()[1].tolist() == [1, 0]
  np.testing.assert_allclose(source.neighbour_weights.numpy()[1], [4 / 9, P1[0]], rtol=1e-5)


def all_sources():
  return {
      "graph_filter": graph_filter.GraphFilter(half_life=2.0, alpha=0.3, num_singular=4),
      "graph_filter_sparse": graph_filter.GraphFilter(half_life=2.0, alpha=0.3, num_singular=4,
                                                      dense_max_items=0, neighbours=5),
      "trending": time_context.Trending(windows_days=[3.0, 10.0], popularity_weight=0.01),
      "fresh": time_context.Fresh(half_life_days=5.0),
      "ease": graph_filter.Ease(half_life=2.0, l2=1.0),
  }


@pytest.mark.parametrize("name", sorted(all_sources()))
def test_tf_path_matches_numpy_path(name):
  user, item, time, num_items = random_graph()
  source = all_sources()[name].fit(user, item, time, num_items=num_items)
  history, history_time, now = random_queries(num_items)
  np.testing.assert_allclose(tf_scores(source, history, history_time, now),
                             source.score_numpy(history, history_time, now), rtol=1e-5,
                             atol=1e-6)


# Time context on the tiny graph (days):
#   u0: item 0 @ 1, item 1 @ 9     u1: item 0 @ 2, item 1 @ 10, item 2 @ 10     u2: item 0 @ 3
CTX_USER = [0, 0, 1, 1, 1, 2]
CTX_ITEM = [0, 1, 0, 1, 2, 0]
CTX_TIME = [d * DAY for d in (1, 9, 2, 10, 10, 3)]
NO_HISTORY = (np.full([2, 1], -1, np.int32), np.zeros([2, 1], np.int64))


def test_trending_hand_checked():
  # window 7 days, popularity_weight 0.1; score = n(now - 7d, now] / 7 + 0.1 n(-inf, now].
  # now = day 10: window (3, 10]: item 0 none (day 3 is not > 3), item 1 two, item 2 one:
  #   [0 + .3, 2/7 + .2, 1/7 + .1, 0] = [.3, .48571, .24286, 0]
  # now = day 5: window (-2, 5]: item 0 three: [3/7 + .3, 0, 0, 0] = [.72857, 0, 0, 0]
  source = time_context.Trending(windows_days=[7.0], popularity_weight=0.1).fit(
      CTX_USER, CTX_ITEM, CTX_TIME, num_items=4)
  now = np.array([10 * DAY, 5 * DAY])
  expected = [[.3, 2 / 7 + .2, 1 / 7 + .1, 0], [3 / 7 + .3, 0, 0, 0]]
  np.testing.assert_allclose(tf_scores(source, *NO_HISTORY, now), expected, rtol=1e-5)
  np.testing.assert_allclose(source.score_numpy(*NO_HISTORY, now), expected, rtol=1e-5)


def test_fresh_hand_checked():
  # half-life 1 day; first seen: item 0 day 1, item 1 day 9, item 2 day 10, item 3 from
  # available_time day 4; score = (1 + n(-inf, now]) 0.5 ** age_days.
  # now = day 10: [4 / 2**9, 3 / 2, 2, 1 / 2**6]; now = day 5: [4 / 2**4, 0, 0, 1 / 2].
  source = time_context.Fresh(half_life_days=1.0).fit(
      CTX_USER, CTX_ITEM, CTX_TIME, num_items=4,
      item_data={"available_time": np.array([-1, -1, -1, 4 * DAY])})
  now = np.array([10 * DAY, 5 * DAY])
  expected = [[4 / 2 ** 9, 1.5, 2, 1 / 2 ** 6], [0.25, 0, 0, 0.5]]
  np.testing.assert_allclose(tf_scores(source, *NO_HISTORY, now), expected, rtol=1e-5)
  np.testing.assert_allclose(source.score_numpy(*NO_HISTORY, now), expected, rtol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: time_context.Trending(windows_days=[1.0, 7.0], popularity_weight=0.1),
    lambda: time_context.Fresh(half_life_days=2.0)], ids=["trending", "fresh"])
def test_time_context_never_uses_events_after_now(make):
  now = np.array([5 * DAY, 10 * DAY])
  before = make().fit(CTX_USER, CTX_ITEM, CTX_TIME, num_items=4)
  # Later events: item 3 (new), items 2 and 0 again, from one second after the latest `now`.
  later = make().fit(CTX_USER + [2, 0, 1, 2], CTX_ITEM + [3, 2, 0, 3],
                     CTX_TIME + [10 * DAY + 1, 10 * DAY + 1, 11 * DAY, 30 * DAY], num_items=4)
  for path in (lambda s: tf_scores(s, *NO_HISTORY, now),
               lambda s: s.score_numpy(*NO_HISTORY, now)):
    np.testing.assert_array_equal(path(before), path(later))
  # ... while a later `now` sees them.
  assert not np.array_equal(tf_scores(before, *NO_HISTORY, now + DAY),
                            tf_scores(later, *NO_HISTORY, now + DAY))


@pytest.mark.parametrize("make", [
    lambda: time_context.Trending(windows_days=[1.0], popularity_weight=0.0),
    lambda: time_context.Fresh(half_life_days=1.0)], ids=["trending", "fresh"])
def test_time_context_without_timestamps_is_popularity(make):
  # Events per item: [3, 2, 1, 0]; every event at NO_TIME, and now = NO_TIME.
  source = make().fit(CTX_USER, CTX_ITEM, [sources.NO_TIME] * 6, num_items=4)
  scores = tf_scores(source, *NO_HISTORY, np.full(2, sources.NO_TIME))
  assert np.argsort(-scores[0], kind="stable").tolist() == [0, 1, 2, 3]
  assert scores[0, 0] > scores[0, 1] > scores[0, 2] >= scores[0, 3]


@pytest.mark.parametrize("name", sorted(all_sources()))
def test_saved_model_round_trip(name, tmp_path):
  user, item, time, num_items = random_graph()
  source = all_sources()[name].fit(user, item, time, num_items=num_items)
  history, history_time, now = (tf.constant(a) for a in random_queries(num_items))
  path = str(tmp_path / name)
  tf.saved_model.save(source, path, signatures={
      "scores": source.scores.get_concrete_function(),
      "top_n": source.top_n.get_concrete_function()})
  loaded = tf.saved_model.load(path)
  expected = source.scores(history, history_time, now)["scores"].numpy()
  np.testing.assert_array_equal(loaded.scores(history, history_time, now)["scores"], expected)
  served = loaded.signatures["scores"](history=history, history_time=history_time, now=now)
  np.testing.assert_array_equal(served["scores"], expected)
  top = loaded.signatures["top_n"](history=history, history_time=history_time, now=now,
                                   n=tf.constant(5))
  reference = source.top_n(history, history_time, now, tf.constant(5))
  np.testing.assert_array_equal(top["item_ids"], reference["item_ids"])
  np.testing.assert_array_equal(top["scores"], reference["scores"])


def test_user_scorer_builds_newest_first_histories():
  histories = sources.UserHistories([1, 0, 1, 1], [3, 2, 0, 1], [5, 9, 7, 6], num_users=3,
                                    max_len=2)
  history, history_time = histories.batch(np.array([1, 2, 0]))
  assert history.tolist() == [[0, 1], [-1, -1], [2, -1]]
  assert history_time[0].tolist() == [7, 6]
  assert histories.latest.tolist() == [9, 7, sources.NO_TIME]
  source = tiny_filter(half_life=None)
  score = sources.user_scorer(source, histories)
  np.testing.assert_allclose(score(np.array([1, 0]))[0], P0 + P1, rtol=1e-5)  # Items 0 and 1.
  np.testing.assert_allclose(sources.user_scorer(source, histories, use_tf=True)(np.array([1])),
                             score(np.array([1])), rtol=1e-5)


@pytest.mark.parametrize("make, message", [
    (lambda: graph_filter.GraphFilter(alpha=-1.0), "alpha must be >= 0, got -1.0"),
    (lambda: graph_filter.GraphFilter(half_life=0.0), "half_life must be > 0"),
    (lambda: graph_filter.GraphFilter(neighbours=0), "neighbours must be > 0, got 0"),
    (lambda: time_context.Trending(windows_days=[]), "windows_days must be a non-empty"),
    (lambda: time_context.Fresh(half_life_days=-2), "half_life_days must be > 0, got -2"),
    (lambda: tiny_filter().fit([0], [0], [0], num_items=4), "already fit"),
    (lambda: graph_filter.GraphFilter().fit([0], [4], [0], num_items=4),
     r"item indices must be in \[0, 4\), got \[4, 4\]"),
    (lambda: graph_filter.GraphFilter().fit([0, 1], [0], [0], num_items=4), "one length"),
    (lambda: graph_filter.GraphFilter().score_numpy([[0]], [[0]], [0]), "not fit yet"),
])
def test_bad_arguments_name_the_value(make, message):
  with pytest.raises(ValueError, match=message):
    make()


def test_ease_hand_checked_on_the_tiny_graph():
  """EASE with l2 = 1 on the tiny graph: X [3, 4] (u0: 0, 1; u1: 1, 2; u2: 0, 1, 3), P = (XᵀX +
  I)^-1, B = I - P / diag(P) with a zero diagonal; history item 1 (rank 0, weight 1) and item 0
  (rank 1, half-life 1: weight 1/2) -> scores = [1/2, 1, 0, 0] B."""
  x = np.zeros([3, 4])
  x[TINY_USER, TINY_ITEM] = 1.0
  p = np.linalg.inv(x.T @ x + np.eye(4))
  b = -p / np.diag(p)[None, :]
  np.fill_diagonal(b, 0.0)
  want = np.array([0.5, 1.0, 0.0, 0.0]) @ b
  source = graph_filter.Ease(half_life=1.0, l2=1.0).fit(TINY_USER, TINY_ITEM, TINY_TIME,
                                                        num_items=4)
  np.testing.assert_allclose(source.score_numpy(HISTORY, HISTORY_TIME, NOW)[0], want, rtol=1e-5)
  np.testing.assert_allclose(tf_scores(source, HISTORY, HISTORY_TIME, NOW)[0], want, rtol=1e-5)
  with pytest.raises(ValueError, match="more than dense_max_items=2"):
    graph_filter.Ease(dense_max_items=2).fit(TINY_USER, TINY_ITEM, TINY_TIME, num_items=4)


def test_ease_with_neighbours_keeps_each_items_largest_weights():
  """neighbours = M keeps row h's M largest weights of B: all of them (M >= the catalog) scores
  as the dense B; M = 1 keeps only each history item's strongest successor."""
  args = (TINY_USER, TINY_ITEM, TINY_TIME)
  dense = graph_filter.Ease(half_life=1.0, l2=1.0).fit(*args, num_items=4)
  every = graph_filter.Ease(half_life=1.0, l2=1.0, neighbours=4).fit(*args, num_items=4)
  one = graph_filter.Ease(half_life=1.0, l2=1.0, neighbours=1).fit(*args, num_items=4)
  want = dense.score_numpy(HISTORY, HISTORY_TIME, NOW)[0]
  for source in (every, one):
    np.testing.assert_allclose(tf_scores(source, HISTORY, HISTORY_TIME, NOW)[0],
                               source.score_numpy(HISTORY, HISTORY_TIME, NOW)[0], rtol=1e-5,
                               atol=1e-7)
  np.testing.assert_allclose(every.score_numpy(HISTORY, HISTORY_TIME, NOW)[0], want, rtol=1e-5,
                             atol=1e-7)
  x = np.zeros([3, 4])
  x[TINY_USER, TINY_ITEM] = 1.0
  p = np.linalg.inv(x.T @ x + np.eye(4))
  b = -p / np.diag(p)[None, :]
  np.fill_diagonal(b, 0.0)
  kept = np.zeros_like(b)
  kept[np.arange(4), b.argmax(1)] = b.max(1)                # Each row's largest weight.
  np.testing.assert_allclose(one.score_numpy(HISTORY, HISTORY_TIME, NOW)[0],
                             np.array([0.5, 1.0, 0.0, 0.0]) @ kept, rtol=1e-5, atol=1e-7)
  with pytest.raises(ValueError, match="neighbours must be > 0"):
    graph_filter.Ease(neighbours=0)


def test_embedding_neighbours_hand_checked_and_saved(tmp_path):
  """Items 0..3 with 2-d embeddings; history item 1 (rank 0) and item 0 (rank 1), half-life 1:
  q = (1 * e1 + 0.5 * e0) / 1.5; item 3 has no embedding and scores 0."""
  e = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]], np.float32)
  source = embedding.EmbeddingNeighbours(key="v", half_life=1.0).fit(
      TINY_USER, TINY_ITEM, TINY_TIME, num_items=4, item_data={"v": e})
  unit = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
  q = (unit[1] + 0.5 * unit[0]) / 1.5
  want = unit @ q
  np.testing.assert_allclose(source.score_numpy(HISTORY, HISTORY_TIME, NOW)[0], want, rtol=1e-5)
  np.testing.assert_allclose(tf_scores(source, HISTORY, HISTORY_TIME, NOW)[0], want, rtol=1e-5)
  path = str(tmp_path / "neighbours")
  base.save_source(source, path)
  loaded = base.load_source(path)
  assert loaded.name == source.name and loaded.num_items == 4
  np.testing.assert_allclose(tf_scores(loaded, HISTORY, HISTORY_TIME, NOW), want[None],
                             rtol=1e-5)
  with pytest.raises(ValueError, match="reads item_data\\['v'\\]"):
    embedding.EmbeddingNeighbours(key="v").fit([0], [0], [0], num_items=4)


def test_graph_tower_source_scores_the_picked_query_with_the_popularity_prior(tmp_path):
  """The same items and history as above, as the graph-tower source: the cosine of the query
  plus g * T * (log p - max log p) over the fit events. TINY_ITEM counts items 0..3 as 2, 3, 1,
  1 (N = 7, I = 4): p = 3/11, 4/11, 2/11, 2/11, so log p - max = log 3/4, 0, log 1/2, log 1/2.
  q = (e1 + 0.5 e0) / 1.5 is (1, 2) / sqrt(5) normalized: cosines 1/sqrt(5), 2/sqrt(5),
  3/sqrt(10), 0. With weight 0.5 the prior moves item 1 above item 2."""
  e = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]], np.float32)
  source = embedding.EmbeddingNeighbours.graph_tower(half_life=1.0, popularity_weight=0.5).fit(
      TINY_USER, TINY_ITEM, TINY_TIME, num_items=4, item_data={embedding.ITEM_EMBEDDING: e})
  bias = 0.5 * np.log(np.array([3 / 4, 1.0, 1 / 2, 1 / 2]))
  np.testing.assert_allclose(base.popularity_prior(TINY_ITEM, 4, 0.5), bias, rtol=1e-6)
  want = np.array([1 / np.sqrt(5), 2 / np.sqrt(5), 3 / np.sqrt(10), 0.0]) + bias
  np.testing.assert_allclose(source.score_numpy(HISTORY, HISTORY_TIME, NOW)[0], want, rtol=1e-5)
  np.testing.assert_allclose(tf_scores(source, HISTORY, HISTORY_TIME, NOW)[0], want, rtol=1e-5)
  assert np.argmax(want) == 1 and np.argmax(want - bias) == 2
  # No history: a user's own query part alone (cosine with (1, 0)); neither: the prior alone,
  # the most popular item first.
  empty = (np.full([2, 1], -1, np.int32), np.full([2, 1], -1, np.int64), np.array([30, 30]))
  scores = source._scores(*(tf.constant(x) for x in empty),  # pylint: disable=protected-access
                          user_query=tf.constant([[2.0, 0.0], [0.0, 0.0]])).numpy()
  np.testing.assert_allclose(scores[0], np.array([1.0, 0.0, np.sqrt(0.5), 0.0]) + bias,
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(scores[1], bias, rtol=1e-5, atol=1e-7)
  path = str(tmp_path / "tower")
  base.save_source(source, path)
  np.testing.assert_allclose(tf_scores(base.load_source(path), HISTORY, HISTORY_TIME, NOW)[0],
                             want, rtol=1e-5)
  with pytest.raises(ValueError, match="popularity_weight must be >= 0"):
    embedding.EmbeddingNeighbours.graph_tower(popularity_weight=-1.0)


@pytest.mark.parametrize("every", [1, 2, 3, 7, 1000])
def test_event_index_prefix_tables_count_like_the_searches(every):
  # Random events with repeated times (ties at a table row's edge) and bounds before, inside
  # and after the log; the prefix tables and the per-item searches must agree exactly.
  rng = np.random.default_rng(every)
  item = rng.integers(0, 6, 40)
  time = rng.integers(0, 12, 40) * DAY
  tables = time_context.EventIndex(item, time, num_items=7, checkpoint_every=every)
  searches = time_context.EventIndex(item, time, num_items=7)
  assert tables.checkpoint_every == every and searches.checkpoint_every is None
  upper = tf.constant([-DAY, 0, 3 * DAY, 3 * DAY + 1, 11 * DAY, 40 * DAY], tf.int64)
  lowers = [None, upper - 2 * DAY, upper - 30 * DAY]
  got = tables.counts_many_all(lowers, upper)
  want = searches.counts_many_all(lowers, upper)
  for g, w, lower in zip(got, want, [np.full(6, time_context.BEGINNING)] + lowers[1:]):
    np.testing.assert_array_equal(g, w)
    brute = tables.counts_numpy(np.tile(np.arange(7), (6, 1)), np.asarray(lower), upper.numpy())
    np.testing.assert_array_equal(g, brute)
  assert float(tf.reduce_sum(got[0][-1])) == 40  # Every event by the last bound.


def test_event_index_prefix_table_stride_grows_for_large_tables(monkeypatch):
  monkeypatch.setattr(time_context, "CHECKPOINT_MAX_ENTRIES", 100)
  index = time_context.EventIndex(np.arange(50) % 10, np.arange(50), num_items=10,
                                  checkpoint_every=2)
  # 50 events x 10 items / 100 entries: a row every 5 events, 11 rows of 10 counts.
  assert index.checkpoint_every == 5
  assert index.prefix_counts.shape == (11, 10)
  np.testing.assert_array_equal(index.counts_many_all([None], tf.constant([23], tf.int64))[0],
                                [[3, 3, 3, 3, 2, 2, 2, 2, 2, 2]])


@pytest.mark.parametrize("name", sorted(all_sources()))
def test_empty_batches_and_histories(name):
  # A request with no users, and users with no usable history (padding only, or only events
  # after now): TensorFlow's CSR kernels divide by the row count, so no rows must not reach them.
  user, item, time, num_items = random_graph()
  source = all_sources()[name].fit(user, item, time, num_items=num_items)
  none = source.scores(tf.zeros([0, 3], tf.int32), tf.zeros([0, 3], tf.int64),
                       tf.zeros([0], tf.int64))["scores"]
  assert none.shape == (0, num_items)
  history = np.array([[-1, -1], [item[0], -1]], np.int32)
  history_time = np.array([[0, 0], [10 ** 12, 0]], np.int64)
  now = np.array([0, 0], np.int64)
  np.testing.assert_allclose(tf_scores(source, history, history_time, now),
                             source.score_numpy(history, history_time, now), rtol=1e-5,
                             atol=1e-6)


def test_event_index_rejects_a_bad_checkpoint_stride():
  with pytest.raises(ValueError, match="checkpoint_every must be > 0"):
    time_context.EventIndex([0], [1], num_items=1, checkpoint_every=0)
  with pytest.raises(ValueError, match="checkpoint_every must be > 0"):  # Even without events.
    time_context.EventIndex([], [], num_items=1, checkpoint_every=-1)
