"""The GraphSchema of tfgrec's interaction graph, and reading/writing it as a text proto.

Node sets (all node features are scalars per node):
  user      id [string]
  item      id [string], text [string] (title | categories | description), has_text [int64]
  category  id [string]
  item_attribute  id [string]   a value (or bucket) of an items column (tfgrec.data.attributes)
  user_attribute  id [string]   a value (or bucket) of a users column

Edge sets:
  interacted     user -> item      value [float32], timestamp [int64], count [int64]
  interacted_by  item -> user      the same features, edge for edge (the reverse of interacted)
  in_category    item -> category
  has_item       category -> item  (the reverse of in_category)
  has_attribute       item -> item_attribute
  attribute_of        item_attribute -> item  (the reverse)
  user_has_attribute  user -> user_attribute  (users with a training event only)
  attribute_of_user   user_attribute -> user  (the reverse)

Node ``i`` of a node set is entry ``i`` of that node set's vocabulary file (``vocab/<set>.txt``).
An interaction edge stands for all training events of one (user, item) pair: ``count`` events,
``timestamp`` of the latest, ``value`` of the latest (1.0 when the log has no value). An edge
whose events have no time (the raw log left ``timestamp`` empty) has ``timestamp`` -1
(``tfgrec.data.contract.NO_TIME``): read ``timestamp < 0`` as "no time", never as 1969.
"""
import os
from typing import Dict, Tuple

import tensorflow as tf
import tensorflow_gnn as tfgnn
from google.protobuf import text_format

USER, ITEM, CATEGORY = "user", "item", "category"
INTERACTED, INTERACTED_BY, IN_CATEGORY, HAS_ITEM = (
    "interacted", "interacted_by", "in_category", "has_item")
ITEM_ATTRIBUTE, USER_ATTRIBUTE = "item_attribute", "user_attribute"
HAS_ATTRIBUTE, ATTRIBUTE_OF, USER_HAS_ATTRIBUTE, ATTRIBUTE_OF_USER = (
    "has_attribute", "attribute_of", "user_has_attribute", "attribute_of_user")

NODE_FEATURES: Dict[str, Dict[str, tf.DType]] = {
    USER: {"id": tf.string},
    ITEM: {"id": tf.string, "text": tf.string, "has_text": tf.int64},
    CATEGORY: {"id": tf.string},
    ITEM_ATTRIBUTE: {"id": tf.string},
    USER_ATTRIBUTE: {"id": tf.string},
}
_INTERACTION_FEATURES = {"value": tf.float32, "timestamp": tf.int64, "count": tf.int64}
EDGE_SETS: Dict[str, Tuple[str, str, Dict[str, tf.DType]]] = {
    INTERACTED: (USER, ITEM, _INTERACTION_FEATURES),
    INTERACTED_BY: (ITEM, USER, _INTERACTION_FEATURES),
    IN_CATEGORY: (ITEM, CATEGORY, {}),
    HAS_ITEM: (CATEGORY, ITEM, {}),
    HAS_ATTRIBUTE: (ITEM, ITEM_ATTRIBUTE, {}),
    ATTRIBUTE_OF: (ITEM_ATTRIBUTE, ITEM, {}),
    USER_HAS_ATTRIBUTE: (USER, USER_ATTRIBUTE, {}),
    ATTRIBUTE_OF_USER: (USER_ATTRIBUTE, USER, {}),
}

SCHEMA_FILENAME = "schema.pbtxt"
_HEADER = ("# proto-file: tensorflow_gnn/proto/graph_schema.proto\n"
           "# proto-message: GraphSchema\n"
           "#\n"
           "# tfgrec interaction graph. Written by tfgrec.graph.schema; do not edit by hand.\n")


def graph_schema() -> tfgnn.GraphSchema:
  """Returns the GraphSchema proto of the interaction graph."""
  schema = tfgnn.GraphSchema()
  for node_set, feats in NODE_FEATURES.items():
    for name, dtype in feats.items():
      schema.node_sets[node_set].features[name].dtype = dtype.as_datatype_enum
  for edge_set, (source, target, feats) in EDGE_SETS.items():
    schema.edge_sets[edge_set].source = source
    schema.edge_sets[edge_set].target = target
    for name, dtype in feats.items():
      schema.edge_sets[edge_set].features[name].dtype = dtype.as_datatype_enum
  schema.node_sets[USER].description = "Users with at least one interaction."
  schema.node_sets[ITEM].description = (
      "Catalog items and items seen in interactions; cold items included.")
  schema.node_sets[CATEGORY].description = "Item categories from the catalog."
  schema.node_sets[ITEM_ATTRIBUTE].description = (
      "Values (numbers: quantile buckets) of the catalog's attribute columns, one "
      "out-of-vocabulary value per column; vocab and buckets in attributes.json.")
  schema.node_sets[USER_ATTRIBUTE].description = (
      "Values (numbers: quantile buckets) of the users table's attribute columns.")
  schema.edge_sets[INTERACTED].description = "Training interactions, one edge per (user, item)."
  schema.edge_sets[INTERACTED_BY].description = "Reverse of interacted."
  schema.edge_sets[IN_CATEGORY].description = "Item to each of its categories."
  schema.edge_sets[HAS_ITEM].description = "Reverse of in_category."
  schema.edge_sets[HAS_ATTRIBUTE].description = "Item to each of its attribute values."
  schema.edge_sets[ATTRIBUTE_OF].description = "Reverse of has_attribute."
  schema.edge_sets[USER_HAS_ATTRIBUTE].description = (
      "User (with a training event) to each of their attribute values.")
  schema.edge_sets[ATTRIBUTE_OF_USER].description = "Reverse of user_has_attribute."
  tfgnn.validate_schema(schema)
  return schema


def schema_to_text(schema: tfgnn.GraphSchema) -> str:
  return _HEADER + text_format.MessageToString(schema)


def write_schema(schema: tfgnn.GraphSchema, path: str) -> None:
  """Writes `schema` as a text proto with the proto-file header (any TF filesystem path)."""
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(schema_to_text(schema))


def read_schema(path: str) -> tfgnn.GraphSchema:
  """Reads a GraphSchema text proto (a file, or a graph directory holding schema.pbtxt)."""
  if tf.io.gfile.isdir(path):
    path = os.path.join(path, SCHEMA_FILENAME)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"no GraphSchema at {path!r}: build the graph first "
                            "(tfgrec build-graph --out DIR)")
  return tfgnn.read_schema(path)


def graph_spec(schema: tfgnn.GraphSchema = None) -> tfgnn.GraphTensorSpec:
  """The GraphTensorSpec for parsing the graph's tf.Examples."""
  return tfgnn.create_graph_spec_from_schema_pb(schema or graph_schema())
