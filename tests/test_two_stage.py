"""The two stages of a run: train (sources + ranker), evaluate (sources alone, ablations), export
(both stages in one SavedModel, served by TensorFlow alone)."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfgrec import export
from tfgrec.export import two_stage_module
from tfgrec.ranking import run as ranking_run
from tfgrec.train import evaluate, trainer

from tests import test_export, test_train

tf = trainer.tf

workdir = test_train.workdir  # Module-scoped fixtures: the synthetic graph and tiny BERT.

SMALL = {"enabled": True, "sequence": {"epochs": 2, "dim": 16, "max_len": 20},
         "ranker": {"epochs": 3, "patience": 3, "ensemble": 2}, "ablations": True,
         "ablation_ensemble": 1,
         "candidates": {"ease": 30, "graph_filter": 30, "sequence": 30, "graph_tower": 20,
                        "text": 20, "trending": 20, "fresh": 20}}

_LOADER = test_export._LOADER  # A fresh process with TensorFlow and tensorflow-text only.


@pytest.fixture(scope="module")
def two_stage(workdir):
  config = test_train._config(workdir, "two_stage", train={"epochs": 2}, ranking=SMALL)
  trainer.train(config, progress=False)
  module = export.build_module(config, k=5)
  path = export.save_module(module, str(workdir / "two_stage_models"), "recs")
  return config, module, path


def _vocab(config, name):
  with open(os.path.join(config.graph_dir, "vocab", f"{name}.txt")) as f:
    return f.read().split()


def test_training_saves_a_ranker_over_every_source(two_stage):
  config, _, _ = two_stage
  ranker, info = ranking_run.load(config)
  assert set(info["sources"]) == {"ease", "graph_filter", "sequence", "graph_tower", "text",
                                  "trending", "fresh"}
  assert ranker.num_features == len(info["feature_names"]) == len(info["feature_groups"])
  assert {"text", "category", "popularity", "user", "source:sequence"} <= set(
      info["feature_groups"])
  assert 0 < info["candidate_recall"] <= 1 and info["epochs"] >= 1


def test_evaluate_scores_the_two_stages_each_source_and_the_ablations(two_stage):
  config, _, _ = two_stage
  results = evaluate.evaluate_run(config, baselines=["popularity"], progress=False)
  assert list(results)[0] == evaluate.TWO_STAGE
  for name in ["source: ease", "source: sequence", "source: text", "two-stage − none",
               "two-stage − text",
               "two-stage − source:trending", evaluate.FULL_MODEL, "popularity"]:
    assert name in results, sorted(results)
    assert 0 <= results[name]["all"]["ndcg@20"] <= 1
  assert "cold_items" in results[evaluate.TWO_STAGE]
  with open(os.path.join(config.run_dir, "metrics.json")) as f:
    assert evaluate.TWO_STAGE in json.load(f)

  # Evaluating again with other baselines reuses the two stages' rows (nothing they read
  # changed): the same figures, from ranker/evaluation.json.
  cache = os.path.join(ranking_run.ranker_dir(config), ranking_run.EVALUATION)
  key = json.load(open(cache))["key"]
  checkpoint = os.path.join(ranking_run.ranker_dir(config), ranking_run.CHECKPOINT + ".index")
  saved = open(checkpoint, "rb").read()
  again = evaluate.evaluate_run(config, baselines=["ease"], progress=False)
  assert again[evaluate.TWO_STAGE] == results[evaluate.TWO_STAGE]
  assert again["two-stage − text"] == results["two-stage − text"] and "EASE" in again
  # What the rows read is in the key: another ranker, or other ranking settings, change it.
  base_key = ranking_run._evaluation_key(config)
  assert key.startswith(base_key + ":")
  with open(checkpoint, "ab") as f:
    f.write(b"x")
  assert ranking_run._evaluation_key(config) != base_key
  with open(checkpoint, "wb") as f:
    f.write(saved)
  other = dataclasses.replace(config, ranking=dataclasses.replace(config.ranking,
                                                                  ablation_ensemble=3))
  assert ranking_run._evaluation_key(other) != base_key == ranking_run._evaluation_key(config)


def test_the_saved_two_stage_model_answers_the_same_in_a_fresh_tensorflow_process(two_stage):
  config, module, path = two_stage
  assert isinstance(module, two_stage_module.TwoStageModule)
  users, items = _vocab(config, "user"), _vocab(config, "item")
  request = {"users": [users[0], "someone-new", "nobody"],
             "history": [["", ""], [items[3], items[7]], ["", ""]]}
  proc = subprocess.run([sys.executable, "-c", _LOADER, path, json.dumps(request)],
                        capture_output=True, text=True, timeout=300, check=True)
  served = json.loads(proc.stdout.strip().splitlines()[-1])
  assert served["foreign"] == []  # Only TensorFlow (and tensorflow-text) was imported.
  assert "recommend_at" in served["signatures"]
  local = module.recommend(tf.constant(request["users"]), tf.constant(request["history"]))
  assert served["item_ids"] == local["item_ids"].numpy().astype(str).tolist()
  np.testing.assert_allclose(served["scores"], local["scores"].numpy(), rtol=1e-4, atol=1e-5)
  assert all(len(set(row)) == 5 and "" not in row for row in served["item_ids"])
  assert not {items[3], items[7]} & set(served["item_ids"][1])


def test_a_known_users_fresh_history_counts(two_stage):
  config, module, _ = two_stage
  users, items = _vocab(config, "user"), _vocab(config, "item")
  user = users[1]
  before = module.recommend(tf.constant([user]), tf.constant([[""]]))["item_ids"].numpy()[0]
  fresh = [before[0].decode(), before[1].decode(), items[11]]
  after = module.recommend(tf.constant([user]), tf.constant([fresh]))["item_ids"].numpy()[0]
  after = [a.decode() for a in after]
  assert after != [b.decode() for b in before]
  assert not set(fresh) & set(after)  # The fresh events are known items now.


def test_recommend_at_defaults_equal_recommend_and_now_moves_the_time_features(two_stage):
  config, module, _ = two_stage
  users, items = _vocab(config, "user"), _vocab(config, "item")
  ids = tf.constant([users[2], "someone-new"])
  history = tf.constant([["", ""], [items[5], items[9]]])
  plain = module.recommend(ids, history)
  at = module.recommend_at(ids, history, tf.fill([2, 2], tf.constant(-1, tf.int64)),
                           tf.constant([-1, -1], tf.int64))
  assert at["item_ids"].numpy().tolist() == plain["item_ids"].numpy().tolist()
  # Far in the past, before any event: nothing is trending or fresh yet.
  early = module.recommend_at(ids, history, tf.fill([2, 2], tf.constant(-1, tf.int64)),
                              tf.constant([1, 1], tf.int64))
  assert early["scores"].numpy().tolist() != plain["scores"].numpy().tolist()


def test_explain_names_a_source_and_a_reason(two_stage):
  config, module, _ = two_stage
  users = _vocab(config, "user")
  recs = module.recommend(tf.constant([users[0]]), tf.constant([[""]]))["item_ids"]
  out = module.explain(tf.constant([users[0]]), tf.constant([[""]]), recs)
  sources = {s.decode() for s in out["source"].numpy()[0]}
  assert sources and sources <= set(ranking_run.load(config)[1]["sources"])
  reasons = [r.decode() for r in out["reason"].numpy()[0]]
  assert all(r.startswith(("similar to ", "trending", "new, like ")) for r in reasons), reasons
