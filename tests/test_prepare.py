"""Dedupe, the per-user temporal split, edge collapsing and pseudonymization, on hand-made rows."""
import math

import numpy as np
import pandas as pd
import pytest

from tfgrec.data import prepare


def _events(rows):
  return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event", "value"])


def test_dedupe_collapses_identical_events_with_a_count():
  frame = _events([("u", "a", 1, "view", 1.0), ("u", "a", 1, "view", 3.0),
                   ("u", "a", 2, "view", 5.0), ("u", "a", 1, "rating", math.nan)])
  out, removed = prepare.dedupe(frame)
  assert removed == 1
  row = out[(out["timestamp"] == 1) & (out["event"] == "view")].iloc[0]
  assert row["count"] == 2 and row["value"] == 2.0  # Mean of the duplicates' values.
  assert out["count"].sum() == len(frame)


def test_temporal_split_takes_each_users_latest_events():
  # u1 has 10 events: floor(10 * 0.2) = 2 test, floor(10 * 0.1) = 1 validation, 7 train.
  # u2 has 3 events, fewer than min_interactions=5: all train.
  rows = [("u1", f"i{t}", t, "view", 1.0) for t in range(10)]
  rows += [("u2", f"i{t}", 100 + t, "view", 1.0) for t in range(3)]
  out = prepare.temporal_split(_events(rows), prepare.SplitConfig(0.1, 0.2, 5))
  u1 = out[out["user_id"] == "u1"].sort_values("timestamp")
  assert list(u1["split"]) == ["train"] * 7 + ["validation"] + ["test"] * 2
  assert set(out[out["user_id"] == "u2"]["split"]) == {"train"}
  assert prepare.split_counts(out) == {"train": 10, "validation": 1, "test": 2}


def test_split_keeps_one_train_event_and_breaks_ties_by_item():
  # 5 events at the same time: ties ordered by item id; 1 validation, 1 test (at least one each).
  rows = [("u", i, 7, "view", 1.0) for i in ["e", "d", "c", "b", "a"]]
  out = prepare.temporal_split(_events(rows), prepare.SplitConfig(0.1, 0.1, 5))
  assert list(out["item_id"]) == ["a", "b", "c", "d", "e"]
  assert list(out["split"]) == ["train", "train", "train", "validation", "test"]


@pytest.mark.parametrize("kwargs,message", [
    (dict(validation_fraction=-0.1), "validation_fraction must be in"),
    (dict(validation_fraction=0.5, test_fraction=0.5), "must be < 1"),
    (dict(min_interactions=2), "min_interactions must be >= 3"),
])
def test_split_config_is_validated(kwargs, message):
  with pytest.raises(ValueError, match=message):
    prepare.SplitConfig(**kwargs)


def test_collapse_keeps_latest_value_and_total_count():
  train = _events([("u", "a", 1, "rating", 2.0), ("u", "a", 5, "rating", 4.0),
                   ("u", "b", 3, "view", math.nan)]).assign(count=[1, 2, 1])
  edges = prepare.collapse_edges(train)
  a = edges[edges["item_id"] == "a"].iloc[0]
  assert (a["timestamp"], a["count"], a["value"]) == (5, 3, 4.0)
  assert edges[edges["item_id"] == "b"].iloc[0]["value"] == 1.0  # No value: implicit 1.0.
  assert edges["value"].dtype == np.float32


def test_pseudonymize_is_keyed_and_stable():
  ids = pd.Series(["alice", "bob", "alice"])
  a = prepare.pseudonymize(ids, "salt-1")
  assert a[0] == a[2] and a[0] != a[1]
  assert len(a[0]) == 20 and "alice" not in a[0]
  assert list(prepare.pseudonymize(ids, "salt-1")) == list(a)
  assert prepare.pseudonymize(ids, "salt-2")[0] != a[0]
  with pytest.raises(ValueError, match="non-empty salt"):
    prepare.pseudonymize(ids, "")


def test_buckets_are_stable_and_in_range():
  ids = pd.Series([f"u{i}" for i in range(1000)])
  b = prepare.bucket_of(ids, 7)
  assert b.min() >= 0 and b.max() == 6
  assert np.array_equal(b, prepare.bucket_of(ids.copy(), 7))
  assert np.array_equal(prepare.bucket_of(ids[::-1].reset_index(drop=True), 7), b[::-1])


def test_item_text_joins_present_parts():
  assert prepare.item_text("Heat (1995)", ("Action", "Crime"), "") == "Heat (1995) | Action, Crime"
  assert prepare.item_text("", ("Drama",), "Long.") == "Drama | Long."
  assert prepare.item_text("", (), "") == ""


# --- Events without a time (timestamp -1, contract v2) -------------------------------------

def _timeless(user, n, start=0):
  """n events of `user` without a time, items i0..i{n-1}, at input positions start..."""
  return [(user, f"i{k}", -1, "view", 1.0, start + k) for k in range(n)]


def _positioned(rows):
  return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event", "value",
                                     "position"])


def _assignment(out):
  return dict(zip(zip(out["user_id"], out["item_id"]), out["split"]))


def test_timeless_users_are_split_at_random_with_the_same_shares():
  # 10 events: 2 test, 1 validation, 7 train, as the temporal split; which ones is random.
  rows = _timeless("u1", 10) + _timeless("u2", 10, start=100)
  out = prepare.temporal_split(_positioned(rows), prepare.SplitConfig(0.1, 0.2, 5))
  for user in ("u1", "u2"):
    assert prepare.split_counts(out[out["user_id"] == user]) == {
        "train": 7, "validation": 1, "test": 2}
  # Not "the last two in the input": with these seeds and ids the hash picks others.
  u1 = out[out["user_id"] == "u1"]
  assert list(u1["split"]) != ["train"] * 7 + ["validation"] + ["test"] * 2
  # Rows come out in input order.
  assert list(u1["position"]) == list(range(10))


def test_random_split_is_deterministic_and_keyed_by_the_seed():
  rows = _timeless("u1", 20) + _timeless("u2", 30, start=50)
  config = prepare.SplitConfig(0.1, 0.2, 5)
  first = _assignment(prepare.temporal_split(_positioned(rows), config))
  # Another row order (another shard layout or worker) and other input positions (files
  # listed differently) give the same split: the hash reads the event, not where it was.
  shuffled = _positioned(rows).sample(frac=1.0, random_state=3).assign(position=7)
  assert _assignment(prepare.temporal_split(shuffled, config)) == first
  # Another seed, another split (with the same shares).
  other = _assignment(prepare.temporal_split(_positioned(rows),
                                             prepare.SplitConfig(0.1, 0.2, 5, seed=1)))
  assert other != first
  assert sorted(other.values()) == sorted(first.values())


def test_mixed_users_are_split_at_random_timed_users_by_time():
  # u1: all timed -> temporal. u2: three timed, three without a time -> random.
  rows = [("u1", f"i{t}", 100 + t, "view", 1.0, t) for t in range(6)]
  rows += [("u2", f"t{t}", 100 + t, "view", 1.0, 10 + t) for t in range(3)]
  rows += _timeless("u2", 3, start=20)
  out = prepare.temporal_split(_positioned(rows), prepare.SplitConfig(0.2, 0.2, 5))
  u1 = out[out["user_id"] == "u1"]
  assert list(u1["split"]) == ["train"] * 4 + ["validation", "test"]
  u2 = out[out["user_id"] == "u2"]
  # Events without a time first (in input order), then the timed ones by time.
  assert list(u2["item_id"]) == ["i0", "i1", "i2", "t0", "t1", "t2"]
  assert prepare.split_counts(u2) == {"train": 4, "validation": 1, "test": 1}
  assert prepare.random_split_users(out).tolist() == [False] * 6 + [True] * 6


def test_dedupe_and_collapse_of_events_without_a_time():
  rows = [("u", "a", -1, "view", 1.0, 9), ("u", "a", -1, "view", 3.0, 4),
          ("u", "a", -1, "rating", 5.0, 2), ("u", "b", -1, "rating", 2.0, 1),
          ("u", "b", 50, "rating", 4.0, 0)]
  out, removed = prepare.dedupe(_positioned(rows))
  assert removed == 1  # The two views of a: nothing tells them apart.
  view = out[(out["item_id"] == "a") & (out["event"] == "view")].iloc[0]
  assert (view["count"], view["value"], view["position"]) == (2, 2.0, 4)
  assert list(out.columns) == prepare.EVENT_COLUMNS
  edges = prepare.collapse_edges(out).set_index("item_id")
  # a: no time at all -> -1; its latest event is the last in the input (the view at 4).
  assert (edges.loc["a", "timestamp"], edges.loc["a", "count"]) == (-1, 3)
  assert edges.loc["a", "value"] == 2.0
  # b: one timed event -> the edge has that time and its value.
  assert (edges.loc["b", "timestamp"], edges.loc["b", "value"]) == (50, 4.0)


def test_split_seed_is_validated():
  with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
    prepare.SplitConfig(seed=-1)
