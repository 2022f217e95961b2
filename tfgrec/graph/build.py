"""Assembles the training graph as one GraphTensor and serializes it as a tf.Example.

The inputs are small tables (vocabularies, collapsed training edges, the catalog); the output is
a scalar GraphTensor following :func:`tfgrec.graph.schema.graph_schema`. The Beam job calls this
once, in the step that gathers the whole training graph (full-graph mode).
"""
import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from tfgrec.data import attributes as attributes_lib
from tfgrec.graph import schema as schema_lib

tf = schema_lib.tf
tfgnn = schema_lib.tfgnn


@dataclasses.dataclass
class GraphTables:
  """Everything the graph holds, as arrays; node i of a set is vocabulary entry i.

  Attributes:
    users: [U] user ids, sorted.
    items: [I] item ids, sorted.
    categories: [C] category names, sorted.
    item_text: [I] text of each item ('' when the item is not in the catalog).
    edges: DataFrame[user, item (int indices), value, timestamp, count], one row per edge;
      timestamp -1 (tfgrec.data.contract.NO_TIME) where the edge's events have no time.
    item_category: [E, 2] int64 (item index, category index) pairs.
    item_attributes: [A] node ids of the item_attribute node set (tfgrec.data.attributes).
    item_attribute: [E, 2] int64 (item index, item attribute index) pairs.
    user_attributes: [B] node ids of the user_attribute node set.
    user_attribute: [E, 2] int64 (user index, user attribute index) pairs.
  """
  users: np.ndarray
  items: np.ndarray
  categories: np.ndarray
  item_text: np.ndarray
  edges: pd.DataFrame
  item_category: np.ndarray
  item_attributes: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros([0], dtype=object))
  item_attribute: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros([0, 2], np.int64))
  user_attributes: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros([0], dtype=object))
  user_attribute: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros([0, 2], np.int64))


def index_of(vocab: np.ndarray, ids: Sequence[str], what: str) -> np.ndarray:
  """Positions of `ids` in the vocabulary; raises if one is missing."""
  index = pd.Index(vocab)
  positions = index.get_indexer(pd.Index(ids))
  if (positions < 0).any():
    missing = pd.Index(ids)[positions < 0][0]
    raise KeyError(f"{what} id {missing!r} is not in the {what} vocabulary")
  return positions.astype(np.int64)


def attribute_pairs(spec_table: Dict, ids: Sequence[str], attributes: Sequence,
                    vocab: np.ndarray, owners: np.ndarray) -> np.ndarray:
  """[E, 2] (owner index, attribute index) pairs, sorted, of rows `ids` with `attributes`
  (JSON text or mappings) mapped by `spec_table`; rows whose id is not in `owners` are skipped."""
  position = pd.Index(owners).get_indexer(pd.Index(ids))
  attribute_index = {a: i for i, a in enumerate(vocab)}
  pairs = [(p, attribute_index[a]) for p, attrs in zip(position, attributes) if p >= 0
           for a in attributes_lib.node_ids(spec_table, attributes_lib.parse_attributes(attrs))]
  out = np.array(sorted(pairs), np.int64).reshape([-1, 2])
  return out


def make_tables(edges: pd.DataFrame, catalog: pd.DataFrame, extra_users: Sequence[str] = (),
                extra_items: Sequence[str] = (), users_table: Optional[pd.DataFrame] = None,
                attribute_spec: Optional[Dict] = None) -> GraphTables:
  """Builds the vocabularies and index arrays.

  Args:
    edges: collapsed training edges, DataFrame[user_id, item_id, value, timestamp, count].
    catalog: DataFrame[item_id, text, categories (tuples)], one row per catalog item, and
      attributes (JSON text) when `attribute_spec` is given.
    extra_users: users with interactions outside train (none today: every user keeps one train
      event); kept for completeness.
    extra_items: items seen only in validation/test interactions; they are nodes too.
    users_table: DataFrame[user_id, attributes (JSON text)], the users table (optional).
    attribute_spec: the attribute spec (tfgrec.data.attributes; None: no attribute nodes).
  """
  users = np.array(sorted(set(edges["user_id"]).union(extra_users)), dtype=object)
  items = np.array(sorted(set(edges["item_id"]).union(catalog["item_id"]).union(extra_items)),
                   dtype=object)
  cats = sorted({c for row in catalog["categories"] for c in row})
  categories = np.array(cats, dtype=object)
  text = np.full(len(items), "", dtype=object)
  cat_pos = index_of(items, catalog["item_id"], "item")
  text[cat_pos] = catalog["text"].to_numpy(dtype=object)
  pairs: List[np.ndarray] = []
  if len(catalog):
    lengths = catalog["categories"].map(len).to_numpy()
    flat = [c for row in catalog["categories"] for c in row]
    if flat:
      pairs = [np.repeat(cat_pos, lengths), index_of(categories, flat, "category")]
  item_category = (np.stack(pairs, axis=1) if pairs else np.zeros([0, 2], np.int64))
  if len(item_category):
    order = np.lexsort((item_category[:, 1], item_category[:, 0]))
    item_category = item_category[order]
  edge_frame = pd.DataFrame({
      "user": index_of(users, edges["user_id"], "user"),
      "item": index_of(items, edges["item_id"], "item"),
      "value": edges["value"].to_numpy(np.float32),
      "timestamp": edges["timestamp"].to_numpy(np.int64),
      "count": edges["count"].to_numpy(np.int64),
  }).sort_values(["user", "item"], kind="stable").reset_index(drop=True)
  tables = GraphTables(users, items, categories, text, edge_frame, item_category)
  if attribute_spec:
    tables.item_attributes = np.array(attributes_lib.vocabulary(attribute_spec["items"]),
                                      dtype=object)
    tables.user_attributes = np.array(attributes_lib.vocabulary(attribute_spec["users"]),
                                      dtype=object)
    if len(catalog) and "attributes" in catalog:
      tables.item_attribute = attribute_pairs(
          attribute_spec["items"], catalog["item_id"], catalog["attributes"],
          tables.item_attributes, items)
    if users_table is not None and len(users_table):
      tables.user_attribute = attribute_pairs(
          attribute_spec["users"], users_table["user_id"], users_table["attributes"],
          tables.user_attributes, users)
  return tables


def to_graph_tensor(tables: GraphTables) -> "tfgnn.GraphTensor":
  """The training graph as a scalar GraphTensor (see tfgrec.graph.schema for the layout)."""
  e = tables.edges
  users = tf.constant(tables.users.astype(str) if len(tables.users) else [], tf.string)
  items = tf.constant(tables.items.astype(str) if len(tables.items) else [], tf.string)
  cats = tf.constant(tables.categories.astype(str) if len(tables.categories) else [], tf.string)
  item_text = tf.constant(tables.item_text.astype(str) if len(tables.items) else [], tf.string)
  has_text = tf.constant((tables.item_text != "").astype(np.int64), tf.int64)
  src, tgt = e["user"].to_numpy(), e["item"].to_numpy()
  inter_feats = {
      "value": tf.constant(e["value"].to_numpy(np.float32), tf.float32),
      "timestamp": tf.constant(e["timestamp"].to_numpy(np.int64), tf.int64),
      "count": tf.constant(e["count"].to_numpy(np.int64), tf.int64),
  }
  ic = tables.item_category
  # Reverse edges: grouped by their new source, as the forward ones are.
  rev = np.lexsort((src, tgt))
  rev_ic = np.lexsort((ic[:, 0], ic[:, 1])) if len(ic) else np.zeros([0], np.int64)
  ia, ua = tables.item_attribute, tables.user_attribute
  rev_ia = np.lexsort((ia[:, 0], ia[:, 1])) if len(ia) else np.zeros([0], np.int64)
  rev_ua = np.lexsort((ua[:, 0], ua[:, 1])) if len(ua) else np.zeros([0], np.int64)

  def ids(vocab):
    return tf.constant(vocab.astype(str) if len(vocab) else [], tf.string)

  def edge_set(source, s_idx, target, t_idx, feats=None):
    return tfgnn.EdgeSet.from_fields(
        sizes=tf.constant([len(s_idx)], tf.int64),
        adjacency=tfgnn.Adjacency.from_indices(
            source=(source, tf.constant(s_idx, tf.int64)),
            target=(target, tf.constant(t_idx, tf.int64))),
        features=feats or {})

  def node_set(n, feats):
    return tfgnn.NodeSet.from_fields(sizes=tf.constant([n], tf.int64), features=feats)

  return tfgnn.GraphTensor.from_pieces(
      node_sets={
          schema_lib.USER: node_set(len(tables.users), {"id": users}),
          schema_lib.ITEM: node_set(len(tables.items), {"id": items, "text": item_text,
                                                        "has_text": has_text}),
          schema_lib.CATEGORY: node_set(len(tables.categories), {"id": cats}),
          schema_lib.ITEM_ATTRIBUTE: node_set(len(tables.item_attributes),
                                              {"id": ids(tables.item_attributes)}),
          schema_lib.USER_ATTRIBUTE: node_set(len(tables.user_attributes),
                                              {"id": ids(tables.user_attributes)}),
      },
      edge_sets={
          schema_lib.INTERACTED: edge_set(schema_lib.USER, src, schema_lib.ITEM, tgt, inter_feats),
          schema_lib.INTERACTED_BY: edge_set(
              schema_lib.ITEM, tgt[rev], schema_lib.USER, src[rev],
              {k: tf.gather(v, rev) for k, v in inter_feats.items()}),
          schema_lib.IN_CATEGORY: edge_set(schema_lib.ITEM, ic[:, 0], schema_lib.CATEGORY,
                                           ic[:, 1]),
          schema_lib.HAS_ITEM: edge_set(schema_lib.CATEGORY, ic[rev_ic, 1], schema_lib.ITEM,
                                        ic[rev_ic, 0]),
          schema_lib.HAS_ATTRIBUTE: edge_set(schema_lib.ITEM, ia[:, 0],
                                             schema_lib.ITEM_ATTRIBUTE, ia[:, 1]),
          schema_lib.ATTRIBUTE_OF: edge_set(schema_lib.ITEM_ATTRIBUTE, ia[rev_ia, 1],
                                            schema_lib.ITEM, ia[rev_ia, 0]),
          schema_lib.USER_HAS_ATTRIBUTE: edge_set(schema_lib.USER, ua[:, 0],
                                                  schema_lib.USER_ATTRIBUTE, ua[:, 1]),
          schema_lib.ATTRIBUTE_OF_USER: edge_set(schema_lib.USER_ATTRIBUTE, ua[rev_ua, 1],
                                                 schema_lib.USER, ua[rev_ua, 0]),
      })


def serialize(graph: "tfgnn.GraphTensor") -> bytes:
  """tf.Example bytes of `graph` (tfgnn.write_example), with deterministic field order."""
  return tfgnn.write_example(graph).SerializeToString(deterministic=True)


def parse(serialized: bytes, schema=None) -> "tfgnn.GraphTensor":
  """Parses one serialized graph back with the schema (as training does)."""
  spec = schema_lib.graph_spec(schema)
  return tfgnn.parse_single_example(spec, tf.constant(serialized))


def degree_quantiles(tables: GraphTables) -> Dict[str, Dict[str, float]]:
  """Degree statistics per (node set, edge set) for stats.json."""

  def describe(degrees: np.ndarray) -> Dict[str, float]:
    if not len(degrees):
      return {"nodes": 0}
    q = np.quantile(degrees, [0.5, 0.9, 0.99])
    return {"nodes": int(len(degrees)), "min": int(degrees.min()), "p50": float(q[0]),
            "p90": float(q[1]), "p99": float(q[2]), "max": int(degrees.max()),
            "mean": round(float(degrees.mean()), 4), "zero": int((degrees == 0).sum())}

  e, ic, ia = tables.edges, tables.item_category, tables.item_attribute
  out = {
      "user.interacted": describe(np.bincount(e["user"], minlength=len(tables.users))),
      "item.interacted_by": describe(np.bincount(e["item"], minlength=len(tables.items))),
      "item.in_category": describe(np.bincount(ic[:, 0], minlength=len(tables.items))),
      "category.has_item": describe(np.bincount(ic[:, 1], minlength=len(tables.categories))),
  }
  if len(tables.item_attributes):
    out["item.has_attribute"] = describe(np.bincount(ia[:, 0], minlength=len(tables.items)))
    out["item_attribute.attribute_of"] = describe(
        np.bincount(ia[:, 1], minlength=len(tables.item_attributes)))
  if len(tables.user_attributes):
    out["user_attribute.attribute_of_user"] = describe(np.bincount(
        tables.user_attribute[:, 1], minlength=len(tables.user_attributes)))
  return out


def add_interactions(graph: "tfgnn.GraphTensor", users: np.ndarray, items: np.ndarray,
                     timestamps: np.ndarray, values: Optional[np.ndarray] = None
                     ) -> "tfgnn.GraphTensor":
  """`graph` with more user-item interactions (both directions): the graph as known later.

  The node sets stay (new edges must join existing nodes), so a trained graph tower runs on the
  result unchanged: e.g. the training graph plus the validation events, to predict the test split.

  Args:
    graph: a scalar GraphTensor in the layout of tfgrec.graph.schema.
    users, items: [N] node indices of the new edges.
    timestamps: [N] their times (-1: no time); values: [N] their values (default 0).
  """
  users = np.asarray(users, np.int64)
  items = np.asarray(items, np.int64)
  new = {"timestamp": np.asarray(timestamps, np.int64),
         "value": (np.zeros(len(users), np.float32) if values is None
                   else np.asarray(values, np.float32)),
         "count": np.ones(len(users), np.int64)}
  dtype = graph.indices_dtype
  edge_sets = {}
  for name, edge_set in graph.edge_sets.items():
    source = tf.cast(edge_set.adjacency.source, dtype)
    target = tf.cast(edge_set.adjacency.target, dtype)
    features = dict(edge_set.features)
    if name in (schema_lib.INTERACTED, schema_lib.INTERACTED_BY):
      src, tgt = (users, items) if name == schema_lib.INTERACTED else (items, users)
      source = tf.concat([source, tf.constant(src, dtype)], 0)
      target = tf.concat([target, tf.constant(tgt, dtype)], 0)
      features = {k: tf.concat([v, tf.constant(new[k], v.dtype)], 0)
                  for k, v in features.items() if k in new}
    edge_sets[name] = tfgnn.EdgeSet.from_fields(
        sizes=tf.reshape(tf.shape(source, out_type=dtype)[0], [1]),
        adjacency=tfgnn.Adjacency.from_indices(source=(edge_set.adjacency.source_name, source),
                                               target=(edge_set.adjacency.target_name, target)),
        features=features)
  node_sets = {n: tfgnn.NodeSet.from_fields(sizes=tf.cast(s.sizes, dtype),
                                            features=dict(s.features))
               for n, s in graph.node_sets.items()}
  return tfgnn.GraphTensor.from_pieces(node_sets=node_sets, edge_sets=edge_sets)
