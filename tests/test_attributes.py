"""Attribute columns as node sets: the spec and its mapping, the graph job, the tower."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from tfgrec.data import attributes as attrs
from tfgrec.graph import build
from tfgrec.models import graph_tower as gt

tf = gt.tf

SPEC = {"items": {"year": {"kind": "numeric", "boundaries": [1985.0, 1995.0]},
                  "brand": {"kind": "categorical", "values": ["acme", "zeta"]}},
        "users": {}}


def test_vocabulary_and_node_ids_of_a_row():
  assert attrs.vocabulary(SPEC["items"]) == [
      "brand=acme", "brand=zeta", "brand=<other>",
      "year<1985", "year=[1985,1995)", "year>=1995", "year=<other>"]
  items = SPEC["items"]
  # An unseen category -> the column's <other> node; a column the spec lacks -> nothing.
  assert attrs.node_ids(items, {"year": "1990", "brand": "new co", "colour": "red"}) == [
      "brand=<other>", "year=[1985,1995)"]
  # Bucket edges: a boundary belongs to the bucket it opens.
  assert attrs.node_ids(items, {"year": 1985}) == ["year=[1985,1995)"]
  assert attrs.node_ids(items, {"year": "1984.9"}) == ["year<1985"]
  assert attrs.node_ids(items, {"year": "2020"}) == ["year>=1995"]
  # Missing values give no edge; a number that does not parse gives <other>.
  assert attrs.node_ids(items, {"year": "", "brand": None}) == []
  assert attrs.node_ids(items, {"year": float("nan"), "brand": "  "}) == []
  assert attrs.node_ids(items, {"year": "unknown"}) == ["year=<other>"]
  assert attrs.node_ids(items, {"brand": "zeta"}) == ["brand=zeta"]


def test_column_spec_kinds_min_count_and_caps():
  cfg = attrs.AttributeConfig(buckets=2, min_count=2, max_values=2, categorical=("zip",))
  counts = [("a", 5), ("b", 2), ("c", 1), ("d", 3)]
  # Categorical: values present >= min_count times, the max_values most frequent.
  assert attrs.column_spec(cfg, "brand", counts, 4, False, None) == {
      "kind": "categorical", "values": ["a", "d"]}
  numbers = [("1", 1), ("2", 1), ("3", 1)]
  assert attrs.column_spec(cfg, "size", numbers, 3, True, [1.0, 2.0, 3.0]) == {
      "kind": "numeric", "boundaries": [2.0]}
  # A numeric-looking column named categorical, or with no more distinct values than buckets,
  # is categorical.
  assert attrs.column_spec(cfg, "zip", numbers, 3, True, [1.0, 2.0, 3.0])["kind"] == "categorical"
  assert attrs.column_spec(cfg, "n", numbers[:2], 2, True, [1.0, 1.5, 2.0])["kind"] == (
      "categorical")
  assert attrs.column_spec(attrs.AttributeConfig(buckets=0), "size", numbers, 3, True,
                           None)["kind"] == "categorical"


@pytest.mark.parametrize("kwargs,message", [(dict(buckets=1), "buckets"),
                                            (dict(min_count=0), "min_count")])
def test_attribute_config_errors_name_the_field(kwargs, message):
  with pytest.raises(ValueError, match=message):
    attrs.AttributeConfig(**kwargs)


@pytest.fixture(scope="module")
def attribute_graph_dir(tmp_path_factory):
  """The graph job on a tiny log whose items and users carry attributes."""
  from tfgrec.beam import build_graph as job  # pylint: disable=g-import-not-at-top
  from tfgrec.data import prepare  # pylint: disable=g-import-not-at-top
  raw = tmp_path_factory.mktemp("attribute_raw")
  (raw / "interactions.csv").write_text(
      "user_id,item_id,timestamp\nu1,a,100\nu1,b,200\nu1,c,300\nu2,a,150\nu2,d,250\n"
      "u3,b,120\nu3,c,220\n")
  (raw / "items.csv").write_text(
      "item_id,title,categories,year,brand,note\n"
      "a,Alpha,x|y,1990,acme,n1\nb,Beta,y,1995,acme,n2\nc,Gamma,x,2000,zeta,n3\n"
      "d,Delta,,,solo,n4\ne,Eps,x,2010,zeta,n5\n")
  (raw / "users.csv").write_text("user_id,age\nu1,young\nu2,old\nu3,young\nu9,young\n")
  out = str(tmp_path_factory.mktemp("attribute_graph"))
  cfg = job.BuildGraphConfig(
      interactions=[str(raw / "interactions.csv")], items=[str(raw / "items.csv")],
      users=[str(raw / "users.csv")], out=out, num_shards=1,
      split=prepare.SplitConfig(min_interactions=100),
      attributes=attrs.AttributeConfig(ignore=("note",), buckets=2, min_count=2))
  stats = job.run(cfg)
  return out, stats, str(raw)


def _pairs(graph, edge_set, source_vocab, target_vocab):
  adjacency = graph.edge_sets[edge_set].adjacency
  return sorted((source_vocab[s], target_vocab[t]) for s, t in zip(
      adjacency.source.numpy(), adjacency.target.numpy()))


def test_graph_job_writes_attribute_node_sets(attribute_graph_dir):
  from tfgrec.train import inputs  # pylint: disable=g-import-not-at-top
  out, stats, _ = attribute_graph_dir
  spec = json.loads(open(os.path.join(out, "attributes.json")).read())
  assert "note" not in spec["items"]  # ignored by the config
  # year: 4 present numbers, more distinct values than 2 buckets -> one median boundary.
  assert spec["items"]["year"]["kind"] == "numeric"
  assert len(spec["items"]["year"]["boundaries"]) == 1
  # brand: 'solo' is present once (< min_count 2) -> <other>; age: 'old' likewise.
  assert spec["items"]["brand"] == {"kind": "categorical", "values": ["acme", "zeta"]}
  assert spec["users"]["age"] == {"kind": "categorical", "values": ["young"]}
  graph = inputs.read_graph(out)
  item_vocab = inputs.read_vocab(out, "item")
  item_attributes = inputs.read_vocab(out, "item_attribute")
  user_attributes = inputs.read_vocab(out, "user_attribute")
  assert list(item_attributes) == attrs.vocabulary(spec["items"])
  has = _pairs(graph, "has_attribute", item_vocab, item_attributes)
  by_item = {i: [a for j, a in has if j == i] for i in item_vocab}
  assert by_item["d"] == ["brand=<other>"]  # year missing: no edge
  assert by_item["a"][0] == "brand=acme" and by_item["a"][1].startswith("year")
  assert len(by_item["e"]) == 2  # a cold item (no interaction) has its attribute edges too
  # The reverse edge set holds the same pairs.
  reverse = _pairs(graph, "attribute_of", item_attributes, item_vocab)
  assert sorted((i, a) for a, i in reverse) == has
  users = _pairs(graph, "user_has_attribute", inputs.read_vocab(out, "user"), user_attributes)
  # u9 has no event: not a node, no edge.
  assert users == [("u1", "age=young"), ("u2", "age=<other>"), ("u3", "age=young")]
  g = stats["graph"]
  assert g["edge_sets"]["has_attribute"] == len(has) == 9
  assert g["node_sets"]["user_attribute"] == 2
  assert g["attributes"] == {"items": {"brand": "categorical", "year": "numeric"},
                             "users": {"age": "categorical"}}


def test_tower_reads_attributes_and_can_leave_them_out(attribute_graph_dir):
  from tfgrec.train import inputs  # pylint: disable=g-import-not-at-top
  out, _, _ = attribute_graph_dir
  graph = gt.prepare_graph(inputs.read_graph(out))
  sizes = {n: int(graph.node_sets[n].total_size) for n in graph.node_sets}

  def tower(**kwargs):
    tf.keras.utils.set_random_seed(0)
    cfg = gt.GraphTowerConfig(dim=8, rounds=2, heads=2, dropout=0.0, **kwargs)
    return gt.GraphTower(cfg, num_users=sizes["user"], num_items=sizes["item"],
                         num_categories=sizes["category"],
                         num_item_attributes=sizes["item_attribute"],
                         num_user_attributes=sizes["user_attribute"])

  with_attributes = tower()
  with tf.GradientTape() as tape:
    states = with_attributes({"graph": graph}, training=True)
    loss = tf.reduce_sum(states["item"] ** 2) + tf.reduce_sum(states["user"] ** 2)
  grads = dict(zip([v.name for v in with_attributes.trainable_variables],
                   tape.gradient(loss, with_attributes.trainable_variables)))
  for name in ("item_attribute_id", "user_attribute_id"):
    grad = [g for n, g in grads.items() if name in n]
    assert grad and grad[0] is not None
  # Changing an attribute value's embedding moves the items that have it, and only them.
  table = with_attributes.attribute_embedding["item_attribute"].embeddings
  before = with_attributes({"graph": graph})["item"].numpy()
  vocab = list(inputs.read_vocab(out, "item_attribute"))
  table.assign(tf.tensor_scatter_nd_add(table, [[vocab.index("brand=<other>")]],
                                        tf.ones([1, 8])))
  after = with_attributes({"graph": graph})["item"].numpy()
  moved = list(inputs.read_vocab(out, "item")[np.abs(after - before).max(axis=1) > 1e-6])
  assert "d" in moved  # d's only attribute is brand=<other>
  without = tower(use_attributes=False)
  assert not without.attribute_embedding
  names = " ".join(v.name for v in without.trainable_variables)
  assert "attribute" not in names
  assert without({"graph": graph})["item"].shape == before.shape


def test_a_graph_without_attribute_node_sets_still_trains_the_tower():
  # A graph directory written before attribute node sets existed: the tower reads none.
  edges = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"],
                        "value": np.float32([1, 1]), "timestamp": [1, 2], "count": [1, 1]})
  catalog = pd.DataFrame({"item_id": ["x", "y"], "text": ["X", "Y"],
                          "categories": [("A",), ("B",)]})
  full = build.to_graph_tensor(build.make_tables(edges, catalog))
  old = gt.tfgnn.GraphTensor.from_pieces(
      node_sets={n: full.node_sets[n] for n in ("user", "item", "category")},
      edge_sets={e: full.edge_sets[e] for e in ("interacted", "interacted_by", "in_category",
                                                "has_item")})
  tower = gt.GraphTower(gt.GraphTowerConfig(dim=4, rounds=1, heads=1), num_users=2,
                        num_items=2, num_categories=2)
  assert tower({"graph": gt.prepare_graph(old)})["item"].shape == (2, 4)


def test_build_graph_command_takes_the_attribute_options(attribute_graph_dir, tmp_path):
  # As the README shows it, in a fresh process: one column ignored, two buckets.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from tests.test_cli import ROOT, fresh_env  # pylint: disable=g-import-not-at-top
  _, _, raw = attribute_graph_dir
  r = subprocess.run([sys.executable, "-m", "tfgrec.cli", "build-graph", "--raw", raw,
                      "--out", str(tmp_path / "g"), "--num-shards", "1",
                      "--ignore-attribute", "brand", "--ignore-attribute", "note",
                      "--attribute-buckets", "2", "--min-interactions", "100"],
                     capture_output=True, text=True, cwd=ROOT, env=fresh_env(), timeout=300,
                     check=False)
  assert r.returncode == 0, r.stderr
  assert "items attributes: year (numeric); 3 item_attribute nodes, 4 edges" in r.stdout
  spec = json.loads((tmp_path / "g" / "attributes.json").read_text())
  assert sorted(spec["items"]) == ["year"] and spec["config"]["buckets"] == 2


@pytest.mark.parametrize("update_attributes", [True, False])
def test_new_item_with_attributes_matches_a_cold_item_of_the_graph(attribute_graph_dir,
                                                                   update_attributes):
  from tfgrec.train import inputs  # pylint: disable=g-import-not-at-top
  out, _, _ = attribute_graph_dir
  graph = gt.prepare_graph(inputs.read_graph(out))
  sizes = {n: int(graph.node_sets[n].total_size) for n in graph.node_sets}
  cfg = gt.GraphTowerConfig(dim=8, rounds=2, heads=2, dropout=0.0,
                            update_attributes=update_attributes)
  tower = gt.GraphTower(cfg, num_users=sizes["user"], num_items=sizes["item"],
                        num_categories=sizes["category"], item_text_dim=5,
                        num_item_attributes=sizes["item_attribute"],
                        num_user_attributes=sizes["user_attribute"])
  text = tf.random.normal([sizes["item"], 5], seed=3)
  tower_inputs = {"graph": graph, "item_text": text}
  full = tower(tower_inputs)["item"].numpy()
  states = tower.side_round_states(tower_inputs)
  assert sorted(states) == ["category", "item_attribute", "user_attribute"]
  # Not updated, a value keeps its embedding in every round.
  assert update_attributes != all(np.allclose(s, states["item_attribute"][0])
                                  for s in states["item_attribute"])
  items = list(inputs.read_vocab(out, "item"))
  e = items.index("e")  # a cold item: category x, year and brand=zeta

  def members(edge_set, side):
    adjacency = graph.edge_sets[edge_set].adjacency
    index = adjacency.target if side == "target" else adjacency.source
    other = adjacency.source if side == "target" else adjacency.target
    return sorted(int(i) for i, j in zip(index.numpy(), other.numpy()) if j == e)

  categories = members("in_category", "target")
  attributes = members("has_attribute", "target")
  assert len(categories) == 1 and len(attributes) == 2

  def degree(edge_set, count):
    return tf.math.unsorted_segment_sum(
        tf.ones_like(graph.edge_sets[edge_set].adjacency.source, tf.float32),
        graph.edge_sets[edge_set].adjacency.source, count)

  new = tower.encode_new_items(
      tf.stack([text[e], text[e]]), tf.ragged.constant([categories, categories], tf.int64),
      states["category"], degree("has_item", sizes["category"]),
      tf.ragged.constant([attributes, []], tf.int64), states["item_attribute"],
      degree("attribute_of", sizes["item_attribute"]))
  np.testing.assert_allclose(new[0].numpy(), full[e], rtol=1e-5, atol=1e-5)
  # Without its attribute values the same item lands elsewhere.
  assert not np.allclose(new[1].numpy(), full[e], atol=1e-3)


def test_in_graph_lookup_maps_as_the_graph_job_does():
  from tfgrec.export import item_encoder  # pylint: disable=g-import-not-at-top
  lookup = item_encoder.AttributeLookup(SPEC["items"])
  vocab = attrs.vocabulary(SPEC["items"])
  rows = [{"year": "1990", "brand": "new co"}, {"year": "1985"}, {"year": " 1984.9 "},
          {"year": "2e3"}, {"year": "unknown"}, {"brand": " acme "}, {"brand": ""},
          {"colour": "red"}, {"year": "-5", "brand": "zeta"}, {}]
  requests = [[f"{c}={v}" for c, v in row.items()] for row in rows]
  requests[-1] = ["", "no-equals-sign", "=x"]  # padding, no column, an empty column name
  width = max(len(r) for r in requests)
  padded = tf.constant([r + [""] * (width - len(r)) for r in requests])
  got = lookup(padded).to_list()
  for row, indices in zip(rows, got):
    assert sorted(vocab[i] for i in indices) == attrs.node_ids(SPEC["items"], row), row
  # A value named twice counts once; a spec without columns maps everything to nothing.
  assert lookup(tf.constant([["year=1990", "year=1991"]])).to_list() == [[4]]
  assert item_encoder.AttributeLookup({})(tf.constant([["year=1"]])).to_list() == [[]]


def test_saved_new_item_encoder_reads_attributes_like_the_graph(attribute_graph_dir, tmp_path):
  from tfgrec.export import item_encoder  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs  # pylint: disable=g-import-not-at-top
  out, _, _ = attribute_graph_dir
  graph = gt.prepare_graph(inputs.read_graph(out))
  sizes = {n: int(graph.node_sets[n].total_size) for n in graph.node_sets}
  tower = gt.GraphTower(gt.GraphTowerConfig(dim=8, rounds=2, heads=2, dropout=0.0),
                        num_users=sizes["user"], num_items=sizes["item"],
                        num_categories=sizes["category"],
                        num_item_attributes=sizes["item_attribute"],
                        num_user_attributes=sizes["user_attribute"])
  full = tf.math.l2_normalize(tower({"graph": graph})["item"], axis=-1).numpy()
  states = tower.side_round_states({"graph": graph})

  def degree(edge_set, node_set):
    source = graph.edge_sets[edge_set].adjacency.source
    return tf.math.unsorted_segment_sum(tf.ones_like(source), source, sizes[node_set]).numpy()

  # The graph counts each cold item in its degrees; a new item adds one: take e's out.
  spec = attrs.read_spec(out)
  e = list(inputs.read_vocab(out, "item")).index("e")
  own = lambda edge_set: [int(t) for s, t in zip(
      graph.edge_sets[edge_set].adjacency.source.numpy(),
      graph.edge_sets[edge_set].adjacency.target.numpy()) if s == e]
  category_degree = degree("has_item", "category")
  category_degree[own("in_category")] -= 1
  attribute_degree = degree("attribute_of", "item_attribute")
  attribute_degree[own("has_attribute")] -= 1
  encoder = item_encoder.NewItemEncoder(
      tower=tower, text_encoder=None, category_ids=inputs.read_vocab(out, "category"),
      category_states=[s.numpy() for s in states["category"]], category_degree=category_degree,
      attribute_spec=spec["items"],
      attribute_states=[s.numpy() for s in states["item_attribute"]],
      attribute_degree=attribute_degree)
  module = tf.Module()
  module.encoder = encoder
  module.encode = tf.function(lambda t, c, a: encoder(t, c, a), input_signature=[
      tf.TensorSpec([None], tf.string), tf.TensorSpec([None, None], tf.string),
      tf.TensorSpec([None, None], tf.string)])
  args = (tf.constant(["Eps", "Eps"]), tf.constant([["x"], ["x"]]),
          tf.constant([["year=2010", "brand=zeta"], ["", ""]]))
  local = encoder(*args).numpy()
  np.testing.assert_allclose(local[0], full[e], rtol=1e-5, atol=1e-5)
  assert not np.allclose(local[1], full[e], atol=1e-3)  # the same item without attributes
  tf.saved_model.save(module, str(tmp_path / "encoder"))
  loaded = tf.saved_model.load(str(tmp_path / "encoder"))
  np.testing.assert_allclose(loaded.encode(*args).numpy(), local, rtol=1e-6, atol=1e-6)


def test_release_time_reads_years_dates_and_epoch_seconds():
  assert attrs.release_time("1995") == attrs.release_time(1995) == 788918400  # 1995-01-01
  assert attrs.release_time("2019-05-01") == 1556668800
  assert attrs.release_time("1700000000") == 1700000000
  for missing in ("", None, "soon", float("nan")):
    assert attrs.release_time(missing) == -1
  assert attrs.release_times(['{"year": "1995"}', "{}", None], "year").tolist() == [
      788918400, -1, -1]


def test_release_year_makes_items_available_from_their_release(attribute_graph_dir):
  import types  # pylint: disable=g-import-not-at-top
  from tfgrec import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfgrec.train import two_stage as ranking_run  # pylint: disable=g-import-not-at-top
  from tfgrec.sources import time_context  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs  # pylint: disable=g-import-not-at-top
  out, _, _ = attribute_graph_dir
  item_ids = inputs.read_vocab(out, "item")
  fake = types.SimpleNamespace(item_ids=item_ids)
  config = config_lib.config_from_dict({"graph_dir": out})
  times = ranking_run.release_times(config, fake)
  year = {i: attrs.release_time(y) for i, y in zip("abcde", ["1990", "1995", "2000", "", "2010"])}
  assert times.tolist() == [year[i] for i in item_ids]
  off = config_lib.config_from_dict({"graph_dir": out, "ranking": {"release_attribute": None}})
  assert ranking_run.release_times(off, fake) is None
  # An item exists from the earlier of its release and its first event, never before: no
  # item is fresh (or has an age) at a time before it was released.
  index = time_context.EventIndex([0, 1], [500, 500], num_items=2, available_time=[100, -1])
  age, available = index.age(tf.constant([[0, 1]], tf.int64), tf.constant([300], tf.int64))
  assert age.numpy().tolist() == [[200, -200]] and available.numpy().tolist() == [[True, False]]
  _, early = index.age(tf.constant([[0]], tf.int64), tf.constant([50], tf.int64))
  assert early.numpy().tolist() == [[False]]


def test_new_user_from_attributes_matches_a_user_without_events_in_the_graph():
  # A user node with attribute edges and no interaction (u9) is what a new user is: no ID
  # state, only their attribute values.
  edges = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"],
                        "value": np.float32([1, 1, 1]), "timestamp": [1, 2, 3],
                        "count": [1, 1, 1]})
  catalog = pd.DataFrame({"item_id": ["a", "b"], "text": ["A", "B"],
                          "categories": [("x",), ("y",)], "attributes": ["{}", "{}"]})
  users = pd.DataFrame({"user_id": ["u1", "u2", "u9"],
                        "attributes": ['{"age": "young"}', '{"age": "old"}',
                                       '{"age": "young", "plan": "pro"}']})
  spec = {"items": {}, "users": {"age": {"kind": "categorical", "values": ["old", "young"]},
                                 "plan": {"kind": "categorical", "values": ["pro"]}}}
  tables = build.make_tables(edges, catalog, extra_users=["u9"], users_table=users,
                             attribute_spec=spec)
  graph = gt.prepare_graph(build.to_graph_tensor(tables))
  tower = gt.GraphTower(gt.GraphTowerConfig(dim=8, rounds=2, heads=2, dropout=0.0),
                        num_users=3, num_items=2, num_categories=2,
                        num_user_attributes=len(tables.user_attributes))
  full = tower({"graph": graph})["user"].numpy()
  states = tower.side_round_states({"graph": graph})
  vocab = list(tables.user_attributes)
  values = [vocab.index("age=young"), vocab.index("plan=pro")]
  source = graph.edge_sets["user_has_attribute"].adjacency.target
  degree = tf.math.unsorted_segment_sum(tf.ones_like(source, tf.float32), source, len(vocab))
  new = tower.encode_new_users(tf.ragged.constant([values, values[:1]], tf.int64),
                               states["user_attribute"], degree)
  u9 = list(tables.users).index("u9")
  np.testing.assert_allclose(new[0].numpy(), full[u9], rtol=1e-5, atol=1e-5)
  assert not np.allclose(new[1].numpy(), full[u9], atol=1e-3)  # one value fewer
  # A tower that does not read attributes has nothing to say about a new user.
  plain = gt.GraphTower(gt.GraphTowerConfig(dim=8, rounds=2, heads=2, use_attributes=False),
                        num_users=3, num_items=2, num_categories=2,
                        num_user_attributes=len(tables.user_attributes))
  assert not plain.encode_new_users(tf.ragged.constant([values], tf.int64), [], degree).numpy(
      ).any()
