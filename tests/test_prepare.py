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
