"""Training runs on a small synthetic graph with planted taste clusters and a tiny random BERT."""
import json
import pathlib
import os

import numpy as np
import pytest

from tfgrec import config as config_lib
from tfgrec import text, train
from tfgrec.beam import build_graph as job
from tfgrec.data import splits, synthetic, writers
from tfgrec.eval import baselines, metrics
from tfgrec.train import callbacks as cb
from tfgrec.train import layout as layout_lib
from tfgrec.train import manifest as manifest_lib
from tfgrec.graph import recency
from tfgrec.train import query as query_lib
from tfgrec.train import trainer

pytestmark = pytest.mark.minutes(2.9)  # tests/conftest.py: long files start first.

tf = trainer.tf

SYNTHETIC = synthetic.SyntheticConfig(users=300, items=600, interactions=15_000, seed=3)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  root = tmp_path_factory.mktemp("train")
  raw = str(root / "raw")
  tables = synthetic.generate(SYNTHETIC)
  writers.write_tables(tables, raw, "csv")
  # Items carry a brand and a price, users an age group: attribute node sets on both sides.
  job.run(job.BuildGraphConfig(interactions=[os.path.join(raw, "interactions.csv")],
                               items=[os.path.join(raw, "items.csv")],
                               users=[os.path.join(raw, "users.csv")], out=str(root / "graph")))
  words = {w for title in tables["items"]["title"] for w in str(title).lower().split()}
  text.write_tiny_checkpoint(str(root / "bert"), words=sorted(words))
  return root


def _config(workdir, run, **sections):
  values = {
      "graph_dir": str(workdir / "graph"), "run_dir": str(workdir / run),
      "text": {"checkpoint": str(workdir / "bert"), "max_length": 16, "fine_tune": "off"},
      "model": {"dim": 32, "heads": 2, "rounds": 2},
      "train": {"epochs": 12, "batch_size": 1024, "learning_rate": 0.01, "patience": 0},
      # The graph tower alone; tests/test_two_stage.py trains the two stages.
      "ranking": {"enabled": False},
  }
  for name, value in sections.items():
    values[name] = {**values.get(name, {}), **value}
  return config_lib.load_config(None, values)


@pytest.fixture(scope="module")
def trained(workdir):
  return train.train(_config(workdir, "run"), progress=False)


def test_training_beats_popularity_clearly(trained, workdir):
  data = splits.load_eval_data(str(workdir / "graph"))
  emb = np.load(layout_lib.RunLayout(trained.run_dir).embeddings)
  user, item = emb["user"], emb["item"]
  model = metrics.evaluate(lambda u: user[u] @ item.T, data.test, [data.train, data.validation],
                           num_items=data.num_items, ks=[20])
  pop = metrics.evaluate(baselines.popularity_scorer(data), data.test,
                         [data.train, data.validation], num_items=data.num_items, ks=[20])
  # Measured (12 epochs, seeds 42 / 1 / 2): recall@20 0.156 / 0.160 / 0.153 and NDCG@20
  # 0.089 / 0.086 / 0.084, against popularity's 0.107 and 0.055.
  assert model["recall@20"] > 1.25 * pop["recall@20"], (model, pop)
  assert model["ndcg@20"] > 1.25 * pop["ndcg@20"], (model, pop)


def test_run_directory_holds_curves_best_and_logs(trained):
  history = trained.history
  assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
  assert {"loss", "retrieval_loss", "ranking_loss", "alignment_loss",
          "val_ndcg@20", "val_recall@20"} <= set(history[0])
  best = trained.best
  assert best["val_ndcg@20"] == max(h["val_ndcg@20"] for h in history)
  # Training lowers the retrieval loss.
  assert history[-1]["retrieval_loss"] < history[0]["retrieval_loss"]
  assert os.listdir(os.path.join(trained.run_dir, "logs"))  # TensorBoard event files.
  assert not trainer._has_backup(os.path.join(trained.run_dir, "backup"))  # Finished.
  saved = config_lib.load_config(layout_lib.RunLayout(trained.run_dir).config)
  assert saved.train.epochs == 12


def test_reload_gives_the_same_embeddings(trained, workdir):
  config = config_lib.load_config(layout_lib.RunLayout(trained.run_dir).config)
  model, inputs = train.load_trained(config)
  again = query_lib.embeddings(model, config, inputs, "validation", query_lib.read_query(config))
  saved = np.load(layout_lib.RunLayout(trained.run_dir).embeddings)
  np.testing.assert_allclose(again["user"], saved["user"], atol=1e-5)
  np.testing.assert_allclose(again["item"], saved["item"], atol=1e-5)
  assert saved["item_ids"].shape == (again["item"].shape[0],)


class _Interrupt(Exception):
  pass


class _Kill(tf.keras.callbacks.Callback):
  """Stands in for the process being killed after `epoch` finished epochs."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_end(self, epoch, logs=None):
    if epoch + 1 == self.epoch:
      raise _Interrupt()


class _FirstEpoch(tf.keras.callbacks.Callback):
  first = None

  def on_epoch_begin(self, epoch, logs=None):
    if self.first is None:
      self.first = epoch


def test_resume_continues_from_the_last_finished_epoch(workdir):
  config = _config(workdir, "resumed", train={"epochs": 4})
  with pytest.raises(_Interrupt):
    train.train(config, progress=False, extra_callbacks=[_Kill(2)])
  assert trainer._has_backup(os.path.join(config.run_dir, "backup"))
  first = _FirstEpoch()
  result = train.train(config, progress=False, extra_callbacks=[first])
  assert first.first == 2  # Epochs 1 and 2 were not run again.
  assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
  with open(layout_lib.RunLayout(config.run_dir).best) as f:
    assert json.load(f)["epoch"] == result.best["epoch"]


def test_ablations_and_fine_tuning_run(workdir):
  # A DCN click head shares the code path; fine-tuning re-encodes the batch's items through the
  # tiny BERT with gradients. (The graph-only and MF ablations train as baselines of
  # `tfgrec evaluate` in tests/test_readme.py.)
  for run, sections in [("dcn_click", {"tasks": {"ranking_head": "dcn", "ranking_target": "click",
                                                 "user_history_half_life": 0.0}}),
                        ("fine_tune", {"text": {"fine_tune": "on", "trainable_layers": 1}}),
                        ("causal", {"tasks": {"training_readout": "causal"}})]:
    config = _config(workdir, run, train={"epochs": 1}, **sections)
    result = train.train(config, progress=False)
    assert result.best["epoch"] == 1 and result.best["val_ndcg@20"] > 0
    if run == "fine_tune":
      encoder = result.model.text_encoder
      assert encoder is not None and encoder.trainable_weights


def test_cli_trains_and_evaluates_with_baselines_and_report(workdir, capsys):
  from tfgrec import cli  # pylint: disable=g-import-not-at-top
  run = workdir / "cli_run"
  config = workdir / "run.yaml"
  config.write_text(
      f"graph_dir: {workdir / 'graph'}\nrun_dir: {run}\n"
      f"text:\n  checkpoint: {workdir / 'bert'}\n  max_length: 16\n  fine_tune: 'off'\n"
      "model:\n  dim: 16\n  heads: 2\n  rounds: 1\n"
      "train:\n  epochs: 2\n  batch_size: 1024\n"
      "ranking:\n  enabled: false\n")  # The two stages through the CLI: tests/test_readme.py.
  assert cli.main(["train", "--config", str(config)]) == 0
  assert "best epoch" in capsys.readouterr().out
  assert cli.main(["evaluate", "--run", str(run),
                   "--baselines", "popularity,ease_recency,als,mf,text_only"]) == 0
  out = capsys.readouterr().out
  with open(run / "metrics.json") as f:
    results = json.load(f)
  assert set(results) == {"full model", "popularity", "EASE + recency", "ALS",
                          "MF (ID two-tower)", "text only"}
  for model in results.values():
    assert set(model) == {"all", "cold_items", "long_tail", "short_history"}
    assert 0 <= model["all"]["ndcg@20"] <= 1 and "recall@50" in model["all"]
  assert results["EASE + recency"]["all"]["recall@20"] > results["popularity"]["all"]["recall@20"]
  report = (run / "report.md").read_text()
  assert "full model" in report and "ALS" in report
  for png in ("comparison.png", "slices.png", "training_curves.png"):
    assert (run / png).read_bytes()[:4] == b"\x89PNG"
  assert "full model" in out  # The headline table.
  # The run was trained in full (its final fit and manifest); the MF baseline, never served,
  # was not, and evaluation left the run's artifacts as they were.
  layout = layout_lib.RunLayout(str(run))
  assert (run / "manifest.json").exists() and not os.path.exists(
      layout_lib.RunLayout(layout.baseline("mf")).manifest)
  manifest_lib.verify(layout)
  # An unknown key is a clear error with exit code 2.
  config.write_text("modle: {}\n")
  assert cli.main(["train", "--config", str(config)]) == 2
  assert "unknown config key 'modle'" in capsys.readouterr().err


def test_query_is_picked_on_validation_and_used_by_the_run(trained):
  config = config_lib.load_config(layout_lib.RunLayout(trained.run_dir).config)
  saved = json.loads(pathlib.Path(layout_lib.RunLayout(trained.run_dir).query).read_text())
  picked = query_lib.read_query(config)
  assert (picked.user_weight, picked.half_life, picked.popularity_weight) == (
      saved["user_weight"], saved["half_life"], saved["popularity_weight"])
  key = lambda g: (g["user_weight"], g["half_life"], g["popularity_weight"])
  grid = {key(g): g["val_ndcg@20"] for g in saved["grid"]}
  # The training query is the first candidate, then the (weight, half-life) grid without a
  # prior, then the prior's weights with the best of those; none beats the pick.
  assert key(saved["grid"][0]) == (1.0, 10.0, 0.0)
  readouts = [q for q in grid if q[2] == 0.0]
  assert len(readouts) == 4 * 6  # (1, 10) is also in the grid.
  best_readout = max(readouts, key=grid.get)
  priors = [q for q in grid if q[2] > 0.0]
  assert sorted(q[2] for q in priors) == [0.25, 0.5, 0.75, 1.0]
  assert all(q[:2] == best_readout[:2] for q in priors)
  assert saved["val_ndcg@20"] == max(grid.values()) == grid[key(saved)]
  # The training query's figure is the best epoch's (the same validation measure).
  np.testing.assert_allclose(saved["training_query_val_ndcg@20"], trained.best["val_ndcg@20"],
                             atol=1e-6)
  # Recomputed: the picked query's validation NDCG@20 is what query.json says.
  model, inputs = train.load_trained(config)
  emb = query_lib.embeddings(model, config, inputs, "validation", picked)
  value = cb.validation_metrics(emb, inputs.data, 20)["val_ndcg@20"]
  np.testing.assert_allclose(value, saved["val_ndcg@20"], atol=1e-6)


def test_query_weighs_the_user_state_and_the_readout_by_hand(trained):
  config = config_lib.load_config(layout_lib.RunLayout(trained.run_dir).config)
  model, inputs = train.load_trained(config)
  states = model.states()
  user = states["user"].numpy()
  item = states["item"].numpy()
  item /= np.linalg.norm(item, axis=1, keepdims=True)
  user /= np.linalg.norm(user, axis=1, keepdims=True)
  pairs = inputs.pairs
  weight = recency.recency_weights(pairs["user"], pairs["timestamp"], 2.0)
  sums = np.zeros_like(user)
  np.add.at(sums, pairs["user"], weight[:, None] * item[pairs["item"]])
  readout = sums / np.bincount(pairs["user"], weights=weight, minlength=len(user))[:, None]
  for a in (0.0, 0.5):
    emb = query_lib.embeddings(model, config, inputs, "validation", query_lib.Query(a, 2.0, 0.0))
    expected = a * user + readout
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(emb["user"], expected, atol=1e-5)
    np.testing.assert_allclose(emb["item"], item, atol=1e-5)
    assert "item_bias" not in emb
  # The popularity prior: g * T * (log p - max log p), p = (n + 1) / (N + I), training counts.
  emb = query_lib.embeddings(model, config, inputs, "validation", query_lib.Query(0.5, 2.0, 0.5))
  counts = np.bincount(pairs["item"], minlength=len(item))
  log_p = np.log((counts + 1.0) / (counts.sum() + len(item)))
  np.testing.assert_allclose(emb["item_bias"], 0.5 * config.tasks.temperature
                             * (log_p - log_p.max()), atol=1e-6)
  scores = cb.embedding_scorer(emb)(np.array([0, 3]))
  np.testing.assert_allclose(scores, emb["user"][[0, 3]] @ item.T + emb["item_bias"], atol=1e-5)


def test_test_split_history_adds_the_validation_events(trained):
  config = config_lib.load_config(layout_lib.RunLayout(trained.run_dir).config)
  model, inputs = train.load_trained(config)
  default = model.embeddings()
  same = model.embeddings(history=train.known_history(config, inputs, "validation"))
  np.testing.assert_allclose(same["user"], default["user"], atol=1e-5)
  later = model.embeddings(history=train.known_history(config, inputs, "test"))
  np.testing.assert_allclose(later["item"], default["item"], atol=1e-6)
  moved = np.abs(later["user"] - default["user"]).max(axis=1)
  has_validation = inputs.data.validation.sizes() > 0
  assert (moved[has_validation] > 1e-4).all() and (moved[~has_validation] < 1e-5).all()
  # The graph with the validation events as edges moves the tower's states too.
  graph = train.known_graph(config, inputs, "test")
  assert (int(graph.edge_sets["interacted"].total_size)
          == len(inputs.pairs["user"]) + len(inputs.data.validation_events))
  assert train.known_graph(config, inputs, "validation") is inputs.graph
  both = model.embeddings(history=train.known_history(config, inputs, "test"), graph=graph)
  assert not np.allclose(both["item"], default["item"])


def test_learning_rate_halves_on_each_plateau_and_training_stops_after_patience(tmp_path):
  # Validation NDCG per epoch, scripted: better at 1 and 2, then flat.
  scores = iter([0.1, 0.2, 0.15, 0.15, 0.19, 0.18, 0.17, 0.16])

  class Scripted(cb.ValidationCallback):

    def evaluate(self):
      value = next(scores)
      return {f"val_{m}@{self.k}": value for m in ("ndcg", "recall", "hr", "mrr")}

  model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
  model.compile(tf.keras.optimizers.Adam(0.01), loss="mse")
  callback = Scripted(str(tmp_path), None, None, patience=5, verbose=False,
                      lr_decay_patience=2, lr_decay_factor=0.5)
  history = model.fit(np.zeros([4, 2]), np.zeros([4, 1]), epochs=8, verbose=0,
                      callbacks=[callback])
  rates = history.history["learning_rate"]
  # Epochs 3..7 wait 1..5 epochs after the best (2): halved after waits 2 and 4, stop at 5.
  assert len(rates) == 7
  np.testing.assert_allclose(rates, [0.01, 0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])
  assert callback.best["epoch"] == 2


def test_training_batches_cover_every_pair_once_in_a_new_order_each_epoch():
  from tfgrec.train import inputs as inputs_lib
  columns = {"user": np.arange(10, dtype=np.int32),
             "value": np.arange(10, dtype=np.float32) * 2.0}
  dataset = inputs_lib.shuffled_batches(columns, batch_size=4, seed=7)
  epochs = [[{k: v.numpy() for k, v in b.items()} for b in dataset] for _ in range(3)]
  for batches in epochs:
    assert [len(b["user"]) for b in batches] == [4, 4, 2]  # The last batch holds the rest.
    users = np.concatenate([b["user"] for b in batches])
    assert sorted(users.tolist()) == list(range(10))  # Every row once a pass.
    for b in batches:  # Columns stay aligned row by row.
      np.testing.assert_array_equal(b["value"], b["user"] * 2.0)
  orders = [np.concatenate([b["user"] for b in batches]).tolist() for batches in epochs]
  assert orders[0] != orders[1] != orders[2]  # Reshuffled every epoch ...
  again = inputs_lib.shuffled_batches(columns, batch_size=4, seed=7)
  assert np.concatenate([b["user"].numpy() for b in again]).tolist() == orders[0]  # ... seeded.
  other = inputs_lib.shuffled_batches(columns, batch_size=4, seed=8)
  assert np.concatenate([b["user"].numpy() for b in other]).tolist() != orders[0]
  whole = list(inputs_lib.shuffled_batches(columns, batch_size=64, seed=7))
  assert len(whole) == 1 and len(whole[0]["user"]) == 10


def _earlier_by_pair(pairs, half_life, batch_size=64):
  """{(user, item): [(earlier item, weight), ...]} of training_dataset's causal readout inputs."""
  import types
  from tfgrec.train import inputs as inputs_lib
  dataset = inputs_lib.training_dataset(types.SimpleNamespace(pairs=pairs), batch_size, seed=0,
                                        user_history_half_life=half_life, readout="causal")
  out = {}
  for batch in dataset:
    assert "history_weight" not in batch and "earlier_start" not in batch
    for u, i, items, weights in zip(*(batch[k].numpy() for k in (
        "user", "item", "earlier_item", "earlier_weight"))):
      out[(int(u), int(i))] = [(int(a), round(float(w), 6)) for a, w in zip(items, weights) if w]
  return out


def test_causal_readout_reads_only_the_events_before_each_pair_weighted_as_of_its_time():
  pairs = {"user": np.array([0, 0, 0, 0, 1]), "item": np.array([10, 11, 12, 13, 10]),
           "timestamp": np.array([1, 2, 2, 5, 7]), "value": np.ones(5, np.float32)}
  earlier = _earlier_by_pair(pairs, half_life=1.0)
  assert earlier[(0, 10)] == [] and earlier[(1, 10)] == []  # Nothing before the first event.
  # Events at the same time are not before each other; rank 0 is the latest earlier event.
  assert earlier[(0, 11)] == [(10, 1.0)] and earlier[(0, 12)] == [(10, 1.0)]
  # As of t=5 the two t=2 events tie at rank 0 and the t=1 event has rank 2: 0.5 ** 2.
  assert sorted(earlier[(0, 13)]) == [(10, 0.25), (11, 1.0), (12, 1.0)]
  # The window keeps ceil(6 half-lives) events: with half-life 0.3, two of the three.
  assert len(_earlier_by_pair(pairs, half_life=0.3)[(0, 13)]) == 2
  # No leakage: a later event of the same user leaves every earlier pair's readout as it was.
  later = {k: np.append(v, x) for (k, v), x in zip(pairs.items(), [0, 14, 9, 1.0])}
  again = _earlier_by_pair(later, half_life=1.0)
  assert all(again[key] == value for key, value in earlier.items())
  assert sorted(again[(0, 14)]) == [(10, 0.125), (11, 0.5), (12, 0.5), (13, 1.0)]


def test_earlier_readout_is_the_weighted_mean_of_normalized_item_states():
  from tfgrec.models import recommender
  states = np.array([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]], np.float32)
  items = np.array([[0, 1, 2], [2, 0, 0]])
  weights = np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]], np.float32)
  out = recommender.earlier_readout(tf.constant(states), items, weights).numpy()
  # (1 * [0.6, 0.8] + 0.5 * [0, 1]) / 1.5; a pair without earlier events reads zeros.
  np.testing.assert_allclose(out, [[0.4, 0.8666667], [0.0, 0.0]], rtol=1e-5)
