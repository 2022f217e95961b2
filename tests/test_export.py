"""Export a trained run to TF Serving's layout; the SavedModel answers with TensorFlow alone."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfgrec import config as config_lib
from tfgrec import export
from tfgrec.train import query as query_lib
from tfgrec.train import exporter
from tfgrec.train import trainer

from tests import test_train

pytestmark = pytest.mark.minutes(2.7)  # tests/conftest.py: long files start first.

tf = trainer.tf

workdir = test_train.workdir  # Module-scoped fixtures: the synthetic graph and tiny BERT.

_LOADER = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # The tokenizer ops of encode_items (stock TF Serving links them).
model = tf.saved_model.load(sys.argv[1])
request = json.loads(sys.argv[2])
out = model.signatures["recommend"](user_id=tf.constant(request["users"]),
                                    history=tf.constant(request["history"]))
print(json.dumps({"signatures": sorted(model.signatures),
                  "item_ids": out["item_ids"].numpy().astype(str).tolist(),
                  "scores": out["scores"].numpy().tolist(),
                  "foreign": sorted(m for m in ("tfgrec", "tensorflow_gnn", "transformers")
                                    if m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def exported(workdir):
  config = test_train._config(workdir, "export_run", train={"epochs": 2})
  trainer.train(config, progress=False)
  module = exporter.build_module(config, k=5)
  base = str(workdir / "models")
  path = export.save_module(module, base, "recs")
  return config, module, base, path


def test_layout_and_versions(exported):
  config, module, base, path = exported
  assert path == os.path.join(base, "recs", "1")
  assert os.path.exists(os.path.join(path, "saved_model.pb"))
  assert not [n for n in os.listdir(os.path.join(base, "recs")) if n.startswith(".")]
  assert export.next_version(os.path.join(base, "recs")) == 2
  with pytest.raises(FileExistsError):
    export.save_module(module, base, "recs", version=1)


def test_fresh_tensorflow_process_gives_the_same_answers(exported, workdir):
  config, module, _, path = exported
  with open(os.path.join(config.graph_dir, "vocab", "user.txt")) as f:
    users = f.read().split()
  with open(os.path.join(config.graph_dir, "vocab", "item.txt")) as f:
    items = f.read().split()
  request = {"users": [users[0], "someone-new", "nobody"],
             "history": [["", ""], [items[3], items[7]], ["", ""]]}
  proc = subprocess.run([sys.executable, "-c", _LOADER, path, json.dumps(request)],
                        capture_output=True, text=True, timeout=300, check=True)
  served = json.loads(proc.stdout.strip().splitlines()[-1])
  assert served["foreign"] == []  # Only TensorFlow was imported.
  assert served["signatures"] == ["encode_items", "encode_users", "explain", "rank", "recommend",
                                  "serving_default", "similar_items"]
  local = module.recommend(tf.constant(request["users"]), tf.constant(request["history"]))
  assert served["item_ids"] == local["item_ids"].numpy().astype(str).tolist()
  np.testing.assert_allclose(served["scores"], local["scores"].numpy(), rtol=1e-5, atol=1e-6)
  # The new user's own history items are not recommended back; nobody gets popular items.
  assert not {items[3], items[7]} & set(served["item_ids"][1])
  popularity = module.popularity.numpy()
  top_popular = [items[i] for i in np.argsort(-popularity, kind="stable")[:5]]
  assert served["item_ids"][2] == top_popular


def test_known_user_scores_match_the_embeddings_and_skip_seen_items(exported):
  config, module, _, _ = exported
  users = module.users.numpy()
  items = module.items.numpy()
  with open(os.path.join(config.graph_dir, "vocab", "user.txt")) as f:
    first_user = f.read().split()[0]
  out = module.recommend(tf.constant([first_user]), tf.zeros([1, 0], tf.string))
  expected = users[0] @ items.T + module.item_bias.numpy()  # The run's popularity prior.
  start, end = module.seen_indptr.numpy()[:2]
  seen = set(module.seen_indices.numpy()[start:end].tolist())
  expected[list(seen)] = -np.inf
  top = np.argsort(-expected, kind="stable")[:5]
  np.testing.assert_allclose(out["scores"].numpy()[0], expected[top], rtol=1e-5)
  ranked = module.rank(tf.constant(["nobody"]), tf.constant([["x"]]))["scores"].numpy()
  assert ranked[0, 0] == pytest.approx(-1e9)


def test_known_users_get_the_run_query(exported):
  # The stored queries and the unknown-user readout are the query picked on validation, on
  # every known event (the final fit's: training, validation and test).
  config, module, _, _ = exported
  query = query_lib.read_query(config)
  assert module.half_life == query.half_life
  model, inputs = trainer.load_trained(config)
  emb = query_lib.embeddings(model, config, inputs, "serving", query)
  np.testing.assert_allclose(module.users.numpy(), emb["user"], atol=1e-5)
  # The items' popularity prior of the known events (zero when the run picked none).
  np.testing.assert_allclose(module.item_bias.numpy(),
                             emb.get("item_bias", np.zeros(len(emb["item"]))), atol=1e-6)
  trained = query_lib.training_query(config)
  trained_query = query_lib.embeddings(model, config, inputs, "serving", trained)
  if (query.user_weight, query.half_life) != (trained.user_weight, trained.half_life):
    assert not np.allclose(module.users.numpy(), trained_query["user"], atol=1e-3)


def test_cli_export_writes_the_next_version(exported, capsys):
  from tfgrec import cli  # pylint: disable=g-import-not-at-top
  config, _, base, _ = exported
  assert cli.main(["export", "--run", config.run_dir, "--base", base, "--name", "recs",
                   "--k", "3"]) == 0
  assert os.path.join(base, "recs", "2") in capsys.readouterr().out
  loaded = tf.saved_model.load(os.path.join(base, "recs", "2"))
  out = loaded.signatures["similar_items"](item_id=tf.constant(["no-such-item"]))
  assert out["item_ids"].shape == (1, 3)
  # The base's models.config now serves the new version, as `tfgrec serve` reads it.
  from tfgrec.serving import model_config  # pylint: disable=g-import-not-at-top
  path = os.path.join(base, model_config.MODELS_CONFIG)
  (entry,) = model_config.load_models_config(path)
  assert (entry.name, entry.versions, entry.labels) == (
      "recs", (2,), {"stable": 2, "canary": 2})
  # A models.config the user wrote is theirs: an export leaves it as it is.
  mine = "model_config_list {}\n"
  with open(path, "w", encoding="utf-8") as f:
    f.write(mine)
  assert model_config.write_models_config(base, "recs", 2, keep_foreign=True) is None
  with open(path, encoding="utf-8") as f:
    assert f.read() == mine
  os.remove(path)


def test_warmup_file_parses_and_replays(exported):
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  _, _, _, path = exported
  records = list(tf.data.TFRecordDataset(os.path.join(path, export.export.WARMUP_FILE)))
  logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
  assert sorted(log.predict_log.request.model_spec.signature_name for log in logs) == [
      "encode_items", "encode_users", "explain", "rank", "recommend", "similar_items"]
  loaded = tf.saved_model.load(path)
  for log in logs:
    request = log.predict_log.request
    assert request.model_spec.name == "recs"
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
    first = next(iter(inputs.values()))
    assert all(int(v.shape[0]) == int(first.shape[0]) for v in outputs.values())


def _cold_items(config, module):
  """(row, title, categories) of catalog items without interactions in the exported graph."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  catalog = pd.read_parquet(os.path.join(config.graph_dir, "catalog.parquet"))
  item_ids = inputs_lib.read_vocab(config.graph_dir, "item")
  row = {item: i for i, item in enumerate(item_ids)}
  seen = set(module.seen_indices.numpy().tolist())
  cold = catalog[[row[i] not in seen for i in catalog["item_id"]]]
  assert len(cold) >= 2, "the synthetic data should have cold items"
  return [(row[r.item_id], r.title, list(r.categories)) for r in cold.itertuples()]


def _attributes_of(config, cold):
  """[len(cold), A] "column=value" strings of cold items (their catalog attributes)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  catalog = pd.read_parquet(os.path.join(config.graph_dir, "catalog.parquet"))
  by_id = dict(zip(catalog["item_id"], catalog["attributes"]))
  item_ids = inputs_lib.read_vocab(config.graph_dir, "item")
  rows = [[f"{k}={v}" for k, v in sorted(json.loads(by_id[item_ids[r]]).items())]
          for r, _, _ in cold]
  width = max([len(r) for r in rows] + [1])
  return tf.constant([r + [""] * (width - len(r)) for r in rows])


def test_encode_items_puts_a_new_item_where_the_model_puts_a_cold_one(exported):
  config, module, _, path = exported
  cold = _cold_items(config, module)[:4]
  width = max(len(c) for _, _, c in cold)
  titles = tf.constant([t for _, t, _ in cold])
  categories = tf.constant([c + [""] * (width - len(c)) for _, _, c in cold])
  attributes = _attributes_of(config, cold)
  assert b"price=" in attributes.numpy()[0].tolist()[-1]  # the synthetic catalog's
  local = module.encode_items(titles, categories, attributes)["embedding"].numpy()
  expected = module.items.numpy()[[r for r, _, _ in cold]]
  # Same text through BERT, same tower path; the categories' degree counts one more item.
  assert local.shape == expected.shape
  np.testing.assert_allclose(np.sum(local * expected, axis=1), 1.0, atol=2e-3)
  np.testing.assert_allclose(np.linalg.norm(local, axis=1), 1.0, rtol=1e-5)
  loaded = tf.saved_model.load(path)
  # The ID tables are not saved twice: the only [I, D] / [U, D] variables are the final ones.
  shapes = [tuple(shape) for _, shape in
            tf.train.list_variables(os.path.join(path, "variables", "variables"))]
  assert shapes.count(tuple(module.items.shape)) == 1
  assert shapes.count(tuple(module.users.shape)) == 1
  served = loaded.signatures["encode_items"](
      title=titles, categories=categories, attributes=attributes)["embedding"]
  np.testing.assert_allclose(served.numpy(), local, rtol=1e-4, atol=1e-5)
  # The text matters: another title moves the embedding; unknown categories are ignored.
  other = module.encode_items(tf.constant(["something else entirely"]), categories[:1],
                              attributes[:1])
  assert float(np.dot(other["embedding"].numpy()[0], local[0])) < 0.999
  extra = tf.concat([categories[:1], tf.constant([["no-such-category"]])], axis=1)
  np.testing.assert_allclose(
      module.encode_items(titles[:1], extra, attributes[:1])["embedding"].numpy(),
      local[:1], atol=1e-5)
  # So do the attributes: without them the item lands elsewhere.
  bare = module.encode_items(titles[:1], categories[:1])["embedding"].numpy()
  assert float(np.dot(bare[0], local[0])) < 0.9999
  empty = module.encode_items(tf.constant(["", "x"]), tf.zeros([2, 0], tf.string))
  assert empty["embedding"].shape == (2, expected.shape[1])
  # With each new item, its nearest catalog items: a cold item's nearest is itself.
  nearest = module.encode_items(titles, categories, attributes)
  ids = nearest["item_ids"].numpy().astype(str)
  item_ids = module.item_ids.numpy().astype(str)
  assert [row[0] for row in ids] == [item_ids[r] for r, _, _ in cold]
  assert nearest["scores"].shape == (len(cold), module.k)


class _FixedEncoder(tf.Module):
  """Every new item gets the same graph and text embedding (a stand-in NewItemEncoder)."""

  def __init__(self, graph, text):
    super().__init__()
    self.graph, self.text = tf.constant(graph, tf.float32), tf.constant(text, tf.float32)
    self.dim, self.text_dim = len(graph), len(text)

  def encode(self, title, categories, attributes=None):
    del categories, attributes
    rows = tf.shape(title)[0]
    return tf.tile(self.graph[None], [rows, 1]), tf.tile(self.text[None], [rows, 1])


def _tiny_text_module(text_weight):
  # Four items. The new item's graph cosines: a 0, b 1, c .8, d 0; its text cosines: a 1,
  # b -1, c .8, and d has no text (a zero row, cosine 0 as stored).
  return export.ServingModule(
      user_ids=["u"], item_ids=["a", "b", "c", "d"], user_embeddings=[[1.0, 0.0]],
      item_embeddings=[[1, 0], [0, 1], [.6, .8], [-1, 0]], seen_indptr=[0, 0],
      seen_indices=[], popularity=[1, 1, 1, 1], k=4,
      item_encoder=_FixedEncoder(graph=[0, 1], text=[1, 0]),
      item_text_embeddings=[[1, 0], [-1, 0], [.8, .6], [0, 0]], text_weight=text_weight)


def test_encode_items_blends_text_and_graph_similarity_by_hand():
  nearest = lambda w: _tiny_text_module(w).encode_items(tf.constant(["new"]),
                                                        tf.constant([[""]]))
  # w = 0: the graph order b, c, then a and d (tied at 0, lower index first).
  assert nearest(0.0)["item_ids"].numpy().astype(str).tolist() == [["b", "c", "a", "d"]]
  # w = 1: the text order a, c, b. d, without text, takes the lowest text score (b's -1),
  # not its stored cosine 0, which would have put it above b.
  text = nearest(1.0)
  assert text["item_ids"].numpy().astype(str).tolist() == [["a", "c", "b", "d"]]
  assert text["scores"].numpy()[0, 2] == pytest.approx(text["scores"].numpy()[0, 3])
  # w = .5, standard scores: text [1, -1, .8, -1] -> z [1.10, -1.00, .89, -1.00]; graph
  # [0, 1, .8, 0] -> z [-.99, 1.21, .77, -.99]; halves summed: a .06, b .10, c .83, d -.99.
  # c, close on both sides, beats a (text only) and b (graph only).
  blend = nearest(0.5)
  assert blend["item_ids"].numpy().astype(str).tolist() == [["c", "b", "a", "d"]]
  np.testing.assert_allclose(blend["scores"].numpy()[0], [.830, .105, .057, -.993], atol=2e-3)
  # The embedding output stays the graph-space embedding.
  np.testing.assert_allclose(blend["embedding"].numpy(), [[0, 1]])
  # A plain encoder callable (no text) still serves the graph order.
  fixed = _FixedEncoder(graph=[0, 1], text=[1, 0])
  plain = lambda title, categories: fixed.encode(title, categories)[0]
  plain.dim = 2
  module = export.ServingModule(
      user_ids=["u"], item_ids=["a", "b", "c", "d"], user_embeddings=[[1.0, 0.0]],
      item_embeddings=[[1, 0], [0, 1], [.6, .8], [-1, 0]], seen_indptr=[0, 0],
      seen_indices=[], popularity=[1, 1, 1, 1], k=4, item_encoder=plain)
  assert module.encode_items(tf.constant(["new"]), tf.constant([[""]]))[
      "item_ids"].numpy().astype(str).tolist() == [["b", "c", "a", "d"]]


def test_text_blend_arguments_are_checked():
  with pytest.raises(ValueError, match=r"text_weight must be in \[0, 1\], got 1.5"):
    _tiny_text_module(1.5)
  with pytest.raises(ValueError, match=r"must be \[4, 2\].*got \[4, 3\]"):
    export.ServingModule(
        user_ids=["u"], item_ids=["a", "b", "c", "d"], user_embeddings=[[1.0, 0.0]],
        item_embeddings=np.eye(4, 2), seen_indptr=[0, 0], seen_indices=[],
        popularity=[1, 1, 1, 1], k=2, item_encoder=_FixedEncoder([0, 1], [1, 0]),
        item_text_embeddings=np.ones([4, 3]))
  with pytest.raises(ValueError, match="need an item_encoder that embeds text"):
    export.ServingModule(
        user_ids=["u"], item_ids=["a", "b"], user_embeddings=[[1.0, 0.0]],
        item_embeddings=np.eye(2), seen_indptr=[0, 0], seen_indices=[], popularity=[1, 1],
        k=2, item_text_embeddings=np.ones([2, 2]))


def _reweighted(config, module, text_weight):
  """The exported module again, with another share of text in encode_items."""
  return export.ServingModule(
      user_ids=_vocab(config, "user"), item_ids=module.item_ids.numpy().astype(str),
      user_embeddings=module.users.numpy(), item_embeddings=module.items.numpy(),
      seen_indptr=module.seen_indptr.numpy(), seen_indices=module.seen_indices.numpy(),
      popularity=module.popularity.numpy(), k=module.k, item_encoder=module.item_encoder,
      item_text_embeddings=module.item_text.numpy().T, text_weight=text_weight)


def test_encode_items_nearest_items_blend_the_catalog_text(exported):
  config, module, _, path = exported
  import pandas as pd  # pylint: disable=g-import-not-at-top
  catalog = pd.read_parquet(os.path.join(config.graph_dir, "catalog.parquet"))
  seen = set(module.seen_indices.numpy().tolist())
  row = {item: i for i, item in enumerate(module.item_ids.numpy().astype(str))}
  # Items with interactions (not cold: their graph embedding is not their text's).
  warm = [r for r in catalog.itertuples() if row[r.item_id] in seen][:3]
  width = max(len(r.categories) for r in warm)
  titles = tf.constant([r.title for r in warm])
  categories = tf.constant([list(r.categories) + [""] * (width - len(r.categories))
                            for r in warm])
  assert module.text_weight == export.serving_module.DEFAULT_TEXT_WEIGHT
  graph, text = (v.numpy() for v in module.item_encoder.encode(titles, categories))
  catalog_text = module.item_text.numpy().T                              # [I, T]
  text_scores = text @ catalog_text.T
  text_scores[:, ~module.has_text.numpy()] = text_scores[:, module.has_text.numpy()].min()
  top = lambda scores: np.argsort(-scores, axis=1, kind="stable")[:, :module.k]
  ids = lambda out: out["item_ids"].numpy().astype(str).tolist()
  item_ids = module.item_ids.numpy().astype(str)
  # w = 1: the text order, where an item described as a catalog item finds that item first.
  only_text = _reweighted(config, module, 1.0).encode_items(titles, categories)
  assert ids(only_text) == item_ids[top(text_scores)].tolist()
  assert [r[0] for r in ids(only_text)] == [r.item_id for r in warm]
  # w = 0: the graph order (the nearest items before the blend).
  only_graph = _reweighted(config, module, 0.0).encode_items(titles, categories)
  assert ids(only_graph) == item_ids[top(graph @ module.items.numpy().T)].tolist()
  # The blend itself, in process and served.
  z = lambda s: (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)
  blend = (module.text_weight * z(text_scores)
           + (1 - module.text_weight) * z(graph @ module.items.numpy().T))
  local = module.encode_items(titles, categories)
  assert ids(local) == item_ids[top(blend)].tolist()
  np.testing.assert_allclose(local["scores"].numpy(), np.sort(blend, 1)[:, ::-1][:, :module.k],
                             rtol=1e-4, atol=1e-4)
  served = tf.saved_model.load(path).signatures["encode_items"](
      title=titles, categories=categories, attributes=tf.constant([[""]] * len(titles)))
  assert ids(served) == ids(local)
  # The graph-space embedding is unchanged by the blend.
  np.testing.assert_allclose(local["embedding"].numpy(), only_graph["embedding"].numpy())


def test_in_graph_item_text_matches_the_catalog_builder():
  from tfgrec.data import prepare  # pylint: disable=g-import-not-at-top
  from tfgrec.export import item_encoder  # pylint: disable=g-import-not-at-top
  cases = [("  Heat (1995) ", ["Action", "Crime"]), ("Heat", ["", ""]), ("", ["Drama", ""]),
           ("", ["", ""]), ("Alien", ["", "Horror"])]
  got = item_encoder.item_text(tf.constant([t for t, _ in cases]),
                               tf.constant([c for _, c in cases])).numpy().astype(str)
  assert got.tolist() == [prepare.item_text(t, c) for t, c in cases]


def _vocab(config, name):
  with open(os.path.join(config.graph_dir, "vocab", f"{name}.txt")) as f:
    return f.read().split()


def _read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def test_batch_recommend_from_user_ids(exported, tmp_path):
  from tfgrec import batch  # pylint: disable=g-import-not-at-top
  config, module, base, _ = exported
  users = _vocab(config, "user")
  users_file = tmp_path / "users.txt"
  users_file.write_text(f"{users[0]}\n\n{users[1]}\n{users[0]}\nnew-user\n")
  out = str(tmp_path / "recs.jsonl")
  counts = batch.recommend_file(os.path.join(base, "recs"), str(users_file), out, k=3,
                                batch_size=2, progress=False)
  assert counts["users"] == counts["written"] == 3 and counts["rows_in"] == 4
  records = _read_jsonl(out)
  assert [r["user_id"] for r in records] == [users[0], users[1], "new-user"]
  local = module.recommend(tf.constant([r["user_id"] for r in records]),
                           tf.zeros([3, 1], tf.string))
  for record, ids, scores in zip(records, local["item_ids"].numpy().astype(str),
                                 local["scores"].numpy()):
    assert record["items"] == ids[:3].tolist()
    np.testing.assert_allclose(record["scores"], scores[:3], atol=1e-5)
  with pytest.raises(batch.BatchError, match=r"exported with K = \d+; export again with `--k 6`"):
    batch.recommend_file(os.path.join(base, "recs"), str(users_file), out, k=6)
  with pytest.raises(FileNotFoundError, match="no-such-dir"):
    batch.recommend_file(str(tmp_path / "no-such-dir"), str(users_file), out)


def test_batch_recommend_from_interactions_explains_with_the_history(exported, tmp_path):
  from tfgrec import batch  # pylint: disable=g-import-not-at-top
  config, module, _, path = exported
  items = _vocab(config, "item")
  # A new user whose latest item is items[5]; one row breaks the contract (a bad timestamp).
  interactions = tmp_path / "recent.csv"
  interactions.write_text("user_id,item_id,timestamp\n"
                          f"fresh,{items[2]},100\nfresh,{items[5]},300\nfresh,{items[9]},200\n"
                          f"other,{items[1]},5\nbroken,{items[1]},yesterday\n")
  out = str(tmp_path / "recs.jsonl")
  counts = batch.recommend_file(path, str(interactions), out, k=5, explain=True,
                                progress=False)
  assert counts == {"rows_in": 5, "users": 2, "dead_letters": 1, "written": 2, "model": path}
  fresh = {r["user_id"]: r for r in _read_jsonl(out)}["fresh"]
  history = [items[5], items[9], items[2]]  # Most recent first.
  assert not set(history) & set(fresh["items"])
  emb = module.items.numpy()
  row = {item: i for i, item in enumerate(items)}
  weights = 0.5 ** (np.arange(3) / module.half_life)
  for item, because, share in zip(fresh["items"], fresh["because"], fresh["contributions"]):
    terms = weights * (emb[[row[h] for h in history]] @ emb[row[item]])
    assert because == history[int(np.argmax(terms))]
    assert share == pytest.approx(float(np.max(terms)), abs=1e-5)


def test_beam_batch_recommend_matches_the_in_process_run(exported, tmp_path, capsys):
  from tfgrec.jobs import batch_recommend as driver  # pylint: disable=g-import-not-at-top
  from tfgrec import batch  # pylint: disable=g-import-not-at-top
  config, _, _, path = exported
  users = _vocab(config, "user")[:7] + ["nobody"]
  users_file = tmp_path / "users.txt"
  users_file.write_text("\n".join(users) + "\n")
  local = str(tmp_path / "local.jsonl")
  batch.recommend_file(path, str(users_file), local, k=4, explain=True,
                       progress=False)
  output = str(tmp_path / "beam.jsonl")
  assert driver.main(["--model", path, "--users", str(users_file), "--output", output,
                      "--k", "4", "--explain", "--batch-size", "3",
                      "--direct_num_workers=1"]) == 0
  assert f"users {len(users)}  dead-lettered 0  written {len(users)}" in capsys.readouterr().out
  key = lambda r: r["user_id"]
  beam, alone = sorted(_read_jsonl(output), key=key), sorted(_read_jsonl(local), key=key)
  assert [(r["user_id"], r["items"], r["because"]) for r in beam] == [
      (r["user_id"], r["items"], r["because"]) for r in alone]
  # Batches of 3 and of 8 users: the same scores up to float rounding.
  for a, b in zip(beam, alone):
    np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-5)
    np.testing.assert_allclose(a["contributions"], b["contributions"], atol=1e-5)


def test_a_module_without_item_encoder_saves_without_encode_items(exported, tmp_path):
  _, module, _, _ = exported
  bare = export.ServingModule(
      user_ids=["u"], item_ids=["a", "b", "c"], user_embeddings=np.eye(1, 2, dtype=np.float32),
      item_embeddings=np.eye(3, 2, dtype=np.float32), seen_indptr=[0, 0], seen_indices=[],
      popularity=[3, 2, 1], k=2)
  assert "encode_items" not in bare.signature_names and "encode_items" in module.signature_names
  path = export.save_module(bare, str(tmp_path), "bare")
  loaded = tf.saved_model.load(path)
  assert "encode_items" not in loaded.signatures
  out = loaded.signatures["recommend"](user_id=tf.constant(["u"]), history=tf.constant([[""]]))
  assert out["item_ids"].numpy().astype(str).tolist() == [["a", "b"]]


@pytest.fixture(scope="module")
def served(exported, workdir):
  """A local server on loopback with version 1 (K=5, label stable) and 2 (K=3, canary)."""
  from tfgrec import serving  # pylint: disable=g-import-not-at-top
  config, module, _, _ = exported
  base = workdir / "served"
  export.save_module(module, str(base), "recs", version=1)
  export.save_module(exporter.build_module(config, k=3), str(base), "recs", version=2)
  models_config = base / "models.config"
  models_config.write_text(
      'model_config_list { config { name: "recs" base_path: "recs" model_platform: "tensorflow"\n'
      '  model_version_policy { specific { versions: 1 versions: 2 } }\n'
      '  version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } } }\n')
  server = serving.LocalModelServer(str(models_config), port=0).start()
  client = serving.Client(f"127.0.0.1:{server.port}", "recs", timeout=30)
  yield config, module, server, client
  client.close()
  server.stop(1.0)


def test_grpc_answers_match_the_model(served):
  config, module, server, client = served
  users, items = _vocab(config, "user"), _vocab(config, "item")
  histories = [[], [items[4], items[8]], []]
  answers = client.recommend([users[0], "new-with-history", "new-without"], histories,
                             label="stable")
  local = module.recommend(tf.constant([users[0], "new-with-history", "new-without"]),
                           tf.constant([["", ""], [items[4], items[8]], ["", ""]]))
  for answer, ids, scores in zip(answers, local["item_ids"].numpy().astype(str),
                                 local["scores"].numpy()):
    assert answer["items"] == ids.tolist()
    np.testing.assert_allclose(answer["scores"], scores, rtol=1e-5, atol=1e-6)
  popularity = module.popularity.numpy()
  assert answers[2]["items"] == [items[i] for i in np.argsort(-popularity, kind="stable")[:5]]
  ranked = client.rank(users[0], [items[1], items[2], "no-such-item"])[0]["scores"]
  np.testing.assert_allclose(
      ranked, module.rank(tf.constant([users[0]]),
                          tf.constant([[items[1], items[2], "no-such-item"]]))["scores"][0],
      rtol=1e-5)
  why = client.explain("new-with-history", answers[1]["items"], [items[4], items[8]])[0]
  assert len(why) == 5 and set(why) <= {items[4], items[8]}
  # A new item, by its text alone.
  embedding = client.encode_items(["A brand new title"], [["no-such-category"]])
  np.testing.assert_allclose(
      embedding, module.encode_items(tf.constant(["A brand new title"]),
                                     tf.constant([["no-such-category"]]))["embedding"],
      rtol=1e-4, atol=1e-5)
  # With attributes (the synthetic catalog's brand and price): mapped in the served graph as
  # in process, and they move the new item.
  with_attributes = client.encode_items(["A brand new title"], [["no-such-category"]],
                                        [{"price": 12.5, "brand": "no-such-brand"}])
  np.testing.assert_allclose(
      with_attributes, module.encode_items(
          tf.constant(["A brand new title"]), tf.constant([["no-such-category"]]),
          tf.constant([["brand=no-such-brand", "price=12.5"]]))["embedding"],
      rtol=1e-4, atol=1e-5)
  assert float(np.dot(with_attributes[0], embedding[0])) < 0.9999
  nearest = client.nearest_to_new_items(["A brand new title"], label="stable")[0]
  assert len(nearest["items"]) == 5 and nearest["scores"] == sorted(nearest["scores"],
                                                                    reverse=True)


def test_grpc_canary_label_reaches_version_two(served):
  config, _, _, client = served
  user = _vocab(config, "user")[3]
  stable = client.predict_response({"user_id": [user], "history": [[""]]}, "recommend",
                                   label="stable")
  canary = client.predict_response({"user_id": [user], "history": [[""]]}, "recommend",
                                   label="canary")
  assert (stable.model_spec.version.value, canary.model_spec.version.value) == (1, 2)
  assert len(client.recommend(user, label="canary")[0]["items"]) == 3
  assert sorted(client.metadata(label="canary")) == [
      "encode_items", "encode_users", "explain", "rank", "recommend", "serving_default",
      "similar_items"]


def test_grpc_bad_requests_leave_the_server_serving(served):
  import grpc  # pylint: disable=g-import-not-at-top
  from tfgrec import serving  # pylint: disable=g-import-not-at-top
  config, _, server, client = served
  user = _vocab(config, "user")[0]
  cases = [
      (dict(inputs={"user_id": [user]}, signature="recommend"), grpc.StatusCode.INVALID_ARGUMENT),
      (dict(inputs={"user_id": np.array([1.5], np.float32), "history": [[""]]},
            signature="recommend"), grpc.StatusCode.INVALID_ARGUMENT),
      (dict(inputs={"title": ["x"], "categories": [[""]]}, signature="nope"),
       grpc.StatusCode.FAILED_PRECONDITION),
      (dict(inputs={"user_id": [user], "history": [[""]]}, signature="recommend",
            label="beta"), grpc.StatusCode.INVALID_ARGUMENT),
  ]
  for kwargs, code in cases:
    with pytest.raises(serving.ServingError) as error:
      client.predict(**kwargs)
    assert error.value.code == code, kwargs
    assert client.recommend(user)[0]["items"]  # The next good request is answered.
  with serving.Client(f"127.0.0.1:{server.port}", "unknown-model", timeout=30) as other:
    with pytest.raises(serving.ServingError) as error:
      other.recommend(user)
    assert error.value.code == grpc.StatusCode.NOT_FOUND
  empty = client.predict({"user_id": np.zeros([0], object), "history": np.zeros([0, 1], object)},
                         "recommend", label="stable")
  assert empty["item_ids"].shape == (0, 5)
  huge = np.array([user] * 20_000, object)  # 20k users x 5 items back: fine, and the next too.
  assert client.predict({"user_id": huge, "history": np.full([20_000, 1], "", object)},
                        "recommend", label="stable")["item_ids"].shape == (20_000, 5)
  assert client.recommend(user)[0]["items"]


def test_cli_query_and_recommend(served, tmp_path, capsys):
  from tfgrec import cli  # pylint: disable=g-import-not-at-top
  config, module, server, _ = served
  users = _vocab(config, "user")
  assert cli.main(["query", "--target", f"127.0.0.1:{server.port}", "--model", "recs",
                   "--user", users[0], "--label", "stable", "--json"]) == 0
  answer = json.loads(capsys.readouterr().out)
  expected = module.recommend(tf.constant([users[0]]), tf.zeros([1, 0], tf.string))
  assert answer["items"] == expected["item_ids"].numpy().astype(str)[0].tolist()
  users_file = tmp_path / "users.txt"
  users_file.write_text(f"{users[0]}\n{users[1]}\n")
  output = tmp_path / "recs.jsonl"
  base = os.path.dirname(server.models[0].base_path.rstrip("/"))
  assert cli.main(["recommend", "--model", os.path.join(base, "recs", "1"), "--users",
                   str(users_file), "--k", "4", "--output", str(output), "--explain"]) == 0
  assert "2 users ->" in capsys.readouterr().out
  records = _read_jsonl(str(output))
  assert records[0]["items"] == answer["items"][:4] and len(records[0]["because"]) == 4
  assert cli.main(["recommend", "--model", str(tmp_path / "none"), "--users", str(users_file),
                   "--output", str(output)]) == 2
  assert "does not exist" in capsys.readouterr().err


def test_tf_serving_style_padding_changes_no_answer(exported):
  """TF Serving's batching pads a request's variable-length inputs with its first element."""
  config, module, _, _ = exported
  users, items = _vocab(config, "user"), _vocab(config, "item")
  history = [items[6], items[2], items[9]]
  for user in ("someone-new", users[2]):
    plain = module.recommend(tf.constant([user]), tf.constant([history]))
    padded = module.recommend(tf.constant([user]), tf.constant([history + [history[0]] * 4]))
    assert plain["item_ids"].numpy().tolist() == padded["item_ids"].numpy().tolist()
    np.testing.assert_allclose(plain["scores"], padded["scores"], rtol=1e-6)
    why = module.explain(tf.constant([user]), tf.constant([history + [history[0]] * 4]),
                         plain["item_ids"])
    assert why["because"].numpy().tolist() == module.explain(
        tf.constant([user]), tf.constant([history]), plain["item_ids"])["because"].numpy().tolist()
  cold = _cold_items(config, module)[0]
  attributes = _attributes_of(config, [cold])
  once = module.encode_items(tf.constant([cold[1]]), tf.constant([cold[2]]),
                             attributes)["embedding"]
  twice = module.encode_items(
      tf.constant([cold[1]]), tf.constant([cold[2] + [cold[2][0]] * 3]),
      tf.concat([attributes, attributes[:, :1], attributes[:, :1]], axis=1))["embedding"]
  np.testing.assert_allclose(once, twice, rtol=1e-5, atol=1e-6)


def test_beam_batch_recommend_from_interactions_counts_dead_letters(exported, tmp_path):
  from tfgrec.beam import batch_recommend  # pylint: disable=g-import-not-at-top
  config, module, _, path = exported
  items = _vocab(config, "item")
  interactions = tmp_path / "recent.csv"
  interactions.write_text("user_id,item_id,timestamp\n"
                          f"fresh,{items[2]},100\nfresh,{items[5]},300\nfresh,{items[5]},50\n"
                          f"other,{items[1]},5\nbroken,{items[1]},not-a-time\n")
  cfg = batch_recommend.BatchRecommendConfig(model=path, users=[str(interactions)],
                                             output=str(tmp_path / "recs.jsonl"), k=3)
  counts = batch_recommend.run(cfg, ["--direct_num_workers=1"])
  assert counts == {"rows_in": 5, "users": 2, "dead_letters": 1, "written": 2}
  with open(tmp_path / "dead_letter" / "interactions.jsonl") as f:
    dead = [json.loads(line) for line in f]
  assert len(dead) == 1 and dead[0]["source"].endswith("recent.csv:6")
  records = {r["user_id"]: r for r in _read_jsonl(cfg.output)}
  # fresh's history, most recent first and each item once: items[5], items[2].
  local = module.recommend(tf.constant(["fresh"]), tf.constant([[items[5], items[2]]]))
  assert records["fresh"]["items"] == local["item_ids"].numpy().astype(str)[0, :3].tolist()


def test_a_fine_tuned_run_exports_its_fine_tuned_text_tower(workdir):
  """The export embeds the catalog and new items with the trained BERT, not the checkpoint's."""
  config = test_train._config(workdir, "export_fine_tuned", train={"epochs": 1},
                              text={"fine_tune": "on", "trainable_layers": 1})
  trainer.train(config, progress=False)
  module = exporter.build_module(config, k=5)
  cold = _cold_items(config, module)[:3]
  width = max(len(c) for _, _, c in cold)
  new = module.encode_items(tf.constant([t for _, t, _ in cold]),
                            tf.constant([c + [""] * (width - len(c)) for _, _, c in cold]),
                            _attributes_of(config, cold))
  expected = module.items.numpy()[[r for r, _, _ in cold]]
  np.testing.assert_allclose(np.sum(new["embedding"].numpy() * expected, axis=1), 1.0, atol=2e-3)


_FRESH_LOAD = r"""
import json, sys
from tfgrec import saved_models
before = "tensorflow_text" in sys.modules
model = saved_models.load(sys.argv[1])
out = model.signatures["encode_items"](title=__import__("tensorflow").constant(["A new title"]),
                                       categories=__import__("tensorflow").constant([[""]]),
                                       attributes=__import__("tensorflow").constant([["year=2019"]]))
print(json.dumps({"before": before, "after": "tensorflow_text" in sys.modules,
                  "ops": sorted(saved_models.op_types(saved_models.version_dir(sys.argv[1]))),
                  "dim": int(out["embedding"].shape[1])}))
"""


def test_the_one_loader_registers_tokenizer_ops_in_a_fresh_process(exported):
  # A plain tf.saved_model.load of this export fails with "Op type not registered
  # 'FastBertNormalize'" in a process that never imported tensorflow_text.
  _, _, base, _ = exported
  proc = subprocess.run([sys.executable, "-c", _FRESH_LOAD, os.path.join(base, "recs")],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  answer = json.loads(proc.stdout.strip().splitlines()[-1])
  assert answer["before"] is False and answer["after"] is True
  assert any(op.startswith("FastBert") for op in answer["ops"])
  assert answer["dim"] > 0


def test_loader_names_ops_it_cannot_register(exported, monkeypatch):
  from tfgrec import saved_models  # pylint: disable=g-import-not-at-top
  _, _, _, path = exported
  monkeypatch.setattr(saved_models, "unregistered_ops", lambda ops: {"NoSuchOp"})
  with pytest.raises(ImportError, match="NoSuchOp"):
    saved_models.load(path)
  with pytest.raises(FileNotFoundError, match="neither a SavedModel"):
    saved_models.load(os.path.dirname(os.path.dirname(path)))
