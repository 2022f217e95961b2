"""Stage 2: candidate union and features (hand-checked), the listwise loss, the time discipline,
and the ranker beating every single source on a synthetic log with a planted time effect."""
import types

import numpy as np
import pytest

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec.eval import metrics
from tfgrec.ranking import features as features_lib
from tfgrec.ranking import fitting
from tfgrec.ranking import lists as lists_lib
from tfgrec.ranking import new_items as new_items_lib
from tfgrec.ranking import ranker as ranker_lib
from tfgrec.sources import base, embedding, graph_filter, time_context

tf = features_lib.tf
DAY = 86_400


# === Listwise loss ===
def test_listwise_softmax_on_a_hand_made_list():
  loss = ranker_lib.ListwiseSoftmax(reduction="none")
  masked = features_lib.MASKED
  # One positive: -log(e^2 / (e^2 + e^0)) = log(1 + e^-2) = 0.12693; the masked slot is out.
  # Two positives: -(log(e^1/Z) + log(e^0/Z)) / 2 with Z = e^1 + e^0 + e^-1 = 4.08616
  #   = log Z - 1/2 = 0.90760. No positive: 0.
  got = loss([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]],
             [[2.0, 0.0, masked], [1.0, 0.0, -1.0], [3.0, 1.0, 0.0]]).numpy()
  np.testing.assert_allclose(got, [0.12693, 0.90760, 0.0], atol=1e-5)


def test_ranker_masks_invalid_candidates_and_checks_arguments():
  model = ranker_lib.Ranker(num_features=3, hidden=(4,), cross_layers=1)
  out = model({"features": np.ones([2, 4, 3], np.float32),
               "valid": np.array([[True, True, False, True]] * 2)}).numpy()
  assert out.shape == (2, 4) and np.all(out[:, 2] == features_lib.MASKED)
  assert np.all(np.abs(out[:, [0, 1, 3]]) < 1e3)
  with pytest.raises(ValueError, match="dropout must be in"):
    ranker_lib.Ranker(num_features=3, dropout=1.5)
  with pytest.raises(ValueError, match="feature_mean and feature_std must be"):
    ranker_lib.Ranker(num_features=3, feature_mean=np.zeros(2))


# === Candidates and features on a tiny catalog ===
def _tiny():
  """5 items. Events (user, item, day): u0: 0@1, 1@2; u1: 0@1, 2@3; u2: 3@9 (after the queries)."""
  user = np.array([0, 0, 1, 1, 2])
  item = np.array([0, 1, 0, 2, 3])
  day = np.array([1, 2, 1, 3, 9])
  return user, item, day * DAY


def _features(user, item, ts, config=features_lib.FeatureConfig(), **kwargs):
  text = np.eye(5, 3, dtype=np.float32)  # items 0..2 have one-hot text, 3 and 4 none.
  cats = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]], np.float32)
  sources = {
      "ease": (graph_filter.GraphFilter(half_life=None, alpha=0.0).fit(user, item, ts,
                                                                       num_items=5), 2),
      "trending": (time_context.Trending(windows_days=[7.0], popularity_weight=0.0).fit(
          user, item, ts, num_items=5), 2),
      "text": (embedding.EmbeddingNeighbours.text(half_life=None).fit(
          user, item, ts, num_items=5, item_data={"text_embedding": text}), 1),
  }
  index = time_context.EventIndex(item, ts, num_items=5)
  return features_lib.CandidateFeatures(sources=sources, events=index, text_embedding=text,
                                        item_categories=cats, config=config, **kwargs)


def test_candidates_are_the_distinct_union_without_history_items():
  feats = _features(*_tiny())
  # A request with history [0] at day 4: item 0 is excluded from every source's list.
  out = feats(tf.constant([[0, -1]], tf.int32), tf.constant([[1 * DAY, -1]], tf.int64),
              tf.constant([4 * DAY], tf.int64))
  valid = out["valid"].numpy()[0]
  cands = out["candidates"].numpy()[0][valid]
  assert out["candidates"].shape[1] == 5  # C = 2 + 2 + 1 slots.
  assert 0 not in cands and len(set(cands)) == len(cands)
  # GF-CF from item 0 reaches 1 and 2 (co-occurring); trending in (day -3, day 4]: items 0, 1,
  # 2 (item 0 excluded) -> 1 and 2 (tied); text: item 0's text only matches item 0 -> the next
  # best is any zero-score item. So 1 and 2 are proposed by all three lists.
  assert {1, 2} <= set(cands.tolist())
  names = feats.feature_names
  f = dict(zip(names, out["features"].numpy()[0][valid].T))
  row = {c: i for i, c in enumerate(cands)}
  # Item 1 and 2: ease proposes both (N = 2), each at reciprocal rank 1 or 1/2.
  assert f["source/ease/proposed"][row[1]] == 1 and f["source/ease/proposed"][row[2]] == 1
  assert sorted([f["source/ease/reciprocal_rank"][row[1]], f["source/ease/reciprocal_rank"][row[2]]]) == [
      0.5, 1.0]
  # Popularity at day 4: item 1 has 1 event in 7 days, ever 1; item 3's event (day 9) is later.
  assert f["popularity/log_count_7d"][row[1]] == pytest.approx(np.log(2.0))
  if 3 in row:
    assert f["popularity/log_count"][row[3]] == 0 and f["popularity/available"][row[3]] == 0
  # Item 1's age: first seen day 2 -> 2 days at day 4.
  assert f["popularity/log_age_days"][row[1]] == pytest.approx(np.log(3.0), rel=1e-5)
  # Text: item 1's text is orthogonal to item 0's; category: item 1 shares item 0's category.
  assert f["text/last"][row[1]] == pytest.approx(0.0)
  assert f["category/weighted"][row[1]] == pytest.approx(1.0)
  assert f["category/weighted"][row[2]] == pytest.approx(0.0)
  # User: one usable history item, last event 3 days before now.
  assert f["user/log_history"][row[1]] == pytest.approx(np.log(2.0))
  assert f["user/log_hours_since_last"][row[1]] == pytest.approx(np.log1p(72.0), rel=1e-5)


def test_dropping_a_group_drops_its_columns():
  feats = _features(*_tiny(), config=features_lib.FeatureConfig(drop=("text", "source:ease")))
  assert not any(n.startswith(("text/", "source/ease/")) for n in feats.feature_names)
  assert "source/trending/z" in feats.feature_names and "category/weighted" in feats.feature_names
  with pytest.raises(ValueError, match="unknown feature groups"):
    features_lib.FeatureConfig(groups=("sources", "colour"))


def test_a_feature_for_a_past_reference_time_ignores_later_events():
  """The time discipline: at reference time `now`, adding events after `now` (to the request's
  history, to the popularity index, and to the time-context sources' fit events) changes no
  candidate and no feature. Model-based sources are fit before the label slice, so they are the
  same objects in both computations."""
  user, item, ts = _tiny()
  now = 5 * DAY
  early = ts <= now
  text = np.eye(5, 3, dtype=np.float32)
  model_sources = {
      "graph_filter": (graph_filter.GraphFilter(half_life=2.0).fit(
          user[early], item[early], ts[early], num_items=5), 2),
      "text": (embedding.EmbeddingNeighbours.text().fit(
          user, item, ts, num_items=5, item_data={"text_embedding": text}), 2)}

  def build(u, i, t):
    sources = dict(model_sources)
    sources["trending"] = (time_context.Trending().fit(u, i, t, num_items=5), 2)
    sources["fresh"] = (time_context.Fresh().fit(u, i, t, num_items=5), 2)
    return features_lib.CandidateFeatures(
        sources=sources, events=time_context.EventIndex(i, t, num_items=5),
        text_embedding=text, item_categories=np.eye(5, 2, dtype=np.float32))

  before = build(user[early], item[early], ts[early])(
      tf.constant([[1, 0, -1]], tf.int32), tf.constant([[2 * DAY, DAY, -1]], tf.int64),
      tf.constant([now], tf.int64))
  # Later: the user views item 2 at day 6, others view items 4 and 2 at days 7 and 8.
  later_user = np.concatenate([user, [0, 1, 2]])
  later_item = np.concatenate([item, [2, 4, 2]])
  later_ts = np.concatenate([ts, [6 * DAY, 7 * DAY, 8 * DAY]])
  after = build(later_user, later_item, later_ts)(
      tf.constant([[2, 1, 0]], tf.int32), tf.constant([[6 * DAY, 2 * DAY, DAY]], tf.int64),
      tf.constant([now], tf.int64))
  # Item 2 is now also a history item, but after now: still a candidate, with equal features.
  def by_item(out):
    valid = out["valid"].numpy()[0]
    return {int(c): f for c, f in zip(out["candidates"].numpy()[0][valid],
                                      out["features"].numpy()[0][valid])}

  b, a = by_item(before), by_item(after)
  assert set(a) == set(b) and 2 in a
  for c in a:
    np.testing.assert_allclose(a[c], b[c], rtol=1e-6, err_msg=f"item {c}")


# === The ranker learns a planted time effect ===
def _planted_log(seed=0, users=240, items=80, clusters=4, steps=14):
  """Each user belongs to a taste cluster; every day a new batch of items is released, and a
  user's next event is, with probability 0.85, an item of their cluster released in the last
  2 days (else a random older item of their cluster). Item-item co-occurrence sees the cluster,
  trending sees what is new; only both together find the next item."""
  rng = np.random.default_rng(seed)
  cluster_of_item = np.arange(items) % clusters
  release = (np.arange(items) // (items // steps)) * DAY  # ~6 new items a day.
  rows = []
  for u in range(users):
    c = u % clusters
    start = rng.integers(0, 3)
    for day in range(start, steps):
      if rng.random() < 0.5:
        continue
      t = day * DAY + int(rng.integers(0, DAY))
      mine = np.flatnonzero((cluster_of_item == c) & (release <= day * DAY))
      new = mine[release[mine] >= (day - 1) * DAY]
      pool = new if (len(new) and rng.random() < 0.85) else mine
      rows.append((u, int(rng.choice(pool)), t))
  log = np.array(rows, np.int64)
  return log[:, 0], log[:, 1], log[:, 2], items


def _split(user, item, ts, fraction):
  """Per user: events before the user's last `fraction` share of time, and the rest."""
  early = np.zeros(len(user), bool)
  for u in np.unique(user):
    mine = np.flatnonzero(user == u)
    order = mine[np.argsort(ts[mine], kind="stable")]
    cut = max(1, int(round(len(order) * (1 - fraction))))
    early[order[:cut]] = True
  return early


def test_the_ranker_beats_every_single_source_on_a_planted_time_effect():
  user, item, ts, num_items = _planted_log()
  num_users = int(user.max()) + 1
  train = _split(user, item, ts, 0.3)     # Sources for the ranker's lists: before the labels.
  known = _split(user, item, ts, 0.15)    # Later: refit on everything before the test events.
  label, test = known & ~train, ~known
  make = {"ease": (lambda: graph_filter.Ease(half_life=None, l2=10.0), 15),
          "trending": (lambda: time_context.Trending(windows_days=[1.0, 2.0],
                                                     popularity_weight=0.0), 15)}

  def stage(fit_mask, label_mask):
    events = {"user": user[fit_mask], "item": item[fit_mask], "timestamp": ts[fit_mask]}
    sources, _ = fitting.fit_sources(make, events, num_items, progress=False)
    histories = base.UserHistories(events["user"], events["item"], events["timestamp"],
                                   num_users=num_users)
    relevant = metrics.Interactions.from_pairs(user[label_mask], item[label_mask], num_users)
    now = np.full(num_users, base.NO_TIME, np.int64)
    np.maximum.at(now, user[label_mask], 0)
    first = np.full(num_users, np.iinfo(np.int64).max)
    np.minimum.at(first, user[label_mask], ts[label_mask])
    now = np.where(first < np.iinfo(np.int64).max, first, histories.latest)
    feats = features_lib.CandidateFeatures(
        sources=sources, events=time_context.EventIndex(events["item"], events["timestamp"],
                                                        num_items=num_items))
    users = np.flatnonzero(relevant.sizes() > 0)
    lists = lists_lib.build_lists(feats, histories, users, now, relevant)
    return sources, histories, now, relevant, lists, events

  *_, train_lists, _ = stage(train, label)
  ranker, _ = fitting.train_ranker(train_lists, fitting.RankerConfig(
      epochs=25, patience=8, hidden=(16,), cross_layers=1, learning_rate=1e-2, ensemble=1), progress=False)
  sources, histories, now, relevant, test_lists, events = stage(known, test)
  exclude = [metrics.Interactions.from_pairs(events["user"], events["item"], num_users)]

  def ndcg(score_fn):
    return metrics.evaluate(score_fn, relevant, exclude, num_items=num_items, ks=(10,),
                            user_batch=256)["ndcg@10"]

  two_stage = ndcg(lists_lib.list_scorer(test_lists, lists_lib.rank_lists(ranker, test_lists),
                                        num_items))
  single = {name: ndcg(base.user_scorer(s, histories, now, use_tf=True))
            for name, (s, _) in sources.items()}
  assert two_stage > 1.5 * max(single.values()), (two_stage, single)


def test_an_ensemble_ranks_by_the_mean_logit_of_its_members():
  members = [ranker_lib.Ranker(num_features=3, hidden=(4,), cross_layers=1) for _ in range(2)]
  ensemble = ranker_lib.RankerEnsemble(members)
  inputs = {"features": np.random.default_rng(0).normal(size=[2, 4, 3]).astype(np.float32),
            "valid": np.array([[True, True, False, True]] * 2)}
  want = (members[0](inputs).numpy() + members[1](inputs).numpy()) / 2
  got = ensemble(inputs).numpy()
  np.testing.assert_allclose(got[:, [0, 1, 3]], want[:, [0, 1, 3]], rtol=1e-6)
  assert np.all(got[:, 2] == features_lib.MASKED)
  with pytest.raises(ValueError, match="different feature counts"):
    ranker_lib.RankerEnsemble([members[0], ranker_lib.Ranker(num_features=2)])


def test_ranker_and_ensemble_reload_from_config_and_weights():
  members = [ranker_lib.Ranker(num_features=3, feature_mean=np.array([1.0, 0.0, -1.0]),
                               feature_std=np.array([2.0, 1.0, 0.5]), hidden=(4,),
                               cross_layers=1, projection_dim=2, dropout=0.2, l2=1e-3)
             for _ in range(2)]
  ensemble = ranker_lib.RankerEnsemble(members)
  inputs = {"features": np.random.default_rng(1).normal(size=[2, 4, 3]).astype(np.float32),
            "valid": np.array([[True, True, False, True]] * 2)}
  want = ensemble(inputs).numpy()
  config = ensemble.get_config()
  assert config["members"][0] == {"num_features": 3, "cross_layers": 1, "projection_dim": 2,
                                  "hidden": [4], "dropout": 0.2, "l2": 1e-3}
  again = ranker_lib.RankerEnsemble.from_config(config)
  again(inputs)  # Builds the weights.
  again.set_weights(ensemble.get_weights())
  np.testing.assert_allclose(again(inputs).numpy(), want, rtol=1e-6)
  one = ranker_lib.Ranker.from_config(members[0].get_config())
  one(inputs)
  one.set_weights(members[0].get_weights())
  np.testing.assert_allclose(one(inputs).numpy(), members[0](inputs).numpy(), rtol=1e-6)


# === New items in the mixed list ===
class _FirstFeature(tf.keras.Model):
  """A ranker whose logit is the candidate's first feature (hand-checkable)."""

  def call(self, inputs):
    return tf.where(inputs["valid"], inputs["features"][..., 0], features_lib.MASKED)


def _lists(logits, labels, candidates):
  logits, labels = np.asarray(logits, np.float32), np.asarray(labels, np.float32)
  return lists_lib.Lists(users=np.arange(len(logits)), candidates=np.asarray(candidates, np.int32),
                        valid=np.ones(logits.shape, bool), features=logits[..., None],
                        best_source=np.zeros(logits.shape, np.int32), labels=labels,
                        num_relevant=labels.sum(1).astype(np.int64))


def test_list_ndcg_equals_the_harness_ndcg_of_the_same_ranking():
  # 6 items, k = 3. User 0 ranks 1, 3, 5 (then 4) with relevant {0, 3, 4}: one hit at rank 1,
  # item 0 outside the list is a miss: d1 / (1 + d1 + d2). User 1 ranks its relevant item 2
  # first (a masked slot last): 1. User 2 has no relevant item: left out by both.
  d1, d2 = 1 / np.log2(3), 1 / np.log2(4)
  masked = features_lib.MASKED
  logits = np.array([[0.1, 0.9, 0.5, 0.3], [2.0, 1.0, 0.0, masked], [1.0, 0.0, 0.0, 0.0]],
                    np.float32)
  candidates = np.array([[4, 1, 3, 5], [2, 0, 5, -1], [0, 1, 2, 3]], np.int32)
  valid = candidates >= 0
  relevant = metrics.Interactions.from_pairs(np.array([0, 0, 0, 1]), np.array([0, 3, 4, 2]), 3)
  lists = lists_lib.Lists(
      users=np.arange(3), candidates=candidates, valid=valid,
      features=np.zeros([3, 4, 1], np.float32), best_source=np.zeros([3, 4], np.int32),
      labels=np.array([np.isin(c, relevant.indices[relevant.indptr[u]:relevant.indptr[u + 1]])
                       for u, c in enumerate(candidates)], np.float32) * valid,
      num_relevant=relevant.sizes())
  want = (d1 / (1 + d1 + d2) + 1.0) / 2
  listed = lists_lib.list_ndcg(logits, lists, 3)
  harness = metrics.evaluate(lists_lib.list_scorer(lists, logits, 6), relevant, [], num_items=6,
                             ks=[3])
  assert harness["users"] == 2
  np.testing.assert_allclose([listed, harness["ndcg@3"]], [want, want], rtol=1e-12)


def test_the_boost_adds_to_valid_new_candidates_only():
  logits = np.array([[3.0, 2.0, 1.0, features_lib.MASKED]], np.float32)
  candidates = np.array([[0, 2, 1, -1]])
  valid = np.array([[True, True, True, False]])
  new = np.array([False, True, True])
  got = ranker_lib.boost_new_items(logits, candidates, valid, new, 1.5).numpy()
  np.testing.assert_allclose(got, [[3.0, 3.5, 2.5, features_lib.MASKED]])
  assert new_items_lib.new_items(np.array([0, 0, 2]), 4).tolist() == [False, True, False, True]
  with pytest.raises(ValueError, match=r"event items must be in \[0, 4\)"):
    new_items_lib.new_items(np.array([4]), 4)


def test_the_new_item_boost_is_the_largest_the_held_out_lists_accept():
  ensemble = types.SimpleNamespace(members=[_FirstFeature(), _FirstFeature()])  # All it reads.
  new = np.array([False, False, False, True])
  # Known items 0 and 1 (logits 3, 2) are the hits, new item 3 (logit 0) is not. At K = 2 a
  # boost up to 2 leaves the top 2 as it is (a tie keeps the list's order); 2.25 puts item 3
  # above item 1 and the held-out NDCG@2 falls from 1 to 1 / (1 + 1 / log2 3) ≈ 0.61.
  misses = _lists([[3.0, 2.0, 1.0, 0.0]], [[1, 1, 0, 0]], [[0, 1, 2, 3]])
  boost, curve = new_items_lib.fit_new_item_boost(ensemble, misses, [[0], [0]], new, k=2,
                                             budget=0.01)
  assert boost == 2.0
  assert curve[0] == (0.0, 1.0) and curve[9][0] == 2.25
  np.testing.assert_allclose(curve[9][1], 1.0 / (1.0 + 1.0 / np.log2(3.0)), rtol=1e-6)
  # A hit on the new item too: no boost loses anything, the largest is taken.
  hits = _lists([[3.0, 2.0, 1.0, 0.0]], [[1, 0, 0, 1]], [[0, 1, 2, 3]])
  assert new_items_lib.fit_new_item_boost(ensemble, hits, [[0], [0]], new, k=2, budget=0.01,
                                     max_boost=4.0)[0] == 4.0
  # No budget, no held-out lists, or no held-out hit at all: no boost.
  assert new_items_lib.fit_new_item_boost(ensemble, misses, [[0], [0]], new, k=2, budget=0.0)[0] == 0
  assert new_items_lib.fit_new_item_boost(ensemble, misses, [[], []], new, k=2, budget=0.01)[0] == 0
  assert new_items_lib.fit_new_item_boost(ensemble, _lists([[3.0, 2.0, 1.0, 0.0]], [[0, 0, 0, 0]],
                                                      [[0, 1, 2, 3]]),
                                     [[0], [0]], new, k=2, budget=0.01)[0] == 0


def test_the_boost_is_priced_on_held_out_lists_thinned_to_the_later_lists_share():
  ensemble = types.SimpleNamespace(members=[_FirstFeature(), _FirstFeature()])
  new = np.array([False, False, False, True])
  # Ten lists as `misses` above: a boost over 2 puts new item 3 above hit 1 (NDCG@2 0.61) and
  # over 3 above hit 0 too (0.39). One candidate in four is new.
  lists = _lists([[3.0, 2.0, 1.0, 0.0]] * 10, [[1, 1, 0, 0]] * 10, [[0, 1, 2, 3]] * 10)
  rows = [np.arange(10), np.arange(10)]
  assert new_items_lib.new_candidate_share(lists, new) == 0.25
  # Half as many new candidates later: each kept with probability 1/2; never above 1, never
  # below MIN_NEW_ITEM_KEEP; no later share, no thinning.
  assert new_items_lib.new_item_keep_share(lists, rows, new, 0.125) == 0.5
  assert new_items_lib.new_item_keep_share(lists, rows, new, 0.4) == 1.0
  assert new_items_lib.new_item_keep_share(lists, rows, new, 0.0) == new_items_lib.MIN_NEW_ITEM_KEEP
  assert new_items_lib.new_item_keep_share(lists, rows, new, None) == 1.0
  full, full_curve = new_items_lib.fit_new_item_boost(ensemble, lists, rows, new, k=2, budget=0.25)
  assert full == 2.0  # Every list loses 39% at 2.25.
  half, curve = new_items_lib.fit_new_item_boost(ensemble, lists, rows, new, k=2, budget=0.25,
                                            keep_share=0.5, seed=3)
  # Thinned, about half the lists keep their new item: about 19% lost over 2, 31% over 3.
  assert half == 3.0
  lost = {b: 1.0 - v for b, v in curve}
  assert 0.1 < lost[2.25] < 0.25 < lost[3.25] < 0.45 and lost[2.0] == 0.0
  assert all(1.0 - v >= lost[b] for b, v in full_curve)  # Never dearer than unthinned here.
  # Seeded: the same draws again.
  assert new_items_lib.fit_new_item_boost(ensemble, lists, rows, new, k=2, budget=0.25,
                                     keep_share=0.5, seed=3)[1] == curve
  with pytest.raises(ValueError, match="keep_share must be in"):
    new_items_lib.fit_new_item_boost(ensemble, lists, rows, new, k=2, budget=0.25, keep_share=0.0)
  # A masked candidate does not count in the share.
  masked = _lists([[3.0, 2.0, 1.0, 0.0]], [[1, 1, 0, 0]], [[0, 1, 2, 3]])
  masked.valid[0, 3] = False
  assert new_items_lib.new_candidate_share(masked, new) == 0.0


def test_the_held_out_rows_are_those_each_ranker_was_trained_without():
  lists = _lists(np.random.default_rng(0).normal(size=[40, 4]), [[1, 0, 0, 0]] * 39 + [[0] * 4],
                 [[0, 1, 2, 3]] * 40)
  config = fitting.RankerConfig(epochs=1, patience=1, ensemble=2, holdout=0.25,
                                 batch_lists=8, hidden=(4,))
  _, history = fitting.train_ranker(lists, config, progress=False)
  rows = fitting.member_holdout_rows(lists, config, 2)
  assert [r.tolist() for r in rows] == [np.asarray(r).tolist()
                                        for r in history["member_holdout_rows"]]
  assert len(rows[0]) == 10 and 39 not in rows[0] and rows[0].tolist() != rows[1].tolist()
