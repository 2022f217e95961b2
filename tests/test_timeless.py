"""Logs without timestamps (contract v2): build-graph, the random split, recency, and a model
trained, evaluated, exported and asked for batch recommendations on such a log."""
import json
import math
import os
import types

import numpy as np
import pandas as pd
import pytest

from tfgrec import cli
from tfgrec import config as config_lib
from tfgrec.train import exporter
from tfgrec.beam import build_graph as job
from tfgrec.data import contract, prepare, readers, synthetic, writers
from tfgrec.graph import recency
from tfgrec.graph import schema as schema_lib

pytestmark = pytest.mark.minutes(1.3)  # tests/conftest.py: long files start first.

tf = schema_lib.tf
tfgnn = schema_lib.tfgnn

SYNTHETIC = synthetic.SyntheticConfig(users=60, items=120, interactions=2400, seed=11)


@pytest.fixture(scope="module")
def timeless(tmp_path_factory):
  """A synthetic log with its timestamps blanked, built with `tfgrec build-graph`.

  Returns (root dir, the interactions as written with their original times, build stats).
  (user, item) pairs are unique, so every training event is one edge.
  """
  root = tmp_path_factory.mktemp("timeless")
  tables = synthetic.generate(SYNTHETIC)
  inter = tables["interactions"].drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)
  tables["interactions"] = inter.assign(timestamp="")  # CSV: an empty timestamp column.
  writers.write_tables(tables, str(root / "raw"), "csv")
  assert cli.main(["build-graph", "--raw", str(root / "raw"), "--out", str(root / "graph"),
                   "--num-shards", "3"]) == 0
  stats = json.loads((root / "graph" / job.STATS_FILENAME).read_text())
  return root, inter, stats


def _splits(graph_dir):
  frames = []
  for split in prepare.SPLITS:
    folder = os.path.join(graph_dir, "splits", split)
    for name in sorted(os.listdir(folder)):
      frames.append(pd.read_parquet(os.path.join(folder, name)).assign(split=split))
  return pd.concat(frames, ignore_index=True)


def _graph(graph_dir):
  spec = schema_lib.graph_spec(schema_lib.read_schema(graph_dir))
  ds = tf.data.TFRecordDataset(os.path.join(graph_dir, job.GRAPH_FILENAME)).batch(1)
  return next(iter(ds.map(tfgnn.keras.layers.ParseExample(spec)))).merge_batch_to_components()


def test_every_row_without_a_time_is_accepted_and_becomes_an_event(timeless):
  root, inter, stats = timeless
  rows = len(inter)
  t = stats["tables"]["interactions"]
  assert (t["rows_in"], t["accepted"], t["dead_lettered"]) == (rows, rows, 0)
  assert stats["interactions"]["without_time"] == rows
  assert stats["split"]["users_split_at_random"] == stats["split"]["users"] == SYNTHETIC.users
  assert stats["contract_version"] == contract.CONTRACT_VERSION == 2
  splits = _splits(str(root / "graph"))
  assert len(splits) == rows and (splits["timestamp"] == contract.NO_TIME).all()
  # Every training event is an edge (pairs are unique): edges + held-out events = rows.
  edges = stats["graph"]["edge_sets"]["interacted"]
  assert edges == stats["split"]["train"] == (splits["split"] == "train").sum()
  assert edges + stats["split"]["validation"] + stats["split"]["test"] == rows
  graph = _graph(str(root / "graph"))
  assert int(graph.edge_sets["interacted"].total_size) == edges
  assert set(graph.edge_sets["interacted"]["timestamp"].numpy().tolist()) == {-1}
  # A user's events in a split file keep their input order.
  for _, group in splits.groupby(["split", "user_id"]):
    assert group["position"].is_monotonic_increasing


def test_the_split_is_random_seeded_and_the_same_as_in_process(timeless):
  root, inter, stats = timeless
  splits = _splits(str(root / "graph"))
  got = dict(zip(zip(splits["user_id"], splits["item_id"]), splits["split"]))
  # The job (3 shards, DirectRunner) gives exactly the in-process split of the whole log.
  frame, _, _ = readers.read_table([str(root / "raw" / "interactions.csv")], "interactions")
  frame, _ = prepare.dedupe(frame)
  local = prepare.temporal_split(frame, prepare.SplitConfig())
  assert got == dict(zip(zip(local["user_id"], local["item_id"]), local["split"]))
  # Another seed moves events between splits.
  other = prepare.temporal_split(frame, prepare.SplitConfig(seed=5))
  assert got != dict(zip(zip(other["user_id"], other["item_id"]), other["split"]))
  # Random, not temporal: most held-out test events are not the user's latest by the times
  # the log lost (a temporal split would take exactly those).
  timed = inter.assign(split=[got[(u, i)] for u, i in zip(inter["user_id"], inter["item_id"])])
  latest = timed.sort_values("timestamp").groupby("user_id").tail(1)
  assert (latest["split"] == "test").mean() < 0.5
  assert stats["split"]["test"] > 0 and stats["split"]["validation"] > 0


def test_recency_weights_of_a_user_without_times_are_all_one(timeless):
  from tfgrec.train import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  root, _, _ = timeless
  raw = _graph(str(root / "graph"))
  graph = recency.add_recency_features(raw, [5.0, 20.0, 80.0], conv_half_life=20.0)
  for name in ("interacted", "interacted_by"):
    np.testing.assert_array_equal(graph.edge_sets[name][recency.RECENCY].numpy(), 1.0)
    np.testing.assert_array_equal(graph.edge_sets[name][recency.RECENCY_WEIGHT].numpy(), 1.0)
  # Training's pair and history weights read the same ranks: all 1 too.
  edges = raw.edge_sets["interacted"]
  pairs = {"user": edges.adjacency.source.numpy(), "timestamp": edges["timestamp"].numpy()}
  np.testing.assert_array_equal(inputs_lib.history_weights(pairs, 10.0), 1.0)
  # Without any time there is no "before": the causal readout trains leave-one-out.
  pairs.update(item=edges.adjacency.target.numpy(), value=np.ones(len(pairs["user"]), np.float32))
  batch = next(iter(inputs_lib.training_dataset(types.SimpleNamespace(pairs=pairs), 64, seed=0,
                                                user_history_half_life=10.0, readout="causal")))
  assert "earlier_item" not in batch
  np.testing.assert_array_equal(batch["history_weight"].numpy(), 1.0)


def test_eval_history_weights_of_a_user_without_times_are_all_one(timeless):
  from tfgrec.data import splits  # pylint: disable=g-import-not-at-top
  from tfgrec.eval import baselines  # pylint: disable=g-import-not-at-top
  root, _, _ = timeless
  data = splits.load_eval_data(str(root / "graph"))
  np.testing.assert_array_equal(baselines.history_weights(data, 20.0, "test").weights, 1.0)


def test_mixed_log_keeps_times_and_dead_letters_malformed_ones(tmp_path):
  raw = tmp_path / "raw"
  raw.mkdir()
  lines = ["user_id,item_id,timestamp,event,value"]
  lines += [f"timed,i{k},{1700000000 + k},view," for k in range(6)]  # Split by time.
  lines += [f"none,i{k},,view," for k in range(6)]  # No time at all: random split.
  lines += [f"mixed,i{k},{1700000000 + k},view," for k in range(3)]  # Some with, some not:
  lines += [f"mixed,i{k},,view," for k in range(3, 6)]  # random split.
  lines += ["mixed,i9,yesterday,view,"]  # A malformed time is still refused.
  (raw / "interactions.csv").write_text("\n".join(lines) + "\n")
  out = tmp_path / "graph"
  stats = job.run(job.BuildGraphConfig(interactions=[str(raw / "interactions.csv")],
                                       out=str(out), num_shards=2))
  t = stats["tables"]["interactions"]
  assert (t["rows_in"], t["accepted"], t["dead_letter_reasons"]) == (19, 18,
                                                                     {"bad_timestamp": 1})
  dead = [json.loads(line) for line in open(out / "dead_letter" / "interactions.jsonl")]
  assert [(d["reason"], d["field"], d["value"]) for d in dead] == [
      ("bad_timestamp", "timestamp", "yesterday")]
  assert stats["interactions"]["without_time"] == 9
  assert stats["split"]["users_split_at_random"] == 2
  splits = _splits(str(out))
  timed = splits[splits["user_id"] == "timed"].set_index("item_id")["split"]
  assert timed["i5"] == "test" and timed["i4"] == "validation"  # The latest, by time.
  # mixed: its events without a time come first (older), its timed edges keep their time.
  mixed = splits[splits["user_id"] == "mixed"].sort_values(["timestamp", "position"])
  assert list(mixed["timestamp"])[:3] == [-1, -1, -1]
  assert sorted(mixed["timestamp"])[3:] == [1700000000, 1700000001, 1700000002]


def test_a_log_with_every_row_refused_exits_2_and_names_the_reasons(tmp_path, capsys):
  raw = tmp_path / "raw"
  raw.mkdir()
  (raw / "interactions.jsonl").write_text(
      '{"item_id": "i1"}\n' * 990 + '{"user_id": "u", "item_id": "i1", "timestamp": "x"}\n' * 10)
  out = tmp_path / "graph"
  code = cli.main(["build-graph", "--raw", str(raw), "--out", str(out), "--num-shards", "2"])
  err = capsys.readouterr().err
  assert code == 2
  assert ("no interaction was accepted: 1,000 rows dead-lettered (missing_field 'user_id': 990, "
          f"bad_timestamp 'timestamp': 10); see {out}/dead_letter/") in err
  assert not [n for n in os.listdir(out) if n.startswith("graph-")]
  assert sorted(os.listdir(out)) == ["dead_letter", "stats.json"]
  assert len((out / "dead_letter" / "interactions.jsonl").read_text().splitlines()) == 1000


def test_train_evaluate_export_and_recommend_on_a_log_without_times(timeless, tmp_path):
  from tfgrec import batch, export, train  # pylint: disable=g-import-not-at-top
  from tfgrec.train import evaluate  # pylint: disable=g-import-not-at-top
  root, _, _ = timeless
  config = config_lib.load_config(None, {
      "graph_dir": str(root / "graph"), "run_dir": str(tmp_path / "run"),
      "model": {"dim": 16, "heads": 2, "rounds": 1, "use_text": False},
      "tasks": {"alignment_weight": 0.0},
      "train": {"epochs": 2, "batch_size": 512, "patience": 0},
      "ranking": {"sequence": {"epochs": 1, "dim": 8, "max_len": 10}, "ranker": {"epochs": 2, "ensemble": 1}, "ablations": False},
      "evaluate": {"ks": [10], "baselines": ["popularity", "ease", "ease_recency"]}})
  result = train.train(config, progress=False)
  assert len(result.history) == 2
  assert all(math.isfinite(h["loss"]) for h in result.history)

  metrics = evaluate.evaluate_run(config, progress=False)
  assert {"popularity", "EASE", "EASE + recency"} < set(metrics)
  for model, by_slice in metrics.items():
    for name in ("recall@10", "ndcg@10"):
      assert 0.0 <= by_slice["all"][name] <= 1.0, (model, by_slice["all"])

  module = exporter.build_module(config, k=5)
  path = export.save_module(module, str(tmp_path / "models"), "recs")
  items = open(root / "graph" / "vocab" / "item.txt").read().split()
  users = open(root / "graph" / "vocab" / "user.txt").read().split()
  requests = tmp_path / "recent.csv"  # A users file without times, too.
  requests.write_text("user_id,item_id,timestamp\n"
                      f"fresh,{items[3]},\nfresh,{items[7]},\n{users[0]},{items[1]},\n")
  out = str(tmp_path / "recs.jsonl")
  counts = batch.recommend_file(path, str(requests), out, k=5, progress=False)
  assert counts == {"rows_in": 3, "users": 2, "dead_letters": 0, "written": 2, "model": path}
  records = {r["user_id"]: r for r in map(json.loads, open(out))}
  for record in records.values():
    assert len(record["items"]) == len(set(record["items"])) == 5
    assert all(math.isfinite(s) for s in record["scores"])
    assert record["scores"] == sorted(record["scores"], reverse=True)
  assert not {items[3], items[7]} & set(records["fresh"]["items"])
