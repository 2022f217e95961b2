"""Every input the raw-log contract allows goes through the whole flow.

Each shape of log (schemas/README.md: only `interactions` with `user_id` and `item_id` is
required) is written with pandas and run as a user runs it, each command a `tfgrec` subprocess:
build-graph -> train -> export -> recommend. Shapes that one log can cover share it:

  bare               `user_id,item_id` alone: no timestamp, no value, no items table
  no_items           no items table; interactions with timestamps and no `value`
  no_categories      items with title and description, no categories
  no_text_timeless   items with categories and no title or description; implicit events (an
                     `event` column) without timestamps or values; JSONL
  id_only_items      items with `item_id` alone; ISO-8601 timestamps and values; Parquet

Every shape gets the same tiny config (the tiny test BERT, a small tower, two stages with small
candidate counts, one epoch of the sequence source). A shape costs about 100 s of CPU (four
TensorFlow processes): `bare` runs in the default suite, the others with `make test-slow`.
"""
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf  # After tfgrec (tests/conftest.py): Keras 2.
import yaml

from tfgrec import text

pytestmark = pytest.mark.minutes(2.0)  # tests/conftest.py: long files start first.

TFGREC = os.path.join(os.path.dirname(sys.executable), "tfgrec")
USERS, ITEMS, CATALOG, K = 120, 80, 90, 5  # Catalog items ITEMS.. have no interaction (cold).
GENRES = ["Action", "Comedy", "Drama", "Horror", "Western"]
NOUNS = ["river", "night", "garden", "machine", "harbor", "winter", "signal", "empire"]
ADJECTIVES = ["silent", "broken", "golden", "last", "hidden", "distant"]


def _events(seed: int = 0) -> pd.DataFrame:
  """USERS users with a taste for one genre and 8-20 distinct items each, in time order."""
  rng = np.random.default_rng(seed)
  rows = []
  for u in range(USERS):
    taste = u % len(GENRES)
    mine = [i for i in range(ITEMS) if i % len(GENRES) == taste]
    n = int(rng.integers(8, 21))
    picks = rng.choice(mine, size=min(n // 2 + 2, len(mine)), replace=False).tolist()
    picks += [i for i in rng.permutation(ITEMS).tolist() if i not in picks][:n - len(picks)]
    for j, i in enumerate(rng.permutation(picks).tolist()):
      rows.append({"user_id": f"u{u}", "item_id": f"m{i}",
                   "timestamp": 1_700_000_000 + 3_600 * u + 600 * j,
                   "event": "rating", "value": float(rng.integers(1, 6))})
  return pd.DataFrame(rows)


def _catalog() -> pd.DataFrame:
  """CATALOG items: a title, a description and one or two genres each."""
  rows = []
  for i in range(CATALOG):
    title = f"{ADJECTIVES[i % len(ADJECTIVES)]} {NOUNS[i % len(NOUNS)]} {i}"
    genres = [GENRES[i % len(GENRES)]] + ([GENRES[(i + 2) % len(GENRES)]] if i % 3 == 0 else [])
    rows.append({"item_id": f"m{i}", "title": title,
                 "description": f"A {NOUNS[(i + 3) % len(NOUNS)]} story.", "categories": genres})
  return pd.DataFrame(rows)


def _write(raw, shape: str) -> pd.DataFrame:
  """Writes the raw logs of `shape` to `raw`; returns the interactions written."""
  os.makedirs(raw)
  events, catalog = _events(), _catalog()
  path = lambda name: os.path.join(raw, name)
  if shape == "no_items":
    inter = events[["user_id", "item_id", "timestamp"]]
    inter.to_csv(path("interactions.csv"), index=False)
  elif shape == "bare":
    inter = events[["user_id", "item_id"]]
    inter.to_csv(path("interactions.csv"), index=False)
  elif shape == "no_categories":
    inter = events
    inter.to_csv(path("interactions.csv"), index=False)
    catalog[["item_id", "title", "description"]].to_csv(path("items.csv"), index=False)
  elif shape == "no_text_timeless":
    kinds = np.where(np.arange(len(events)) % 4 == 0, "purchase", "view")
    inter = events[["user_id", "item_id"]].assign(event=kinds)
    inter.to_json(path("interactions.jsonl"), orient="records", lines=True)
    catalog[["item_id", "categories"]].to_json(path("items.jsonl"), orient="records",
                                               lines=True)
  elif shape == "id_only_items":
    iso = pd.to_datetime(events["timestamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    inter = events[["user_id", "item_id", "value"]].assign(timestamp=iso)
    inter.to_parquet(path("interactions.parquet"), index=False)
    catalog[["item_id"]].to_parquet(path("items.parquet"), index=False)
  else:
    raise ValueError(f"unknown shape {shape!r}")
  return inter


def _run(*args, cwd):
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # As a user's shell: the CLI quiets TensorFlow itself.
  start = time.time()
  proc = subprocess.run([TFGREC, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                        timeout=600, env=env)
  print(f"{time.time() - start:6.1f}s  tfgrec {' '.join(map(str, args))[:100]}")
  assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
  assert "Traceback" not in proc.stderr, (args, proc.stderr[-3000:])
  return proc


def _signatures(path: str):
  """{signature: (input names, output names)} of the SavedModel at `path`, from its proto."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
  (graph,) = proto.meta_graphs
  return {name: (set(s.inputs), set(s.outputs)) for name, s in graph.signature_def.items()}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A folder with the tiny BERT and the one tiny config every shape runs with."""
  root = tmp_path_factory.mktemp("contract_flow")
  catalog = _catalog()
  words = {w for t in catalog["title"].tolist() + catalog["description"].tolist() + GENRES
           for w in str(t).lower().replace(".", " ").split()}
  text.write_tiny_checkpoint(str(root / "bert"), words=sorted(words))
  (root / "tiny.yaml").write_text(yaml.safe_dump({
      "text": {"checkpoint": str(root / "bert"), "max_length": 16, "fine_tune": "off"},
      "model": {"dim": 8, "heads": 2},
      "train": {"epochs": 2, "batch_size": 1024, "patience": 0},
      "export": {"k": K},
      "ranking": {"candidates": {name: 10 for name in ("ease", "graph_filter", "sequence",
                                                       "graph_tower", "text", "trending",
                                                       "fresh")},
                  "sequence": {"epochs": 1, "dim": 8, "max_len": 10},
                  "ranker": {"epochs": 2, "ensemble": 1}, "ablations": False},
  }))
  return root


# The barest log in the default suite, the others under `make test-slow` (module docstring).
SHAPES = ["bare"] + [pytest.param(s, marks=pytest.mark.slow) for s in (
    "no_items", "no_categories", "no_text_timeless", "id_only_items")]


class _HashText:
  """A stand-in text tower: [B] strings -> [B, 16] one-hot of a hash bucket."""
  dim = 16

  def __call__(self, text, training=False):
    del training
    return tf.one_hot(tf.strings.to_hash_bucket_fast(text, self.dim), self.dim)


def test_item_encoder_of_a_graph_without_categories_ignores_them():
  from tfgrec.export import item_encoder  # pylint: disable=g-import-not-at-top
  from tfgrec.models import graph_tower  # pylint: disable=g-import-not-at-top
  tower = graph_tower.GraphTower(graph_tower.GraphTowerConfig(dim=8, rounds=2, heads=2,
                                                              dropout=0.0),
                                 num_users=3, num_items=4, num_categories=0,
                                 item_text_dim=_HashText.dim)
  encoder = item_encoder.NewItemEncoder(  # Raised "keys and values cannot be empty tensors".
      tower=tower, text_encoder=_HashText(), category_ids=[],
      category_states=[np.zeros([0, 8], np.float32)] * 2, category_degree=np.zeros([0]))
  given = encoder(tf.constant(["Heat", "Heat", ""]),
                  tf.constant([["Action", "Crime"], ["", ""], ["Drama", "\x00"]])).numpy()
  # Every category is unknown: it only enters the item's text ('title | cat1, cat2').
  as_text = encoder(tf.constant(["Heat | Action, Crime", "Heat", "Drama, \x00"]),
                    tf.zeros([3, 0], tf.string)).numpy()
  np.testing.assert_allclose(given, as_text, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(given, axis=1), 1.0, rtol=1e-5)


def test_nearest_items_of_a_catalog_without_text_follow_the_graph():
  from tfgrec.export import serving_module  # pylint: disable=g-import-not-at-top
  graph = tf.constant([[0.3, -0.2, 0.9, 0.1]])
  blended = serving_module.blend_scores(graph, tf.zeros([1, 4]), tf.constant([False] * 4),
                                        0.7).numpy()
  assert np.isfinite(blended).all(), blended  # Was NaN: no item's text score to start from.
  assert np.argsort(-blended[0]).tolist() == [2, 0, 3, 1]


@pytest.mark.parametrize("shape", SHAPES)
def test_build_train_export_recommend(workdir, shape):
  root = workdir / shape
  inter = _write(str(root / "raw"), shape)
  catalog = set(inter["item_id"]) | (set(_catalog()["item_id"]) if shape not in (
      "no_items", "bare") else set())

  _run("build-graph", "--raw", "raw", "--out", "graph", cwd=root)
  stats = json.loads((root / "graph" / "stats.json").read_text())
  assert stats["interactions"]["accepted"] == len(inter), stats["interactions"]
  nodes = stats["graph"]["node_sets"]
  assert nodes["item"] == len(catalog), nodes
  assert nodes["category"] == (len(GENRES) if shape == "no_text_timeless" else 0), nodes

  _run("train", "--config", workdir / "tiny.yaml", "--graph", "graph", "--run", "run", cwd=root)
  assert json.loads((root / "run" / "best.json").read_text())["epoch"] >= 1

  proc = _run("export", "--run", "run", "--base", "models", cwd=root)
  path = os.path.join(root, re.search(r"-> (\S+) \(signatures", proc.stdout).group(1))
  signatures = _signatures(path)
  assert {"recommend", "serving_default"} <= set(signatures), sorted(signatures)
  inputs, outputs = signatures["recommend"]
  assert {"user_id", "history"} <= inputs and outputs == {"item_ids", "scores"}, (inputs, outputs)

  # Known users with one of their own items as history, a new user with two items.
  known = ["u0", "u1", "u7"]
  requests = pd.DataFrame({"user_id": known + ["newcomer", "newcomer"],
                           "item_id": [inter.loc[inter["user_id"] == u, "item_id"].iloc[0]
                                       for u in known] + ["m3", "m8"]})
  requests.to_csv(root / "requests.csv", index=False)
  _run("recommend", "--model", "models/tfgrec", "--users", "requests.csv", "--k", K,
       "--explain", "--output", "recs.jsonl", cwd=root)
  records = [json.loads(line) for line in (root / "recs.jsonl").read_text().splitlines()]
  assert sorted(r["user_id"] for r in records) == sorted(known + ["newcomer"])
  seen = inter.groupby("user_id")["item_id"].apply(set).to_dict()
  seen["newcomer"] = {"m3", "m8"}
  for record in records:
    items = record["items"]
    assert len(items) == len(set(items)) == K and set(items) <= catalog, record
    assert not set(items) & seen[record["user_id"]], (record, seen[record["user_id"]])
    assert all(np.isfinite(record["scores"])), record
    assert len(record["because"]) == K, record

  if shape in ("bare", "no_categories"):
    # Served encode_items: a new item's categories, which the graph does not have (it has
    # none), are ignored as unknown, and its nearest catalog items have finite scores.
    import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import
    out = tf.saved_model.load(path).signatures["encode_items"](
        title=tf.constant(["silent river 7", "", "golden night"]),
        categories=tf.constant([["Action", "Drama"], ["Horror", ""], ["", ""]]),
        attributes=tf.zeros([3, 0], tf.string))
    np.testing.assert_allclose(tf.norm(out["embedding"], axis=1).numpy(), 1.0, rtol=1e-5)
    assert np.isfinite(out["scores"].numpy()).all(), out["scores"]
    assert {i for row in out["item_ids"].numpy().astype(str) for i in row} <= catalog
