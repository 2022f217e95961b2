"""Beam transforms in process: TestPipeline + assert_that on small, readable inputs."""
import math

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
import pandas as pd

from tfgrec.beam import transforms as T
from tfgrec.data import prepare


def _events(rows):
  return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event", "value"])


def test_split_interactions_dedupes_and_splits_per_user():
  # Two chunks; u1's event at t=1 appears in both (a duplicate); u1 has 6 unique events.
  a = _events([("u1", f"i{t}", t, "view", math.nan) for t in range(1, 5)] +
              [("u2", "i1", 1, "view", 2.0)])
  b = _events([("u1", "i1", 1, "view", math.nan), ("u1", "i5", 5, "view", math.nan),
               ("u1", "i6", 6, "view", math.nan)])
  cfg = prepare.SplitConfig(validation_fraction=0.2, test_fraction=0.2, min_interactions=5)
  with BeamTestPipeline() as p:
    parts, edges, seen, stats = (p | beam.Create([a, b], reshuffle=False)
                                 | T.SplitInteractions(cfg, num_shards=2))
    rows = parts | beam.FlatMap(lambda e: [(e[0], r.user_id, r.item_id)
                                           for r in T.unpack(e[2]).itertuples()])
    assert_that(rows, equal_to([
        ("train", "u1", "i1"), ("train", "u1", "i2"), ("train", "u1", "i3"),
        ("train", "u1", "i4"), ("validation", "u1", "i5"), ("test", "u1", "i6"),
        ("train", "u2", "i1")]), label="splits")
    counts = edges | beam.FlatMap(lambda f: [(r.user_id, r.item_id, r.count)
                                             for r in T.unpack(f).itertuples()])
    assert_that(counts, equal_to([("u1", "i1", 2), ("u1", "i2", 1), ("u1", "i3", 1),
                                  ("u1", "i4", 1), ("u2", "i1", 1)]), label="edges")
    total = (stats | beam.Map(lambda s: (s["accepted"], s["duplicates_collapsed"]))
             | beam.CombineGlobally(lambda xs: tuple(map(sum, zip(*xs))) if xs else (0, 0)))
    assert_that(total, equal_to([(8, 1)]), label="stats")


def test_dedupe_by_id_keeps_the_first_definition():
  def items(rows):
    return pd.DataFrame({"item_id": [r[0] for r in rows], "title": [r[1] for r in rows],
                         "order": [r[2] for r in rows]})

  a = items([("x", "second file", ("b.csv", 2)), ("y", "only", ("b.csv", 3))])
  b = items([("x", "first file", ("a.csv", 9))])
  with BeamTestPipeline() as p:
    rows, dead = p | beam.Create([a, b], reshuffle=False) | T.DedupeById("items", "item_id", 4)
    kept = rows | beam.FlatMap(lambda f: list(zip(f["item_id"], f["title"])))
    assert_that(kept, equal_to([("x", "first file"), ("y", "only")]), label="kept")
    refused = dead | beam.Map(lambda d: (d["source"], d["reason"]))
    assert_that(refused, equal_to([("b.csv:2", "duplicate_id")]), label="dead")


def test_dead_letter_counts_per_table_and_reason():
  dead = [{"table": "items", "reason": "empty_id"}, {"table": "items", "reason": "empty_id"},
          {"table": "interactions", "reason": "bad_timestamp"}]
  with BeamTestPipeline() as p:
    counts = T.dead_letter_counts(p | beam.Create(dead))
    assert_that(counts, equal_to([{"interactions": {"bad_timestamp": 1},
                                   "items": {"empty_id": 2}}]))


def test_dead_letter_counts_by_field():
  dead = [{"table": "interactions", "reason": "missing_field", "field": "user_id"},
          {"table": "interactions", "reason": "missing_field", "field": "item_id"},
          {"table": "interactions", "reason": "missing_field", "field": "user_id"},
          {"table": "interactions", "reason": "malformed_row", "field": ""}]
  with BeamTestPipeline() as p:
    counts = T.dead_letter_counts(p | beam.Create(dead), by_field=True)
    assert_that(counts, equal_to([{"interactions": {
        "malformed_row": {"": 1}, "missing_field": {"item_id": 1, "user_id": 2}}}]))


def test_events_without_a_time_split_the_same_on_any_number_of_shards():
  # Two users without times, 8 events each, in two chunks: the random split does not depend on
  # how users are sharded.
  rows = [(u, f"i{k}", -1, "view", math.nan) for u in ("a", "b") for k in range(8)]
  chunks = [_events(rows[:5]).assign(position=range(5)),
            _events(rows[5:]).assign(position=range(5, 16))]
  cfg = prepare.SplitConfig(validation_fraction=0.2, test_fraction=0.2, min_interactions=5)
  frame, _ = prepare.dedupe(pd.concat(chunks, ignore_index=True))
  expected = [(s, u, i) for s, u, i in zip(*[prepare.temporal_split(frame, cfg)[c]
                                             for c in ("split", "user_id", "item_id")])]
  for shards in (1, 3):
    with BeamTestPipeline() as p:
      parts, _, _, stats = (p | beam.Create(chunks, reshuffle=False)
                            | T.SplitInteractions(cfg, num_shards=shards))
      rows_out = parts | beam.FlatMap(lambda e: [(e[0], r.user_id, r.item_id)
                                                 for r in T.unpack(e[2]).itertuples()])
      assert_that(rows_out, equal_to(expected), label="splits")
      total = (stats | beam.Map(lambda s: (s["without_time"], s["users_split_at_random"]))
               | beam.CombineGlobally(lambda xs: tuple(map(sum, zip(*xs))) if xs else (0, 0)))
      assert_that(total, equal_to([(16, 2)]), label="stats")
