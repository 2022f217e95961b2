"""Evaluation slices checked by hand on small catalogs."""
import numpy as np
import pandas as pd
import pytest

from tfgrec.data import splits
from tfgrec.eval import metrics, slices


def _csr(rows):
  users = np.array([u for u, row in enumerate(rows) for _ in row], np.int64)
  items = np.array([i for row in rows for i in row], np.int64)
  return metrics.Interactions.from_pairs(users, items, len(rows))


def _data(train, num_items, validation=None, test=None):
  """EvalData from per-user item lists (training items oldest first)."""
  empty = [[] for _ in train]
  users = np.array([u for u, row in enumerate(train) for _ in row], np.int64)
  items = np.array([i for row in train for i in row], np.int64)
  events = pd.DataFrame({"user": users, "item": items, "timestamp": np.arange(len(users))})
  return splits.EvalData(len(train), num_items, _csr(train), _csr(validation or empty),
                            _csr(test or empty), events, np.bincount(items, minlength=num_items))


def test_cold_items_and_long_tail_by_hand():
  # Training users per item: [1, 3, 3, 0, 2, 1] (10 interactions); ties go to the lower index.
  data = _data([[0, 1, 2], [1, 2, 4], [1, 2, 4, 5]], 6)
  assert data.popularity.tolist() == [1, 3, 3, 0, 2, 1]
  assert slices.cold_items(data).tolist() == [False, False, False, True, False, False]
  # Half of 10: items 1 and 2 hold 6 >= 5; item 1 alone holds 3 < 5.
  assert np.flatnonzero(~slices.long_tail_items(data)).tolist() == [1, 2]
  # 3 is reached by item 1 alone (it wins the tie with item 2 by its index).
  assert np.flatnonzero(~slices.long_tail_items(data, head_share=0.3)).tolist() == [1]
  # 8 needs items 1, 2 and 4; the next 1-user items tie: item 0 first.
  assert np.flatnonzero(~slices.long_tail_items(data, head_share=0.9)).tolist() == [0, 1, 2, 4]
  # Every interaction: every item with one, the cold item stays in the tail.
  assert np.flatnonzero(slices.long_tail_items(data, head_share=1.0)).tolist() == [3]
  assert slices.long_tail_items(data, head_share=0.0).all()
  with pytest.raises(ValueError, match="head_share"):
    slices.long_tail_items(data, head_share=1.5)


def test_short_history_users_by_hand():
  data = _data([[], [0], [0, 1, 2], [1, 2]], 3)
  assert slices.short_history_users(data, max_items=2).tolist() == [1, 3]
  assert slices.short_history_users(data, max_items=3).tolist() == [1, 2, 3]
  assert slices.short_history_users(data, max_items=0).dtype == np.int64


def test_evaluate_slices_by_hand():
  # Items 0-3 were used in training (item 0 most), items 4 and 5 are cold. Scores rank items
  # 5 > 4 > ... > 0 for everyone, so after exclusions every user's top-1 is item 5.
  train = [[0, 1], [0, 2], [0, 1, 2, 3]]
  validation = [[3], [], []]
  test = [[5], [1], [4, 3]]
  data = _data(train, 6, validation, test)
  scores = np.tile(np.arange(6, dtype=np.float32), (3, 1))
  out = slices.evaluate_slices(lambda u: scores[u], data, ks=[1, 3], long_tail_head_share=0.5,
                               short_history_max=2)
  assert list(out) == ["all", "cold_items", "long_tail", "short_history"]
  want_all = metrics.evaluate(lambda u: scores[u], data.test, [data.train, data.validation],
                              num_items=6, ks=[1, 3], train_popularity=data.popularity,
                              num_train_users=3)
  assert out["all"] == pytest.approx(want_all)
  assert "novelty@1" in out["all"]
  # Cold relevant items: user 0 {5} (top-1 hit), user 2 {4} (top-1 is 5: a miss, top-3 a hit).
  assert out["cold_items"]["users"] == 2
  assert out["cold_items"]["hr@1"] == pytest.approx(0.5)
  assert out["cold_items"]["hr@3"] == pytest.approx(1.0)
  # Popularity [3, 2, 2, 1, 0, 0]: the head (half of 8) is item 0 and item 1 (3 + 2 >= 4):
  # user 1's only relevant item (1) is in the head, so user 1 drops out.
  assert out["long_tail"]["users"] == 2
  # Short history (1-2 training items): users 0 and 1. User 0 hits first; user 1's ranking is
  # 5, 4, 3, 1: its hit is fourth.
  assert out["short_history"]["users"] == 2
  assert out["short_history"]["hr@1"] == pytest.approx(0.5)
  assert out["short_history"]["hr@3"] == pytest.approx(0.5)


def test_validation_split_excludes_only_training():
  data = _data([[0], [1]], 3, validation=[[1], [2]], test=[[2], [0]])
  scores = np.tile(np.array([2.0, 1.0, 0.0], np.float32), (2, 1))
  out = slices.evaluate_slices(lambda u: scores[u], data, split="validation", ks=[1])
  # Ranking after the training item: user 0 -> 1 (hit), user 1 -> 0 (miss).
  assert out["all"]["users"] == 2 and out["all"]["hr@1"] == pytest.approx(0.5)
  with pytest.raises(ValueError, match="split"):
    slices.evaluate_slices(lambda u: scores[u], data, split="train")


def test_a_slice_without_users_reports_zeros():
  # No cold item, and no user with at most 1 training item.
  data = _data([[0, 1], [1, 2]], 3, test=[[2], [0]])
  scores = np.ones([2, 3], np.float32)
  out = slices.evaluate_slices(lambda u: scores[u], data, ks=[2], short_history_max=1)
  for name in ("cold_items", "short_history"):
    assert out[name]["users"] == 0
    assert set(out[name]) == set(out["all"])
    assert all(v == 0.0 for key, v in out[name].items() if key != "users"), out[name]
