"""Embeds items that are not in the catalog from their title and categories, inside TF graph.

  encoder = NewItemEncoder(tower=model.tower, text_encoder=text_encoder,
                           category_ids=vocab, category_states=states, category_degree=degree)
  encoder(tf.constant(["Heat (1995)"]), tf.constant([["Action", "Crime"]]))  # [1, dim], unit norm

The steps are those a cold item of the training graph goes through, so a new item lands where
the model would have put it had it been in the graph without interactions:
  1. its text, built as the catalog builds it ('title | cat1, cat2'; tfgrec.data.prepare),
  2. BERT with the tokenization in the graph (tensorflow-text ops, which stock TF Serving
     links) -> the text embedding,
  3. the graph tower's item side: text projection, then each round's messages from the item's
     categories (tfgrec.models.GraphTower.encode_new_items), with the categories' states taken
     from the exported graph,
  4. L2 normalization (the space of the serving module's item embeddings).
Unknown category names are ignored; an item with neither title nor categories gets the
embedding of an item with no text.

`encode` also returns the step-2 text embedding, so the serving module can rank catalog items
by text similarity (encode_items's nearest items) without running BERT twice.
"""
from typing import List, Optional, Tuple

import numpy as np

from tfgrec import _keras_guard

_keras_guard.ensure_legacy_keras()

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from tfgrec.models import graph_tower  # pylint: disable=g-import-not-at-top,wrong-import-position


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


class _ItemPath(tf.Module):
  """The parts of a GraphTower that embed a new item, without its ID embedding tables.

  It runs GraphTower's own code (encode_new_items and the rounds it calls) on these parts, so
  the SavedModel holds the rounds, norms and projections but not the [U, D] and [I, D] ID
  tables, which the serving module already stores as final embeddings.
  """

  encode_new_items = graph_tower.GraphTower.encode_new_items
  _propagate = graph_tower.GraphTower._propagate  # pylint: disable=protected-access

  def __init__(self, tower: graph_tower.GraphTower):
    super().__init__(name="item_path")
    self.config = tower.config
    self.text_projection = tower.text_projection
    self.rounds = tower.rounds
    self.norms = tower.norms
    self.dropout = tower.dropout
    self.projection = tower.projection


class NewItemEncoder(tf.Module):
  """title [B], categories [B, C] -> [B, dim] L2-normalized item embeddings (module docstring).

  Args:
    tower: the trained tfgrec.models.GraphTower.
    text_encoder: the trained text tower (tfgrec.text.TextEncoder), or None when the tower
      does not read text.
    category_ids: [C] category names, in the graph's category order.
    category_states: the category states entering each round (GraphTower.category_round_states
      on the graph the exported item embeddings come from).
    category_degree: [C] items per category in that graph.
  """

  def __init__(self, *, tower, text_encoder, category_ids, category_states: List[np.ndarray],
               category_degree: np.ndarray):
    super().__init__(name="new_item_encoder")
    self.tower = _ItemPath(tower)
    self.text_encoder = text_encoder if tower.text_projection is not None else None
    keys = np.asarray(category_ids).astype(str)
    self.category_table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys),
                                            tf.range(len(keys), dtype=tf.int64)),
        default_value=-1, name="category_ids")
    self.category_states = [tf.constant(np.asarray(s, np.float32)) for s in category_states]
    # A new item joins each of its categories: one more item than the graph has.
    self.category_degree = tf.constant(np.asarray(category_degree, np.float32) + 1.0)
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

  def __call__(self, title: tf.Tensor, categories: tf.Tensor) -> tf.Tensor:
    """title [B], categories [B, C] ('' padding) -> [B, dim] unit-norm item embeddings."""
    return self.encode(title, categories)[0]

  def encode(self, title: tf.Tensor, categories: tf.Tensor
             ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
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
    embedding = self.tower.encode_new_items(text, known, self.category_states,
                                            self.category_degree)
    return tf.math.l2_normalize(embedding, axis=-1), text
