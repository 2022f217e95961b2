"""Embeds items that are not in the catalog from their title, categories and attributes, inside
the TF graph.

  encoder = NewItemEncoder(tower=model.tower, text_encoder=text_encoder,
                           category_ids=vocab, category_states=states, category_degree=degree,
                           attribute_spec=spec["items"], attribute_states=..., attribute_degree=...)
  encoder(tf.constant(["Heat (1995)"]), tf.constant([["Action", "Crime"]]),
          tf.constant([["year=1995"]]))  # [1, dim], unit norm

The steps are those a cold item of the training graph goes through, so a new item lands where
the model would have put it had it been in the graph without interactions:
  1. its text, built as the catalog builds it ('title | cat1, cat2'; tfgrec.data.prepare),
  2. BERT with the tokenization in the graph (tensorflow-text ops, which stock TF Serving
     links) -> the text embedding,
  3. its attributes ("column=value" strings) mapped to attribute nodes by the graph's
     attributes.json, as the graph job maps a catalog row (AttributeLookup, the in-graph twin of
     tfgrec.data.attributes.node_ids: numbers bucketized, unseen values to the column's <other>
     node, missing values and unknown columns dropped),
  4. the graph tower's item side: text projection, then each round's messages from the item's
     categories and attribute values (tfgrec.models.GraphTower.encode_new_items), with their
     states taken from the exported graph,
  5. L2 normalization (the space of the serving module's item embeddings).
Unknown category names are ignored; an item with neither title nor categories gets the
embedding of an item with no text.

`encode` also returns the step-2 text embedding, so the serving module can rank catalog items
by text similarity (encode_items's nearest items) without running BERT twice.

NewUserEncoder does the same for users the graph does not have, from their attributes
(steps 3 to 5 on the user side: GraphTower.encode_new_users).
"""
from typing import List, Optional, Tuple

import numpy as np

import tensorflow as tf

from tfgrec.data import attributes as attributes_lib
from tfgrec.models import graph_tower

# A finite decimal number as Python's float() reads one (surrounding white space allowed).
_NUMBER = r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*"


def first_occurrences(values: tf.Tensor) -> tf.Tensor:
  """[B, C] -> [B, C] bool: True where the value is not in an earlier column of its row.

  TF Serving's batching pads variable-length inputs with the request's first element, so a
  padded row may repeat its first value; counting each value once makes that harmless.
  """
  width = tf.shape(values)[1]
  earlier = tf.logical_and(tf.linalg.band_part(tf.ones([width, width], tf.bool), -1, 0),
                           tf.logical_not(tf.eye(width, dtype=tf.bool)))
  same = tf.equal(values[:, :, None], values[:, None, :])
  return tf.logical_not(tf.reduce_any(tf.logical_and(same, earlier[None]), axis=2))


def item_text(title: tf.Tensor, categories: tf.Tensor) -> tf.Tensor:
  """[B] strings 'title | cat1, cat2' from title [B] and categories [B, C] ('' padding).

  The in-graph twin of tfgrec.data.prepare.item_text (without a description); a category
  named twice in a row is written once.
  """
  title = tf.strings.strip(title)
  kept = tf.ragged.boolean_mask(categories, tf.logical_and(tf.not_equal(categories, ""),
                                                           first_occurrences(categories)))
  joined = tf.strings.reduce_join(kept, axis=1, separator=", ")
  has_title, has_categories = tf.not_equal(title, ""), tf.not_equal(joined, "")
  both = tf.strings.join([title, joined], separator=" | ")
  return tf.where(tf.logical_and(has_title, has_categories), both,
                  tf.where(has_title, title, joined))


def _lookup_table(keys: List[str], name: str,
                  values: Optional[List[int]] = None) -> tf.lookup.StaticHashTable:
  """A string -> int64 table of `keys` (to `values`, default their positions); -1 elsewhere.

  Works with no keys at all (a graph without categories, a spec without columns): a
  StaticHashTable cannot be empty, so it then holds one key no input string is taken for
  ("\\x00", mapped to -1 like any unknown string).
  """
  values = list(range(len(keys))) if values is None else list(values)
  if not keys:
    keys, values = ["\x00"], [-1]
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string),
                                          tf.constant(values, tf.int64)),
      default_value=-1, name=name)


class AttributeLookup(tf.Module):
  """"column=value" strings [B, A] -> [B, None] ragged attribute node indices, in the graph.

  The in-graph twin of tfgrec.data.attributes.node_ids for one table's spec (a test checks
  them equal): a numeric column's value is bucketized by its boundaries (a value that is not
  a number goes to the column's <other> node), a categorical value is looked up (unseen values
  go to <other>); '' padding, strings without '=', blank values and columns the spec does not
  hold give no node; a node named twice in a row counts once.
  """

  def __init__(self, table_spec, name: str = "attribute_lookup"):
    super().__init__(name=name)
    columns = sorted(table_spec)
    vocab = attributes_lib.vocabulary(table_spec)
    position = {node: i for i, node in enumerate(vocab)}
    self.size = len(vocab)
    keys, values, first, other, numeric, bounds = [], [], [], [], [], []
    for column in columns:
      entry = table_spec[column]
      other.append(position[attributes_lib.other_id(column)])
      is_numeric = entry["kind"] == attributes_lib.NUMERIC
      numeric.append(is_numeric)
      if is_numeric:
        first.append(position[attributes_lib.bucket_labels(column, entry["boundaries"])[0]])
        bounds.append([float(b) for b in entry["boundaries"]])
      else:
        first.append(-1)
        bounds.append([])
        for value in entry["values"]:
          keys.append(f"{column}={value}")
          values.append(position[keys[-1]])
    width = max([len(b) for b in bounds] + [1])
    padded = np.full([max(len(columns), 1), width], np.inf)
    for i, b in enumerate(bounds):
      padded[i, :len(b)] = b

    self.column_table = _lookup_table(columns, "attribute_columns")
    self.value_table = _lookup_table(keys, "attribute_values", values)
    self.first = tf.constant(first + [-1], tf.int64)
    self.other = tf.constant(other + [-1], tf.int64)
    self.numeric = tf.constant(numeric + [False], tf.bool)
    self.boundaries = tf.constant(padded, tf.float64)

  def __call__(self, attributes: tf.Tensor) -> tf.RaggedTensor:
    attributes = tf.convert_to_tensor(attributes, tf.string)
    has_value = tf.strings.regex_full_match(attributes, "(?s)[^=]*=.*")
    column = tf.strings.regex_replace(attributes, "(?s)=.*", "", replace_global=False)
    value = tf.strings.regex_replace(attributes, "(?s)^[^=]*=", "", replace_global=False)
    stripped = tf.strings.strip(value)
    col = self.column_table.lookup(column)
    present = tf.logical_and(tf.logical_and(has_value, col >= 0), tf.not_equal(stripped, ""))
    safe = tf.maximum(col, 0)
    parses = tf.strings.regex_full_match(value, _NUMBER)
    number = tf.strings.to_number(tf.where(parses, stripped, "0"), tf.float64)
    bucket = tf.reduce_sum(tf.cast(tf.gather(self.boundaries, safe) <= number[..., None],
                                   tf.int64), axis=-1)
    other = tf.gather(self.other, safe)
    numeric_index = tf.where(parses, tf.gather(self.first, safe) + bucket, other)
    looked_up = self.value_table.lookup(tf.strings.join([column, "=", stripped]))
    index = tf.where(tf.gather(self.numeric, safe), numeric_index,
                     tf.where(looked_up >= 0, looked_up, other))
    index = tf.where(present, index, -1)
    keep = tf.logical_and(present, first_occurrences(index))
    return tf.ragged.boolean_mask(index, keep)


def _attribute_parts(spec, states: List[np.ndarray], degree: np.ndarray):
  """(AttributeLookup, per-round state constants, degrees counting the new node) of one table's
  attribute values, checked against the graph's count of values."""
  lookup = AttributeLookup(spec)
  if lookup.size != len(degree):
    raise ValueError(f"the attribute spec has {lookup.size} values, the graph {len(degree)}: "
                     "export from the run's own graph")
  # A new node joins each of its values: one more member than the graph has.
  return (lookup, [tf.constant(np.asarray(s, np.float32)) for s in states],
          tf.constant(np.asarray(degree, np.float32) + 1.0))


class _ColdPath(tf.Module):
  """The parts of a GraphTower that embed a new item or user, without its ID embedding tables.

  It runs GraphTower's own code (encode_new_items / encode_new_users and the rounds they call)
  on these parts, so the SavedModel holds the rounds, norms and projections but not the [U, D]
  and [I, D] ID tables, which the serving module already stores as final embeddings.
  """

  encode_new_items = graph_tower.GraphTower.encode_new_items
  encode_new_users = graph_tower.GraphTower.encode_new_users
  _encode_cold = graph_tower.GraphTower._encode_cold  # pylint: disable=protected-access
  _propagate = graph_tower.GraphTower._propagate  # pylint: disable=protected-access
  _receivers = graph_tower.GraphTower._receivers  # pylint: disable=protected-access

  def __init__(self, tower: graph_tower.GraphTower, name: str):
    super().__init__(name=name)
    self.config = tower.config
    self.side_sets = tower.side_sets
    self.text_projection = tower.text_projection
    self.rounds = tower.rounds
    self.norms = tower.norms
    self.dropout = tower.dropout
    self.projection = tower.projection


class NewItemEncoder(tf.Module):
  """title [B], categories [B, C], attributes [B, A] -> [B, dim] L2-normalized item embeddings
  (module docstring).

  Args:
    tower: the trained tfgrec.models.GraphTower.
    text_encoder: the trained text tower (tfgrec.text.TextEncoder), or None when the tower
      does not read text.
    category_ids: [C] category names, in the graph's category order.
    category_states: the category states entering each round (GraphTower.category_round_states
      on the graph the exported item embeddings come from).
    category_degree: [C] items per category in that graph.
    attribute_spec: the items table of the graph's attributes.json (None or empty: attributes
      are not read).
    attribute_states: the item_attribute states entering each round
      (GraphTower.side_round_states), when the tower reads attribute values.
    attribute_degree: [A] items per attribute value in that graph.
  """

  def __init__(self, *, tower, text_encoder, category_ids, category_states: List[np.ndarray],
               category_degree: np.ndarray, attribute_spec=None,
               attribute_states: Optional[List[np.ndarray]] = None,
               attribute_degree: Optional[np.ndarray] = None):
    super().__init__(name="new_item_encoder")
    self.tower = _ColdPath(tower, "item_path")
    self.text_encoder = text_encoder if tower.text_projection is not None else None
    self.category_table = _lookup_table(np.asarray(category_ids).astype(str).tolist(),
                                        "category_ids")
    self.category_states = [tf.constant(np.asarray(s, np.float32)) for s in category_states]
    # A new item joins each of its categories: one more item than the graph has.
    self.category_degree = tf.constant(np.asarray(category_degree, np.float32) + 1.0)
    self.attribute_lookup = self.attribute_states = self.attribute_degree = None
    if attribute_spec and attribute_states is not None and attribute_degree is not None:
      (self.attribute_lookup, self.attribute_states,
       self.attribute_degree) = _attribute_parts(attribute_spec, attribute_states,
                                                 attribute_degree)
    self.dim = int(tower.config.dim)
    # The width of `encode`'s text embeddings (0: the tower reads no text).
    self.text_dim = 0 if self.text_encoder is None else int(self.text_encoder.dim)

  def text_embeddings(self, text: tf.Tensor) -> Optional[tf.Tensor]:
    """[B] item texts -> [B, text_dim] unit-norm text embeddings ('' -> zeros); None without
    a text encoder."""
    if self.text_encoder is None:
      return None
    vectors = self.text_encoder(text, training=False)
    return vectors * tf.cast(tf.not_equal(text, ""), vectors.dtype)[:, None]

  def __call__(self, title: tf.Tensor, categories: tf.Tensor,
               attributes: Optional[tf.Tensor] = None) -> tf.Tensor:
    """title [B], categories [B, C], attributes [B, A] ("column=value"; '' padding) -> [B, dim]
    unit-norm item embeddings."""
    return self.encode(title, categories, attributes)[0]

  def encode(self, title: tf.Tensor, categories: tf.Tensor,
             attributes: Optional[tf.Tensor] = None) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """Like __call__, with the text embedding the tower read.

    Returns:
      (embedding [B, dim] unit norm, text [B, text_dim] unit norm or zeros for an item with
      neither title nor categories; None when the tower reads no text).
    """
    title = tf.reshape(tf.convert_to_tensor(title, tf.string), [-1])
    categories = tf.convert_to_tensor(categories, tf.string)
    # A [B, 0] categories tensor is fine; its rows must match the titles.
    tf.debugging.assert_equal(tf.shape(categories)[0], tf.shape(title)[0],
                              message="title and categories must have the same batch size")
    index = self.category_table.lookup(categories)
    known = tf.ragged.boolean_mask(index, tf.logical_and(index >= 0,
                                                         first_occurrences(categories)))
    text = self.text_embeddings(item_text(title, categories))
    values = None
    if self.attribute_lookup is not None and attributes is not None:
      attributes = tf.convert_to_tensor(attributes, tf.string)
      tf.debugging.assert_equal(tf.shape(attributes)[0], tf.shape(title)[0],
                                message="title and attributes must have the same batch size")
      values = self.attribute_lookup(attributes)
    elif self.attribute_lookup is not None:
      values = tf.RaggedTensor.from_row_lengths(
          tf.zeros([0], tf.int64), tf.zeros(tf.shape(title)[:1], tf.int64))
    embedding = self.tower.encode_new_items(text, known, self.category_states,
                                            self.category_degree, values,
                                            self.attribute_states, self.attribute_degree)
    return tf.math.l2_normalize(embedding, axis=-1), text


class NewUserEncoder(tf.Module):
  """attributes [B, A] ("column=value"; '' padding) -> the graph-tower state of users the graph
  does not have, from their attributes.

  The user-side twin of NewItemEncoder: the values are mapped to user_attribute nodes as the
  graph job maps a users row (AttributeLookup), then the tower's user side runs on them
  (GraphTower.encode_new_users: no ID state, one message per round from each value, with the
  values' states taken from the exported graph), so a new user lands where a user node of the
  graph with those attributes and no interaction does.

  Args:
    tower: the trained tfgrec.models.GraphTower (it must read attribute values).
    attribute_spec: the users table of the graph's attributes.json.
    attribute_states: the user_attribute states entering each round
      (GraphTower.side_round_states).
    attribute_degree: [A] users per attribute value in that graph.
  """

  def __init__(self, *, tower, attribute_spec, attribute_states: List[np.ndarray],
               attribute_degree: np.ndarray):
    super().__init__(name="new_user_encoder")
    if not attribute_spec:
      raise ValueError("attribute_spec has no user attribute column: no new-user encoder")
    self.tower = _ColdPath(tower, "user_path")
    (self.attribute_lookup, self.attribute_states,
     self.attribute_degree) = _attribute_parts(attribute_spec, attribute_states,
                                               attribute_degree)
    self.dim = int(tower.config.dim)

  def __call__(self, attributes: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """attributes [B, A] -> (embedding [B, dim] unit norm, zeros where no value is known;
    has_attributes [B] bool: at least one value maps to a node)."""
    values = self.attribute_lookup(tf.convert_to_tensor(attributes, tf.string))
    state = self.tower.encode_new_users(values, self.attribute_states, self.attribute_degree)
    has = values.row_lengths() > 0
    return tf.where(has[:, None], tf.math.l2_normalize(state, axis=-1), 0.0), has
