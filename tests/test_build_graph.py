"""The graph-building Beam job end to end (DirectRunner, in process)."""
import filecmp
import json
import os

import numpy as np
import pandas as pd
import pytest

from tfgrec.beam import build_graph as job
from tfgrec.data import prepare
from tfgrec.graph import build
from tfgrec.graph import schema as schema_lib

tf = schema_lib.tf
tfgnn = schema_lib.tfgnn


def _run(raw_dir, out, **kwargs):
  files = sorted(os.listdir(raw_dir))
  cfg = job.BuildGraphConfig(
      interactions=[os.path.join(raw_dir, f) for f in files if f.startswith("interactions")],
      items=[os.path.join(raw_dir, f) for f in files if f.startswith("items")],
      users=[os.path.join(raw_dir, f) for f in files if f.startswith("users")],
      out=str(out), num_shards=3, **kwargs)
  return job.run(cfg)


@pytest.fixture(scope="module")
def small_graph(small_raw, tmp_path_factory):
  out = tmp_path_factory.mktemp("small_graph")
  return str(out), _run(small_raw, out)


def _parse_graph(graph_dir):
  schema = schema_lib.read_schema(graph_dir)
  spec = schema_lib.graph_spec(schema)
  ds = tf.data.TFRecordDataset(os.path.join(graph_dir, job.GRAPH_FILENAME)).batch(1)
  graph = next(iter(ds.map(tfgnn.keras.layers.ParseExample(spec))))
  return graph.merge_batch_to_components()


def test_malformed_logs_are_dead_lettered_and_accounted(malformed_raw, tmp_path):
  raw_dir, expected, good = malformed_raw
  stats = _run(raw_dir, tmp_path)
  for table in ("interactions", "items", "users"):
    t = stats["tables"][table]
    want = {}
    for (tbl, _, _), reason in expected.items():
      if tbl == table:
        want[reason] = want.get(reason, 0) + 1
    assert t["dead_letter_reasons"] == want
    assert t["rows_in"] == t["accepted"] + t["dead_lettered"]
    assert t["accepted"] == good[table]
  # Every expected dead letter is in the file with its reason and source line.
  got = {}
  for table in ("interactions", "items", "users"):
    with open(tmp_path / "dead_letter" / f"{table}.jsonl") as f:
      for line in f:
        d = json.loads(line)
        path, _, number = d["source"].rpartition(":")
        got[(d["table"], os.path.basename(path), int(number))] = d["reason"]
  assert got == expected
  assert stats["interactions"]["duplicates_collapsed"] == 1
  # i5 is only in the Parquet interactions, not in any catalog: accepted as an item without text.
  assert stats["interactions"]["items_not_in_catalog"]["items"] == 2  # i4 and i5.
  catalog = pd.read_parquet(tmp_path / "catalog.parquet")
  row = catalog.set_index("item_id").loc["i5"]
  assert not row["in_catalog"] and row["text"] == ""
  # The cold catalog item (no interaction) is a node with its text and categories.
  cold = catalog.set_index("item_id").loc["i7"]
  assert cold["in_catalog"] and cold["text"] == "Cold item nobody saw | Action, Drama"
  # The first definition of a duplicated item wins.
  assert catalog.set_index("item_id").loc["i1"]["title"] == "Heat (1995)"
  # Users keep their attributes; a user without interactions is flagged, not a node.
  users = pd.read_parquet(tmp_path / "users.parquet").set_index("user_id")
  assert json.loads(users.loc["u1", "attributes"]) == {"country": "DE", "plan": "premium"}
  assert users.loc["u1", "has_interactions"] and not users.loc["never-active", "has_interactions"]
  assert "never-active" not in (tmp_path / "vocab" / "user.txt").read_text().split()


def test_graph_round_trip_through_parse_example(small_graph):
  graph_dir, stats = small_graph
  graph = _parse_graph(graph_dir)
  g = stats["graph"]
  for name, n in g["node_sets"].items():
    assert int(graph.node_sets[name].total_size) == n
  for name, n in g["edge_sets"].items():
    assert int(graph.edge_sets[name].total_size) == n
  # Node i is vocabulary line i.
  with open(os.path.join(graph_dir, "vocab", "item.txt")) as f:
    items = f.read().splitlines()
  assert [s.decode() for s in graph.node_sets["item"]["id"].numpy()] == items
  # Edge features match the collapsed training events of the split files.
  train = pd.concat(pd.read_parquet(os.path.join(graph_dir, "splits", "train", f))
                    for f in sorted(os.listdir(os.path.join(graph_dir, "splits", "train"))))
  edges = prepare.collapse_edges(train)
  inter = graph.edge_sets["interacted"]
  users = np.array(open(os.path.join(graph_dir, "vocab", "user.txt")).read().splitlines())
  got = pd.DataFrame({
      "user_id": users[inter.adjacency.source.numpy()],
      "item_id": np.array(items)[inter.adjacency.target.numpy()],
      "value": inter["value"].numpy(), "timestamp": inter["timestamp"].numpy(),
      "count": inter["count"].numpy()}).sort_values(["user_id", "item_id"])
  pd.testing.assert_frame_equal(got.reset_index(drop=True), edges.reset_index(drop=True),
                                check_dtype=False)
  # interacted_by is the reverse of interacted, feature for feature.
  rev = graph.edge_sets["interacted_by"]
  fwd = set(zip(inter.adjacency.source.numpy(), inter.adjacency.target.numpy(),
                inter["timestamp"].numpy()))
  back = set(zip(rev.adjacency.target.numpy(), rev.adjacency.source.numpy(),
                 rev["timestamp"].numpy()))
  assert fwd == back


def test_split_files_partition_the_events(small_graph, small_raw):
  graph_dir, stats = small_graph
  total = 0
  users = {}
  for split in prepare.SPLITS:
    d = os.path.join(graph_dir, "splits", split)
    frame = pd.concat(pd.read_parquet(os.path.join(d, f)) for f in os.listdir(d))
    assert len(frame) == stats["split"][split]
    total += frame["count"].sum()
    users[split] = frame.groupby("user_id")["timestamp"]
  raw = pd.read_csv(os.path.join(small_raw, "interactions.csv"))
  assert total == len(raw)
  # Per user, validation and test events come after every train event.
  last_train = users["train"].max()
  first_test = users["test"].min()
  common = last_train.index.intersection(first_test.index)
  assert len(common) > 0
  assert (first_test[common] >= last_train[common]).all()


def test_same_input_gives_byte_identical_outputs(small_raw, small_graph, tmp_path):
  graph_dir, _ = small_graph
  _run(small_raw, tmp_path)
  cmp = filecmp.dircmp(graph_dir, str(tmp_path))

  def check(c):
    assert not c.left_only and not c.right_only, (c.left_only, c.right_only)
    _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
    assert not mismatch and not errors, mismatch
    for sub in c.subdirs.values():
      check(sub)

  check(cmp)


def test_pseudonymized_ids_and_no_salt_in_outputs(small_raw, tmp_path):
  salt = "pepper-0123456789"
  stats = _run(small_raw, tmp_path, pseudonymize_salt=salt)
  assert stats["interactions"]["pseudonymized"]
  users = open(tmp_path / "vocab" / "user.txt").read().splitlines()
  assert all(len(u) == 20 and not u.startswith("u0") for u in users)
  for root, _, files in os.walk(tmp_path):
    for name in files:
      with open(os.path.join(root, name), "rb") as f:
        assert salt.encode() not in f.read(), name


def test_stats_have_degrees_and_cold_items(small_graph):
  _, stats = small_graph
  g = stats["graph"]
  assert g["cold_items"] > 0 and g["cold_items_with_text"] > 0
  d = g["degrees"]["user.interacted"]
  assert d["nodes"] == g["node_sets"]["user"]
  assert d["min"] >= 1 and d["p50"] <= d["p90"] <= d["max"]


def test_build_tables_by_hand():
  edges = pd.DataFrame({"user_id": ["b", "a"], "item_id": ["x", "y"],
                        "value": np.float32([1, 2]), "timestamp": [5, 6], "count": [1, 3]})
  catalog = pd.DataFrame({"item_id": ["z"], "text": ["Z | C"], "categories": [("C",)]})
  t = build.make_tables(edges, catalog)
  assert list(t.users) == ["a", "b"] and list(t.items) == ["x", "y", "z"]
  assert list(t.item_text) == ["", "", "Z | C"]
  assert t.item_category.tolist() == [[2, 0]]
  assert t.edges[["user", "item", "count"]].values.tolist() == [[0, 1, 3], [1, 0, 1]]
  graph = build.parse(build.serialize(build.to_graph_tensor(t)))
  assert graph.node_sets["item"]["has_text"].numpy().tolist() == [0, 0, 1]
  assert graph.edge_sets["has_item"].adjacency.target.numpy().tolist() == [2]


def test_multi_process_direct_runner_gives_the_same_graph(small_raw, small_graph, tmp_path):
  graph_dir, _ = small_graph
  files = sorted(os.listdir(small_raw))
  cfg = job.BuildGraphConfig(
      interactions=[os.path.join(small_raw, f) for f in files if f.startswith("interactions")],
      items=[os.path.join(small_raw, f) for f in files if f.startswith("items")],
      users=[os.path.join(small_raw, f) for f in files if f.startswith("users")],
      out=str(tmp_path), num_shards=3)
  job.run(cfg, ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
  for name in ("graph-00000-of-00001.tfrecord", "stats.json", "catalog.parquet",
               "attributes.json"):
    assert filecmp.cmp(os.path.join(graph_dir, name), tmp_path / name, shallow=False), name


def test_no_accepted_interaction_raises_and_leaves_no_graph(small_raw, tmp_path):
  # A directory holding a finished graph, rebuilt from a log whose every row is refused: the
  # old graph must not survive to look like this run's result.
  out = tmp_path / "graph"
  _run(small_raw, out)
  assert (out / job.GRAPH_FILENAME).exists()
  raw = tmp_path / "raw"
  raw.mkdir()
  (raw / "interactions.jsonl").write_text(
      '{"item_id": "i1", "timestamp": 1}\n' * 4 + '{"user_id": "u", "item_id": "i1", '
      '"timestamp": "soon"}\n' + '{"user_id": "", "item_id": "i1"}\n' * 2)
  with pytest.raises(job.NoTrainingDataError) as info:
    _run(raw, out)
  assert isinstance(info.value, ValueError)  # The CLI exits 2 on it.
  assert str(info.value) == (
      "no interaction was accepted: 7 rows dead-lettered (missing_field 'user_id': 4, empty_id "
      f"'user_id': 2, bad_timestamp 'timestamp': 1); see {out}/dead_letter/")
  assert sorted(os.listdir(out)) == ["dead_letter", job.STATS_FILENAME]
  stats = json.loads((out / job.STATS_FILENAME).read_text())
  assert stats["graph"] is None and stats["error"] == str(info.value)
  assert stats["tables"]["interactions"]["dead_letter_fields"]["missing_field"] == {"user_id": 4}
  assert info.value.stats == stats


def test_empty_interactions_file_is_an_error(tmp_path):
  raw = tmp_path / "raw"
  raw.mkdir()
  (raw / "interactions.csv").write_text("user_id,item_id,timestamp\n")
  with pytest.raises(job.NoTrainingDataError, match="the interactions files hold no rows"):
    _run(raw, tmp_path / "graph")
  assert not (tmp_path / "graph" / job.GRAPH_FILENAME).exists()
