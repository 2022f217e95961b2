"""Fit sources saved and restored without refitting (`base.save_source` / `base.load_source`),
the public `score(..., user_query=)`, and EASE's maths in `sources/` (wrapped by the baseline).

Every source class is fit once on a tiny log; each round trip loads it with every fit entry
point patched to raise, and compares `scores`, `top_n`, `score_numpy` (and the graph tower's
`user_query` scores) with the original's.
"""
import ast
import json
import os

import numpy as np
import pytest

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec import storage
from tfgrec.eval import baselines, metrics
from tfgrec.sources import base, embedding, graph_filter, sequence, time_context

pytestmark = pytest.mark.minutes(1)

tf = base.tf
DAY = time_context.SECONDS_PER_DAY
T0 = 1_000_000_000
NUM_ITEMS = 8  # Item 7 has no event (cold): only its embeddings and available_time.


def tiny_log():
  """10 users, 3 to 6 events each over items 0..6, a few days apart."""
  rng = np.random.default_rng(0)
  user, item, time = [], [], []
  for u in range(10):
    n = rng.integers(3, 7)
    user += [u] * n
    item += rng.choice(7, n, replace=False).tolist()
    time += (T0 + np.sort(rng.integers(0, 20, n)) * DAY).tolist()
  return np.array(user), np.array(item), np.array(time, np.int64)


def item_data():
  rng = np.random.default_rng(1)
  available = np.full(NUM_ITEMS, base.NO_TIME, np.int64)
  available[[3, 7]] = T0 - 5 * DAY  # Before item 3's first event; the cold item 7 too.
  return {embedding.TEXT_EMBEDDING: rng.normal(size=[NUM_ITEMS, 4]).astype(np.float32),
          embedding.ITEM_EMBEDDING: rng.normal(size=[NUM_ITEMS, 3]).astype(np.float32),
          time_context.AVAILABLE_TIME: available}


MAKERS = {
    "graph_filter": lambda: graph_filter.GraphFilter(half_life=2.0, alpha=0.0),
    "graph_filter_low_pass": lambda: graph_filter.GraphFilter(half_life=2.0, alpha=0.3,
                                                              num_singular=3),
    "graph_filter_sparse": lambda: graph_filter.GraphFilter(
        half_life=None, alpha=0.0, dense_max_items=0, neighbours=3, block_items=3),
    "graph_filter_sparse_low_pass": lambda: graph_filter.GraphFilter(
        half_life=2.0, alpha=0.3, num_singular=3, dense_max_items=0, neighbours=3),
    "ease": lambda: graph_filter.Ease(half_life=2.0, l2=1.0),
    "ease_neighbours": lambda: graph_filter.Ease(half_life=2.0, l2=1.0, neighbours=3),
    "text": lambda: embedding.EmbeddingNeighbours.text(half_life=2.0, max_history=3),
    "graph_tower": lambda: embedding.EmbeddingNeighbours.graph_tower(
        half_life=1.0, popularity_weight=0.5),
    "trending": lambda: time_context.Trending(windows_days=[2.0, 7.0], popularity_weight=0.1),
    "fresh": lambda: time_context.Fresh(half_life_days=3.0),
    "sequence": lambda: sequence.SequenceSource(
        max_len=4, dim=8, num_heads=2, num_blocks=1, dropout=0.1, epochs=1, batch_size=4,
        verbose=False),
}


@pytest.fixture(scope="module")
def fitted():
  user, item, time = tiny_log()
  data = item_data()
  return {name: make().fit(user, item, time, num_items=NUM_ITEMS, item_data=data)
          for name, make in MAKERS.items()}


def queries():
  """Four requests: a history (one entry after now, one repeat), padding only, the same history
  at a later time, and an event-less user. Times in the log's range."""
  history = np.array([[4, 2, 0, 2, -1], [-1, -1, -1, -1, -1], [4, 2, 0, 2, -1],
                      [1, -1, -1, -1, -1]], np.int32)
  t = T0 + np.array([[9, 8, 30, 3, 0], [0, 0, 0, 0, 0], [9, 8, 30, 3, 0], [2, 0, 0, 0, 0]]) * DAY
  now = T0 + np.array([10, 10, 40, 2]) * DAY
  return history, t.astype(np.int64), now.astype(np.int64)


def tf_queries():
  history, history_time, now = queries()
  return tf.constant(history), tf.constant(history_time), tf.constant(now)


def all_source_classes():
  out, todo = set(), [base.CandidateSource]
  while todo:
    for sub in todo.pop().__subclasses__():
      out.add(sub)
      todo.append(sub)
  return out


@pytest.fixture
def no_fitting(monkeypatch):
  """Every fit entry point raises: loading must restore, never fit."""
  def refuse(*args, **kwargs):
    raise AssertionError("a fit ran while loading a saved source")

  for cls in all_source_classes():
    monkeypatch.setattr(cls, "_fit", refuse)
  for module, name in ((graph_filter, "ease_weights"),
                       (graph_filter, "_top_right_singular_vectors"),
                       (graph_filter, "_top_neighbours"), (time_context, "_prefix_tables"),
                       (sequence, "training_windows")):
    monkeypatch.setattr(module, name, refuse)
  monkeypatch.setattr(sequence._Trainer, "fit", refuse)  # pylint: disable=protected-access


def assert_same_scores(loaded, source):
  inputs = tf_queries()
  want = source.scores(*inputs)["scores"].numpy()
  assert np.isfinite(want).all() and np.ptp(want) > 0  # Scores that can differ.
  np.testing.assert_allclose(loaded.scores(*inputs)["scores"].numpy(), want, rtol=1e-6,
                             atol=1e-7)
  np.testing.assert_allclose(loaded.score_numpy(*queries()), source.score_numpy(*queries()),
                             rtol=1e-6, atol=1e-7)
  top, top_loaded = (s.top_n(*inputs, tf.constant(5)) for s in (source, loaded))
  np.testing.assert_array_equal(top_loaded["item_ids"], top["item_ids"])
  np.testing.assert_allclose(top_loaded["scores"], top["scores"], rtol=1e-6, atol=1e-7)


# === Round trips ===
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_a_saved_source_loads_as_its_class_without_fitting(name, fitted, tmp_path, no_fitting):
  del no_fitting  # Active.
  source = fitted[name]
  path = str(tmp_path / name)
  base.save_source(source, path)
  assert sorted(os.listdir(path)) == [base.SOURCE_ARRAYS, base.SOURCE_SPEC]
  loaded = base.load_source(path)
  assert type(loaded) is type(source)  # pylint: disable=unidiomatic-typecheck
  assert loaded.get_config() == source.get_config()
  assert (loaded.name, loaded.num_items, loaded.reads_user_query) == (
      source.name, NUM_ITEMS, source.reads_user_query)
  assert_same_scores(loaded, source)
  # And again: a restored source saves what the fitted one saved.
  base.save_source(loaded, str(tmp_path / "again"))
  assert (storage.read_json(str(tmp_path / "again" / base.SOURCE_SPEC))
          == storage.read_json(os.path.join(path, base.SOURCE_SPEC)))
  first = storage.load_npz(os.path.join(path, base.SOURCE_ARRAYS))
  again = storage.load_npz(str(tmp_path / "again" / base.SOURCE_ARRAYS))
  assert sorted(again) == sorted(first)
  for key, value in first.items():
    np.testing.assert_array_equal(again[key], value, err_msg=key)


def test_the_graph_tower_source_keeps_its_user_query(fitted, tmp_path, no_fitting):
  del no_fitting  # Active.
  source = fitted["graph_tower"]
  base.save_source(source, str(tmp_path / "tower"))
  loaded = base.load_source(str(tmp_path / "tower"))
  assert loaded.reads_user_query and loaded.normalize_query and loaded.popularity_weight == 0.5
  query = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]],
                   np.float32)
  want = source.score(*queries(), user_query=query).numpy()
  assert not np.allclose(want, source.score(*queries()).numpy())  # The query counts.
  np.testing.assert_allclose(loaded.score(*queries(), user_query=query).numpy(), want,
                             rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_get_config_rebuilds_the_source_and_is_json(name, fitted):
  config = fitted[name].get_config()
  assert json.loads(json.dumps(config)) == config
  again = type(fitted[name])(**config)
  assert again.get_config() == config and again.name == fitted[name].name
  with pytest.raises(ValueError, match="not fit yet"):
    again.score_numpy(*queries())


@pytest.mark.parametrize("name", ["graph_tower", "ease_neighbours", "fresh", "sequence",
                                  "graph_filter_low_pass"])
def test_a_restored_source_saves_inside_another_module(name, fitted, tmp_path):
  """As the serving SavedModel embeds sources (ranking.features.CandidateFeatures): a module
  whose traced function calls `score`."""
  source = fitted[name]
  base.save_source(source, str(tmp_path / "source"))
  restored = base.load_source(str(tmp_path / "source"))

  class Serving(tf.Module):

    def __init__(self, source):
      super().__init__()
      self.source = source

    @tf.function(input_signature=base.HISTORY_SPECS
                 + (tf.TensorSpec([None, None], tf.float32, name="user_query"),))
    def __call__(self, history, history_time, now, user_query):
      query = user_query if self.source.reads_user_query else None
      return self.source.score(history, history_time, now, user_query=query)

  tf.saved_model.save(Serving(restored), str(tmp_path / "serving"))
  reloaded = tf.saved_model.load(str(tmp_path / "serving"))
  query = np.tile(np.array([[1.0, -1.0, 0.5]], np.float32), [4, 1])
  want = source.score(*queries(),
                      user_query=query if source.reads_user_query else None).numpy()
  np.testing.assert_allclose(reloaded(*tf_queries(), tf.constant(query)).numpy(), want,
                             rtol=1e-6, atol=1e-7)


def test_the_layout_keeps_tables_out_of_the_json_and_works_on_any_filesystem(fitted):
  source = fitted["ease"]
  path = "ram://tfgrec-test-source-state/ease"
  base.save_source(source, path)
  spec = storage.read_json(storage.join(path, base.SOURCE_SPEC))
  assert spec["class"] == "tfgrec.sources.graph_filter:Ease"
  assert spec["num_items"] == NUM_ITEMS and spec["config"] == source.get_config()
  assert spec["arrays"] == ["filter"]  # Dense EASE: B alone, in the .npz.
  arrays = storage.load_npz(storage.join(path, base.SOURCE_ARRAYS))
  assert arrays["filter"].shape == (NUM_ITEMS, NUM_ITEMS)
  np.testing.assert_array_equal(arrays["filter"], source.filter.numpy())
  assert len(storage.read_text(storage.join(path, base.SOURCE_SPEC))) < 1000
  assert_same_scores(base.load_source(path), source)
  storage.rmtree("ram://tfgrec-test-source-state")


def test_load_and_save_errors(fitted, tmp_path):
  with pytest.raises(FileNotFoundError, match="source.json is missing"):
    base.load_source(str(tmp_path / "nothing"))
  old = tmp_path / "old"  # What an older tfgrec wrote beside its SavedModel.
  old.mkdir()
  (old / base.SOURCE_SPEC).write_text(json.dumps({"name": "ease", "num_items": 4}))
  with pytest.raises(ValueError, match="format None.*older tfgrec"):
    base.load_source(str(old))
  base.save_source(fitted["fresh"], str(tmp_path / "fresh"))
  spec = json.loads((tmp_path / "fresh" / base.SOURCE_SPEC).read_text())
  spec["class"] = "tfgrec.sources.time_context:EventIndex"
  (tmp_path / "fresh" / base.SOURCE_SPEC).write_text(json.dumps(spec))
  with pytest.raises(ValueError, match="'tfgrec.sources.time_context:EventIndex' is not a "
                                       "CandidateSource"):
    base.load_source(str(tmp_path / "fresh"))
  with pytest.raises(ValueError, match="not fit yet"):
    base.save_source(graph_filter.Ease(), str(tmp_path / "unfit"))


# === The public user_query method ===
def test_score_takes_the_user_query_in_and_out_of_tf_function():
  """The graph tower source on 4 items with 2-d embeddings (tests/test_sources.py's hand-checked
  case): no history, user_query (2, 0) scores the cosine with (1, 0) plus the popularity
  prior 0.5 log(p / max p), p = (3/11, 4/11, 2/11, 2/11); a zero query, the prior alone."""
  e = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]], np.float32)
  source = embedding.EmbeddingNeighbours.graph_tower(half_life=1.0, popularity_weight=0.5).fit(
      [0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 2, 0, 1, 3], [1, 2, 1, 2, 1, 2, 3], num_items=4,
      item_data={embedding.ITEM_EMBEDDING: e})
  bias = 0.5 * np.log([3 / 4, 1.0, 1 / 2, 1 / 2])
  empty = (np.full([2, 1], -1, np.int32), np.full([2, 1], -1, np.int64), np.array([30, 30]))
  query = np.array([[2.0, 0.0], [0.0, 0.0]], np.float32)
  want = np.stack([np.array([1.0, 0.0, np.sqrt(0.5), 0.0]) + bias, bias])
  np.testing.assert_allclose(source.score(*empty, user_query=query).numpy(), want, rtol=1e-5,
                             atol=1e-7)
  traced = tf.function(lambda h, t, n, q: source.score(h, t, n, user_query=q))
  np.testing.assert_allclose(traced(*(tf.constant(x) for x in empty), tf.constant(query)),
                             want, rtol=1e-5, atol=1e-7)
  # Without a query: the traced signature's scores (the prior alone here).
  np.testing.assert_allclose(source.score(*empty).numpy(),
                             source.scores(*(tf.constant(x) for x in empty))["scores"].numpy())
  # user_scorer passes it through `score` too.
  histories = base.UserHistories([0, 1], [0, 1], [5, 5], num_users=2)
  users = np.array([1, 0])
  got = base.user_scorer(source, histories, user_query=np.array([[0.0, 3.0], [2.0, 0.0]],
                                                                np.float32))(users)
  history, history_time = histories.batch(users)
  np.testing.assert_allclose(
      got, source.score(history, history_time, histories.latest[users],
                        user_query=np.array([[2.0, 0.0], [0.0, 3.0]], np.float32)).numpy())


def test_score_refuses_a_query_for_a_source_that_reads_none(fitted):
  source = fitted["ease"]
  assert not source.reads_user_query
  np.testing.assert_allclose(source.score(*queries()).numpy(),
                             source.scores(*tf_queries())["scores"].numpy())
  with pytest.raises(ValueError, match=r"ease \(Ease\) reads no user_query .*shape \(4, 3\)"):
    source.score(*queries(), user_query=np.zeros([4, 3], np.float32))


# === EASE's maths in sources/ ===
def test_ease_weights_by_hand_and_the_baseline_wraps_them():
  """Users {0, 1} and {1, 2}, l2 = 1: XᵀX + I = [[2, 1, 0], [1, 3, 1], [0, 1, 2]], det 8,
  P = [[5, -2, 1], [-2, 4, -2], [1, -2, 5]] / 8, B_ij = -P_ij / P_jj off the diagonal:
  B = [[0, .5, -.2], [.4, 0, .4], [-.2, .5, 0]]; item 3 has no event (zero row and column). A
  repeated pair counts once."""
  user, item = np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 2, 2])
  b = graph_filter.ease_weights(user, item, num_items=4, l2=1.0)
  want = np.zeros([4, 4])
  want[:3, :3] = [[0, .5, -.2], [.4, 0, .4], [-.2, .5, 0]]
  np.testing.assert_allclose(b, want, atol=1e-6)
  assert b.dtype == np.float32
  train = metrics.Interactions.from_pairs(user, item, 2)
  np.testing.assert_array_equal(baselines.ease_weights(train, 4, l2=1.0), b)
  source = graph_filter.Ease(half_life=None, l2=1.0).fit(user, item, [0] * 5, num_items=4)
  np.testing.assert_array_equal(source.filter.numpy(), b)
  with pytest.raises(ValueError, match="l2 must be > 0, got 0"):
    graph_filter.ease_weights(user, item, num_items=4, l2=0)


def test_sources_import_nothing_from_eval():
  folder = os.path.dirname(base.__file__)
  for name in sorted(os.listdir(folder)):
    if not name.endswith(".py"):
      continue
    with open(os.path.join(folder, name), encoding="utf-8") as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):  # Imports inside functions included.
      modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
      for module in modules:
        assert not module.startswith("tfgrec.eval"), (name, module)
