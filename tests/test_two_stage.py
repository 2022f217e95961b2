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
from tfgrec.data import splits
from tfgrec.export import two_stage_module
from tfgrec.train import evaluate, exporter, trainer
from tfgrec.train import final_fit
from tfgrec.train import layout as layout_lib
from tfgrec.train import manifest as manifest_lib
from tfgrec.models import graph_tower
from tfgrec.ranking import fitting
from tfgrec.ranking import new_items as new_items_lib
from tfgrec.sources import base as sources_base
from tfgrec.train import two_stage as ranking_run

from tests import test_export, test_train

pytestmark = pytest.mark.minutes(3.2)  # tests/conftest.py: long files start first.

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
  module = exporter.build_module(config, k=5)
  path = export.save_module(module, str(workdir / "two_stage_models"), "recs")
  return config, module, path


@pytest.fixture(scope="module")
def trained_model(two_stage):
  """The two-stage run's graph tower, restored once: (model, inputs)."""
  return trainer.load_trained(two_stage[0])


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


def test_training_writes_every_artifact_and_a_manifest(two_stage):
  config, _, _ = two_stage
  layout = layout_lib.RunLayout(config.run_dir)
  manifest = manifest_lib.verify(layout, config)
  names = set(manifest.artifacts)
  assert {"serving_arrays", "serving_info", "item_encoder", "user_encoder", "ranker"} <= names
  assert {f"source:{k}" for k in ranking_run.load(config)[1]["sources"]} <= names
  # The final fit read every known event: training, validation and test.
  data = splits.load_eval_data(config.graph_dir)
  assert manifest.events["count"] == sum(
      len(f) for f in (data.train_events, data.validation_events, data.test_events))
  assert manifest.events["splits"] == ["train", "validation", "test"]
  assert manifest.events["latest"] == int(data.test_events["timestamp"].max())
  # A changed artifact fails the check, naming it.
  info = layout.final_file(final_fit.INFO)
  saved = open(info, "rb").read()
  try:
    with open(info, "ab") as f:
      f.write(b" ")
    with pytest.raises(manifest_lib.ManifestError, match="serving_info.*changed"):
      manifest_lib.verify(layout)
  finally:
    with open(info, "wb") as f:
      f.write(saved)
  # So does a config section the artifacts depend on.
  other = dataclasses.replace(config, ranking=dataclasses.replace(
      config.ranking, candidates=dataclasses.replace(config.ranking.candidates, ease=7)))
  with pytest.raises(manifest_lib.ManifestError, match="ranking"):
    manifest_lib.verify(layout, other)


def test_export_only_packages_the_artifacts(two_stage, tmp_path, monkeypatch):
  config, _, _ = two_stage
  layout = layout_lib.RunLayout(config.run_dir)

  def forbidden(*args, **kwargs):
    raise AssertionError("export must not fit or train")

  # Every fit and train entry point, and the graph tower, raise.
  for owner, name in [(sources_base.CandidateSource, "fit"), (fitting, "fit_sources"),
                      (fitting, "train_ranker"), (new_items_lib, "fit_new_item_boost"),
                      (ranking_run, "train"), (ranking_run.Stage, "__init__"),
                      (ranking_run, "served_new_item_boost"), (final_fit, "fit"),
                      (trainer, "train"), (trainer, "load_trained"),
                      (trainer.inputs_lib, "load_inputs"), (trainer.inputs_lib, "build_model"),
                      (graph_tower.GraphTower, "call"), (tf.keras.Model, "fit")]:
    monkeypatch.setattr(owner, name, forbidden)
  path = exporter.export_run(config, str(tmp_path / "models"), "recs", k=5)
  assert set(export.signatures_line(path).split(", ")) >= {"recommend", "recommend_at",
                                                          "encode_items", "encode_users"}
  # The SavedModel's tables are the artifacts'.
  arrays = np.load(layout.final_file(final_fit.ARRAYS))
  saved = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))

  def variable(prefix):
    return saved.get_tensor(prefix + "/.ATTRIBUTES/VARIABLE_VALUE")

  np.testing.assert_array_equal(variable("items"), arrays["item_embeddings"])
  np.testing.assert_array_equal(variable("users"), arrays["user_embeddings"])
  info = json.load(open(layout.final_file(final_fit.INFO)))
  keys = saved.get_variable_to_shape_map()
  for position, name in enumerate(info["source_order"]):
    source = sources_base.load_source(layout.final_source(name))
    mine = [saved.get_tensor(k) for k in keys if k.startswith(f"features/sources/{position}/")]
    assert mine and source.variables, name
    for v in source.variables:  # Each of the artifact's tables is in the SavedModel as it is.
      assert any(t.shape == tuple(v.shape) and np.array_equal(t, v.numpy()) for t in mine), (
          name, v.name)
  # The tower and the sources read one event set: the graph tower source's items are the
  # served item embeddings.
  tower_source = sources_base.load_source(layout.final_source("graph_tower"))
  np.testing.assert_allclose(tower_source.embeddings.numpy(), arrays["item_embeddings"],
                             atol=1e-5)


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
  # The boost is fit again for the test lists' share of new candidates; without it: a row
  # when there is one.
  with open(layout_lib.RunLayout(config.run_dir).evaluation_cache) as f:
    boost = json.load(f)["figures"]["new_item_boost"]
  assert 0 < boost["keep_share"] <= 1 and 0 <= boost["test_share"] <= 1
  assert boost["training"] == ranking_run.load(config)[1]["new_item_boost"]
  assert ("two-stage − new-item boost" in results) == (boost["boost"] > 0)
  with open(os.path.join(config.run_dir, "metrics.json")) as f:
    assert evaluate.TWO_STAGE in json.load(f)
  # Evaluation fits what its protocol needs and leaves the run's artifacts as they were.
  manifest_lib.verify(layout_lib.RunLayout(config.run_dir), config)

  # Evaluating again with other baselines reuses the two stages' rows (nothing they read
  # changed): the same figures, from ranker/evaluation.json.
  cache = layout_lib.RunLayout(config.run_dir).evaluation_cache
  key = json.load(open(cache))["key"]
  checkpoint = layout_lib.RunLayout(config.run_dir).ranker_checkpoint + ".index"
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


def test_the_graph_tower_source_scores_with_the_runs_picked_query(two_stage, trained_model):
  from tfgrec.sources import base  # pylint: disable=g-import-not-at-top
  from tfgrec.train import query as query_lib  # pylint: disable=g-import-not-at-top
  config, module, _ = two_stage
  model, inputs = trained_model
  _, info = ranking_run.load(config)
  assert info[ranking_run.TOWER_QUERY] is True
  query = query_lib.read_query(config)
  # The served model's space: the graph with every known event (the final fit's).
  tower = ranking_run.tower_space(model, config, inputs, splits.SERVING)
  assert (tower.half_life, tower.popularity_weight) == (
      query.half_life or 5.0, query.popularity_weight * config.tasks.temperature)
  np.testing.assert_allclose(np.linalg.norm(tower.user, axis=1), query.user_weight, rtol=1e-5)
  # The export stores each known user's part, and the served source is fit as in process.
  np.testing.assert_allclose(module.user_states.numpy(), tower.user, rtol=1e-5, atol=1e-6)
  source = module.features.sources[module.features.source_names.index("graph_tower")]
  assert (source.half_life, source.popularity_weight) == (
      tower.half_life, tower.popularity_weight)
  events = inputs.data.known_events(splits.SERVING)
  if tower.popularity_weight:  # The picked g may be 0: then the source has no prior.
    np.testing.assert_allclose(source.item_bias.numpy(), base.popularity_prior(
        events["item"], inputs.data.num_items, tower.popularity_weight), rtol=1e-5, atol=1e-6)
  else:
    assert not hasattr(source, "item_bias")
  # A known user's part reaches the source; an unknown user gets none.
  users = _vocab(config, "user")
  part = module._user_query(tf.constant([users[2], "nobody"])).numpy()  # pylint: disable=protected-access
  np.testing.assert_allclose(part[0], tower.user[2], rtol=1e-5, atol=1e-6)
  assert not part[1].any()
  # Off: the readout alone, as rankers trained before the option read it.
  off = ranking_run.tower_space(model, config, inputs, "test", picked_query=False)
  assert (off.half_life, off.popularity_weight) == (5.0, 0.0) and not off.user.any()


def test_recommend_at_defaults_equal_recommend_and_now_moves_the_time_features(two_stage):
  config, module, _ = two_stage
  users, items = _vocab(config, "user"), _vocab(config, "item")
  ids = tf.constant([users[2], "someone-new"])
  history = tf.constant([["", ""], [items[5], items[9]]])
  plain = module.recommend(ids, history)
  none = tf.constant([[""], [""]])  # No user attributes.
  at = module.recommend_at(ids, history, tf.fill([2, 2], tf.constant(-1, tf.int64)),
                           tf.constant([-1, -1], tf.int64), none)
  assert at["item_ids"].numpy().tolist() == plain["item_ids"].numpy().tolist()
  # Far in the past, before any event: nothing is trending or fresh yet.
  early = module.recommend_at(ids, history, tf.fill([2, 2], tf.constant(-1, tf.int64)),
                              tf.constant([1, 1], tf.int64), none)
  assert early["scores"].numpy().tolist() != plain["scores"].numpy().tolist()


def test_new_items_get_the_runs_boost_in_the_served_model(two_stage, trained_model):
  config, module, _ = two_stage
  ranker, info = ranking_run.load(config)
  assert 0.0 <= info["new_item_boost"] <= 8.0 and len(info["new_item_curve"]) == 33
  assert len(info[ranking_run.HOLDOUT_ROWS]) == len(ranker.members)
  # The served boost is priced for the served lists: the sources fit on every event, whose new
  # items (without any event) are rarer among the candidates than in the held-out lists.
  model, inputs = trained_model
  data = inputs.data
  events = data.known_events(splits.SERVING)
  stage = ranking_run.Stage(config, inputs, events,
                            ranking_run.tower_space(model, config, inputs, "test"),
                            reuse=ranking_run.trained_sources(config), progress=False)
  served, keep = ranking_run.served_new_item_boost(config, ranker, info, stage, data)
  assert 0.0 <= served <= 8.0 and keep < 1.0
  assert float(module.new_item_boost.numpy()) == pytest.approx(served, abs=0.25)
  # The served model's new items: those without any event (the synthetic catalog has some).
  new = module.new_items.numpy()
  assert new.any() and not new[events["item"]].any()
  assert new.sum() == module.item_ids.shape[0] - len(np.unique(events["item"]))
  index = {item: i for i, item in enumerate(module.item_ids.numpy().astype(str))}
  users = tf.constant(_vocab(config, "user")[:8])
  history = tf.constant([[""]] * 8)

  def recommended_new(with_boost):
    saved, module.new_item_boost = module.new_item_boost, tf.constant(with_boost)
    try:
      ids = module._recommend(users, history)["item_ids"].numpy().astype(str)
    finally:
      module.new_item_boost = saved
    return np.array([[new[index[i]] for i in row] for row in ids])

  plain, pushed = recommended_new(0.0), recommended_new(1e4)
  # A huge boost puts the proposed new items first (a user may have none proposed).
  assert pushed.sum() > plain.sum() and pushed[:, 0].sum() >= len(pushed) // 2
  assert all(np.all(np.diff(row.astype(int)) <= 0) for row in pushed)


def test_explain_names_a_source_and_a_reason(two_stage):
  config, module, _ = two_stage
  users = _vocab(config, "user")
  recs = module.recommend(tf.constant([users[0]]), tf.constant([[""]]))["item_ids"]
  out = module.explain(tf.constant([users[0]]), tf.constant([[""]]), recs)
  sources = {s.decode() for s in out["source"].numpy()[0]}
  assert sources and sources <= set(ranking_run.load(config)[1]["sources"])
  reasons = [r.decode() for r in out["reason"].numpy()[0]]
  assert all(r.startswith(("similar to ", "trending", "new, like ")) for r in reasons), reasons


_NEW_USERS = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # The tokenizer ops of encode_items (stock TF Serving links them).
model = tf.saved_model.load(sys.argv[1])
r = json.loads(sys.argv[2])
n = len(r["users"])
encoded = model.signatures["encode_users"](attributes=tf.constant(r["attributes"]))
out = model.signatures["recommend_at"](
    user_id=tf.constant(r["users"]), history=tf.constant([[""]] * n),
    history_time=tf.fill([n, 1], tf.constant(-1, tf.int64)),
    now=tf.fill([n], tf.constant(-1, tf.int64)), user_attributes=tf.constant(r["attributes"]))
print(json.dumps({"embedding": encoded["embedding"].numpy().tolist(),
                  "item_ids": out["item_ids"].numpy().astype(str).tolist()}))
"""


def test_a_new_user_with_attributes_and_no_history_is_served_from_them(two_stage,
                                                                       trained_model):
  from tfgrec.data import attributes as attrs  # pylint: disable=g-import-not-at-top
  from tfgrec.graph import schema as gs  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  config, module, path = two_stage
  assert "encode_users" in module.signature_names
  spec = attrs.read_spec(config.graph_dir)["users"]
  groups = spec["age_group"]["values"]
  rows = [{"age_group": groups[0]}, {"age_group": groups[1]}, {"age_group": "unheard-of"},
          {}]
  request = {"users": ["new-a", "new-b", "new-c", "new-d"],
             "attributes": [[f"{k}={v}" for k, v in r.items()] or [""] for r in rows]}
  proc = subprocess.run([sys.executable, "-c", _NEW_USERS, path, json.dumps(request)],
                        capture_output=True, text=True, timeout=300, check=True)
  served = json.loads(proc.stdout.strip().splitlines()[-1])

  # In process, from the trained tower itself: the state of a user node with these attribute
  # values and no interaction (GraphTower.encode_new_users), the values mapped as the graph
  # job maps a users row.
  model, inputs = trained_model
  graph = inputs_lib.known_graph(config, inputs, "test")
  tower_inputs = {"graph": graph}
  if model.tower.text_projection is not None:
    tower_inputs["item_text"] = model.item_text_table()
  states = model.tower.side_round_states(tower_inputs)[gs.USER_ATTRIBUTE]
  vocab = attrs.vocabulary(spec)
  source = graph.edge_sets[gs.ATTRIBUTE_OF_USER].adjacency.source
  degree = tf.math.unsorted_segment_sum(tf.ones_like(source, tf.float32), source, len(vocab))
  values = tf.ragged.constant([[vocab.index(n) for n in attrs.node_ids(spec, r)] for r in rows],
                              tf.int64, ragged_rank=1)
  local = tf.math.l2_normalize(model.tower.encode_new_users(values, states, degree + 1.0),
                               axis=-1).numpy()
  embedding = np.asarray(served["embedding"])
  np.testing.assert_allclose(embedding[:3], local[:3], rtol=1e-4, atol=1e-5)
  assert not embedding[3].any()  # No known value: no state.
  assert not np.allclose(embedding[0], embedding[1], atol=1e-3)

  # recommend_at: the same answer in process; attributes change a new user's list, and a user
  # without any gets the list of a new user without history.
  n = len(rows)
  at = module.recommend_at(tf.constant(request["users"]), tf.constant([[""]] * n),
                           tf.fill([n, 1], tf.constant(-1, tf.int64)),
                           tf.fill([n], tf.constant(-1, tf.int64)),
                           tf.constant(request["attributes"]))
  assert served["item_ids"] == at["item_ids"].numpy().astype(str).tolist()
  plain = module.recommend(tf.constant(["new-d"]), tf.constant([[""]]))
  assert served["item_ids"][3] == plain["item_ids"].numpy().astype(str).tolist()[0]
  assert served["item_ids"][0] != served["item_ids"][3]
  assert served["item_ids"][0] != served["item_ids"][1]
  # A known user's attributes are already in their graph state: ignored.
  user = _vocab(config, "user")[0]
  known = module.recommend_at(tf.constant([user]), tf.constant([[""]]),
                              tf.constant([[-1]], tf.int64), tf.constant([-1], tf.int64),
                              tf.constant([request["attributes"][0]]))
  assert known["item_ids"].numpy().tolist() == module.recommend(
      tf.constant([user]), tf.constant([[""]]))["item_ids"].numpy().tolist()


def test_the_ranker_also_trains_on_users_as_new_users(two_stage, trained_model):
  from tfgrec.graph import schema as gs  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  config, module, _ = two_stage
  _, info = ranking_run.load(config)
  lists = ranking_run.load_lists(config)
  warm = np.unique(lists.users)
  assert info["new_user_lists"] == round(config.ranking.new_user_lists * len(warm)) > 0
  assert len(lists.users) == len(warm) + info["new_user_lists"]
  # A new user's list has no history: the user features say so.
  user_column = info["feature_names"].index("user/log_history")
  new_rows = lists.features[len(warm):, :, user_column]
  assert np.all(new_rows[lists.valid[len(warm):]] == 0)
  assert np.any(lists.features[:len(warm), :, user_column] > 0)

  # The graph tower's query of those lists is the state the served model gives such a user.
  model, _ = trained_model
  users = warm[:4]
  queries = ranking_run.attribute_queries(model, config, users)
  assert not queries[np.setdiff1d(np.arange(len(queries)), users)].any()
  adjacency = model.graph.edge_sets[gs.USER_HAS_ATTRIBUTE].adjacency
  names = inputs_lib.read_vocab(config.graph_dir, gs.USER_ATTRIBUTE)
  rows = [[str(names[v]) for u_, v in zip(adjacency.source.numpy(), adjacency.target.numpy())
           if u_ == u] for u in users]
  assert all(len(r) == 1 for r in rows)
  served = module.encode_users(tf.constant(rows))["embedding"].numpy()
  # (Training reads the states off the training graph, the export off the graph with the
  # validation events: the same values, summed in another order.)
  np.testing.assert_allclose(queries[users], served, rtol=1e-3, atol=2e-4)
  assert np.abs(queries[users] - served).max() < 0.01 * np.abs(served).max()


def test_refit_trained_sources_retrains_the_sequence_source_for_evaluation(
    two_stage, trained_model, monkeypatch):
  config, _, _ = two_stage
  model, inputs = trained_model
  fitted, real = {}, fitting.fit_sources

  def spy(make, events, *args, **kwargs):
    fitted.update({name: len(events["item"]) for name in make})
    return real(make, events, *args, **kwargs)

  monkeypatch.setattr(fitting, "fit_sources", spy)
  known = len(inputs.data.history_events("test"))  # Training + validation events.
  for refit in (False, True):
    fitted.clear()
    cfg = dataclasses.replace(config, ranking=dataclasses.replace(
        config.ranking, refit_trained_sources=refit, ablations=False))
    results, _ = ranking_run.evaluate(cfg, inputs, model, progress=False,
                                      measure=lambda fn: {"ndcg@20": 0.0})
    assert fitted["ease"] == known and "source: sequence" in results
    # The sequence source is refit on the same events only when asked; otherwise the saved
    # training fit is reused.
    assert fitted.get("sequence") == (known if refit else None), fitted
