"""Assembles the training graph as one GraphTensor and serializes it as a tf.Example.

The inputs are small tables (vocabularies, collapsed training edges, the catalog); the output is
a scalar GraphTensor following :func:`tfgrec.graph.schema.graph_schema`. The Beam job calls this
once, in the step that gathers the whole training graph (full-graph mode).
"""
import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

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
  """
  users: np.ndarray
  items: np.ndarray
  categories: np.ndarray
  item_text: np.ndarray
  edges: pd.DataFrame
  item_category: np.ndarray


def index_of(vocab: np.ndarray, ids: Sequence[str], what: str) -> np.ndarray:
  """Positions of `ids` in the vocabulary; raises if one is missing."""
  index = pd.Index(vocab)
  positions = index.get_indexer(pd.Index(ids))
  if (positions < 0).any():
    missing = pd.Index(ids)[positions < 0][0]
    raise KeyError(f"{what} id {missing!r} is not in the {what} vocabulary")
  return positions.astype(np.int64)


def make_tables(edges: pd.DataFrame, catalog: pd.DataFrame, extra_users: Sequence[str] = (),
                extra_items: Sequence[str] = ()) -> GraphTables:
  """Builds the vocabularies and index arrays.

  Args:
    edges: collapsed training edges, DataFrame[user_id, item_id, value, timestamp, count].
    catalog: DataFrame[item_id, text, categories (tuples)], one row per catalog item.
    extra_users: users with interactions outside train (none today: every user keeps one train
      event); kept for completeness.
    extra_items: items seen only in validation/test interactions; they are nodes too.
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
  return GraphTables(users, items, categories, text, edge_frame, item_category)


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

  e, ic = tables.edges, tables.item_category
  return {
      "user.interacted": describe(np.bincount(e["user"], minlength=len(tables.users))),
      "item.interacted_by": describe(np.bincount(e["item"], minlength=len(tables.items))),
      "item.in_category": describe(np.bincount(ic[:, 0], minlength=len(tables.items))),
      "category.has_item": describe(np.bincount(ic[:, 1], minlength=len(tables.categories))),
  }


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
