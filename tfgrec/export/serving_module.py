"""The serving graph: a tf.Module with dense-input signatures, saved for TensorFlow Serving.

Built from a trained run, it holds only tensors (embeddings, vocabularies, each known user's seen
items, popularity), so the SavedModel loads with TensorFlow alone (no tfgrec, no TF-GNN):

  recommend(user_id [B] string, history [B, H] string, '' padding, most recent first)
      -> item_ids [B, K] string, scores [B, K] float
     Known users use their trained query embedding; unknown users with a history are embedded
     as the recency-weighted mean of their history items' embeddings (the model's history
     readout); users with neither get the most popular items. Seen items are excluded.
  rank(user_id [B], item_ids [B, N]) -> scores [B, N]
     Unknown items, and users unknown to the model, score -1e9.
  similar_items(item_id [B]) -> item_ids [B, K], scores [B, K]
     The item itself is excluded; an unknown item gets K items at -1e9.
  explain(user_id [B], history [B, H], item_ids [B, N]) -> because [B, N] string,
          contribution [B, N] float
     For each item, the history item that contributed most to its score: the argmax over the
     history h of weight(h) * <item h, item>, the terms of the history readout. The history is
     `history` where a row has one, else the known user's own items (most recent first).
     '' (and contribution 0) where there is no history or the item is unknown.
  encode_items(title [B] string, categories [B, C] string, attributes [B, A] string
               ("column=value", e.g. "year=2019"), '' padding)
      -> embedding [B, D], item_ids [B, K], scores [B, K]
     Items that are not in the catalog, embedded from their text, categories and attributes
     as the model embeds a cold item (tfgrec.export.item_encoder), in the space of the item embeddings (a new item's score
     for a user is the dot product of this embedding with the user's query); with the K
     catalog items nearest to each. With the catalog's text embeddings, "nearest" blends text
     and graph similarity (blend_scores; `scores` are then blended standard scores, not
     cosines); without them it is the graph cosine alone.

  encode_users(attributes [B, A] string ("column=value", e.g. "age_group=25-34"), '' padding)
      -> embedding [B, D], item_ids [B, K], scores [B, K]
     Users the model does not know, embedded from their attributes as the graph tower embeds a
     user node with those attributes and no interaction (tfgrec.export.item_encoder.
     NewUserEncoder), with the K items nearest to that query; rows with no known attribute
     value get a zero embedding and the most popular items. Only in exports whose graph has
     user attributes and whose tower reads them.

Scores are cosine similarities (encode_items's blended scores aside), plus, in `recommend` and
`rank`, the run's popularity prior of each item (tfgrec.train.query; zero when the run picked
none); the retrieval index is a brute-force matmul + top-k in the graph (runs on TF Serving's GPU image; no ScaNN ops needed).
"""
from typing import Dict

import numpy as np

import tensorflow as tf

from tfgrec.export import item_encoder as item_encoder_lib

UNKNOWN_SCORE = -1e9
# encode_items's share of text similarity in a new item's nearest catalog items (blend_scores).
DEFAULT_TEXT_WEIGHT = 0.7


def blend_scores(graph_scores: tf.Tensor, text_scores: tf.Tensor, has_text: tf.Tensor,
                 text_weight: float) -> tf.Tensor:
  """The nearest-item score of new items: text and graph similarity, each standardized.

    score = w * z(text_scores) + (1 - w) * z(graph_scores),   z(x) = (x - mean) / std

  with the mean and standard deviation over the catalog, per new item (per row).

  Why standardize: the two cosines live on different scales. MiniLM's cosine between
  unrelated titles is rarely below 0 and its spread is small (std ~0.1 over MovieLens), while
  the graph cosine spreads over [-1, 1] (std ~0.3) and, for a new item, mostly says "cold
  items are alike": on MovieLens a raw 0.7 / 0.3 blend of cosines still answered "Toy Story 4
  (2019)" with "Curious George" and "Zenon: Z3" (the graph order alone), and Toy Story 1-3
  entered its five nearest only from w = 0.8 (one of them) to 0.9 (all three). In standard
  units w is the share of each signal in the ranking, and w = 0.7 finds all three, while the
  graph side still reorders texts alike (sequels, same-genre titles).
  w = 1 is the text order and w = 0 the graph order (z is increasing).

  Items without text must not win on text similarity: their text score is the row's lowest
  text score among items with text, so on the text side they never rank above an item with
  text. A new item without text (all text scores 0) gets z = 0 on the text side: the graph
  order alone; so does every new item when no catalog item has text.

  Args:
    graph_scores: [B, I] cosines of the new items with the catalog's item embeddings.
    text_scores: [B, I] cosines of their text embeddings with the catalog's.
    has_text: [I] bool, whether the catalog item has a text embedding (a non-zero row).
    text_weight: w in [0, 1].

  Returns:
    [B, I] blended scores.
  """
  def standardize(x):
    mean, variance = tf.nn.moments(x, axes=[1], keepdims=True)
    return (x - mean) / tf.maximum(tf.sqrt(variance), 1e-6)
  lowest = tf.reduce_min(tf.where(has_text[None, :], text_scores, np.inf), axis=1,
                         keepdims=True)
  # A catalog without any text (no items table, no title or description): no text order.
  lowest = tf.where(tf.reduce_any(has_text), lowest, 0.0)
  text_scores = tf.where(has_text[None, :], text_scores, lowest)
  return text_weight * standardize(text_scores) + (1.0 - text_weight) * standardize(graph_scores)


def _table(keys: np.ndarray, name: str) -> tf.lookup.StaticHashTable:
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          tf.constant(np.asarray(keys).astype(str)), tf.range(len(keys), dtype=tf.int64)),
      default_value=-1, name=name)


class ServingModule(tf.Module):
  """See the module docstring.

  Args:
    user_ids: [U] user vocabulary; item_ids: [I] item vocabulary.
    user_embeddings: [U, D] normalized query embeddings of the known users.
    item_embeddings: [I, D] normalized item embeddings.
    seen_indptr, seen_indices: each known user's seen items (CSR over item indices), most
      recent first.
    popularity: [I] training popularity (scores for users without user id or history).
    history_half_life: recency half-life (in history positions) of the unknown-user readout.
    item_bias: [I] the query's popularity prior added to a user's scores in `recommend` and
      `rank` (tfgrec.train.query; None: none).
    k: how many items `recommend` and `similar_items` return.
    item_encoder: the encoder of new items: tfgrec.export.item_encoder.NewItemEncoder (`dim`,
      `text_dim`, encode(title [B], categories [B, C], attributes [B, A]) -> ([B, D] normalized
      embeddings, [B, T] text embeddings or None)), or any callable (title, categories) ->
      [B, D] with `dim`; None: no `encode_items`.
    item_text_embeddings: [I, T] the catalog's text embeddings, as the item encoder's text
      tower embeds them (zero rows: items without text); None: encode_items's nearest items
      come from the graph space alone.
    text_weight: the share w of text similarity in encode_items's nearest items
      (blend_scores); used only with item_text_embeddings.
    user_encoder: the encoder of new users from their attributes
      (tfgrec.export.item_encoder.NewUserEncoder: `dim`, attributes [B, A] -> ([B, D] unit
      embeddings, [B] has_attributes)); None: no `encode_users`.
  """

  def __init__(self, *, user_ids, item_ids, user_embeddings, item_embeddings, seen_indptr,
               seen_indices, popularity, history_half_life: float = 10.0, k: int = 20,
               item_bias=None, item_encoder=None, item_text_embeddings=None,
               text_weight: float = DEFAULT_TEXT_WEIGHT, user_encoder=None):
    super().__init__(name="tfgrec_serving")
    num_items = len(item_ids)
    if not 0 < k <= num_items:
      raise ValueError(f"k must be in [1, {num_items}], got {k}")
    self.k = k
    self.user_table = _table(user_ids, "user_ids")
    self.item_table = _table(item_ids, "item_ids")
    self.item_ids = tf.constant(np.asarray(item_ids).astype(str))
    self.users = tf.Variable(np.asarray(user_embeddings, np.float32), trainable=False,
                             name="user_embeddings")
    self.items = tf.Variable(np.asarray(item_embeddings, np.float32), trainable=False,
                             name="item_embeddings")
    self.seen_indptr = tf.constant(np.asarray(seen_indptr, np.int64))
    self.seen_indices = tf.constant(np.asarray(seen_indices, np.int64))
    pop = np.asarray(popularity, np.float64)
    self.popularity = tf.constant((pop / max(pop.max(), 1.0)).astype(np.float32))
    self.half_life = float(history_half_life or 1e9)
    self.item_bias = tf.constant(np.zeros(num_items, np.float32) if item_bias is None
                                 else np.asarray(item_bias, np.float32))
    if self.item_bias.shape != (num_items,):
      raise ValueError(f"item_bias must be [{num_items}] (one per item), got "
                       f"{list(self.item_bias.shape)}")
    self.item_encoder = item_encoder
    if item_encoder is not None:  # The signature exists only with an encoder.
      self.encode_items_signature = tf.function(self._encode_items, input_signature=[
          tf.TensorSpec([None], tf.string, name="title"),
          tf.TensorSpec([None, None], tf.string, name="categories"),
          tf.TensorSpec([None, None], tf.string, name="attributes")], autograph=False)
    for name, encoder in (("item_encoder", item_encoder), ("user_encoder", user_encoder)):
      if encoder is not None and encoder.dim != self.items.shape[1]:
        raise ValueError(f"{name} makes {encoder.dim}-dim embeddings, the items are "
                         f"{self.items.shape[1]}-dim")
    self.user_encoder = user_encoder
    if user_encoder is not None:
      self.encode_users_signature = tf.function(self._encode_users, input_signature=[
          tf.TensorSpec([None, None], tf.string, name="attributes")], autograph=False)
    if not 0.0 <= text_weight <= 1.0:
      raise ValueError(f"text_weight must be in [0, 1], got {text_weight}")
    self.text_weight = float(text_weight)
    self.item_text = self.has_text = None
    if item_text_embeddings is not None:
      self._set_item_text(np.asarray(item_text_embeddings, np.float32), num_items)

  def _set_item_text(self, text: np.ndarray, num_items: int) -> None:
    """Stores the catalog's [I, T] text embeddings for encode_items (unit rows, zeros kept)."""
    text_dim = getattr(self.item_encoder, "text_dim", 0)
    if not text_dim:
      raise ValueError("item_text_embeddings need an item_encoder that embeds text (a tower "
                       "that reads text); pass item_text_embeddings=None")
    if text.ndim != 2 or text.shape != (num_items, text_dim):
      raise ValueError(f"item_text_embeddings must be [{num_items}, {text_dim}] (items, the "
                       f"item encoder's text width), got {list(text.shape)}")
    norm = np.linalg.norm(text, axis=1, keepdims=True)
    self.has_text = tf.constant(norm[:, 0] > 0)
    # Stored [T, I], the right side of the [B, T] x [T, I] matmul.
    self.item_text = tf.Variable((text / np.maximum(norm, 1e-12)).T, trainable=False,
                                 name="item_text_embeddings")

  @property
  def signature_names(self):
    """The signatures this module serves (serving_default = recommend)."""
    names = ["recommend", "rank", "similar_items", "explain"]
    names += ["encode_items"] if self.item_encoder is not None else []
    return names + (["encode_users"] if self.user_encoder is not None else [])

  def _history_rows(self, history: tf.Tensor):
    """[B, H] strings -> ([B, H] item indices or -1, [B, H] recency weights).

    Only the first (most recent) occurrence of an item in a row counts, and positions count
    the known items before it: a row padded with repeats of its own first item (as TF
    Serving's batching pads variable-length inputs, with the request's first element) or
    with '' gives the same weights. Unknown items and '' weigh 0.
    """
    index = self.item_table.lookup(history)
    return index, self._weights(index)

  def _weights(self, index: tf.Tensor, distinct: bool = False) -> tf.Tensor:
    """[B, H] item indices (-1: none) -> [B, H] recency weights (see _history_rows).

    distinct: the rows hold no repeats (a known user's stored items), so the [B, H, H]
    repeat check is skipped.
    """
    keep = index >= 0
    if not distinct:
      keep = tf.logical_and(keep, item_encoder_lib.first_occurrences(index))
    keep = tf.cast(keep, tf.float32)
    position = tf.cumsum(keep, axis=1, exclusive=True)
    return keep * tf.pow(0.5, position / self.half_life)

  def _queries(self, user_id: tf.Tensor, history: tf.Tensor):
    """[B, D] queries and [B] bool has_query (known user or non-empty history)."""
    user = self.user_table.lookup(user_id)
    known = user >= 0
    index, weight = self._history_rows(history)
    vectors = tf.gather(self.items, tf.maximum(index, 0))
    readout = tf.reduce_sum(vectors * weight[..., None], axis=1)
    readout = tf.math.l2_normalize(readout, axis=-1)
    stored = tf.gather(self.users, tf.maximum(user, 0))
    queries = tf.where(known[:, None], stored, readout)
    has_history = tf.reduce_sum(weight, axis=1) > 0
    return queries, tf.logical_or(known, has_history), user, index

  def _seen_mask(self, user: tf.Tensor, history_index: tf.Tensor) -> tf.Tensor:
    """[B, I] True where the item was seen (known user's items, or in the history)."""
    num_items = tf.shape(self.items)[0]
    batch = tf.shape(user)[0]
    rows = self._known_items(user)
    row_ids = tf.cast(rows.value_rowids(), tf.int64)
    seen = tf.scatter_nd(tf.stack([row_ids, rows.flat_values], axis=1),
                         tf.ones_like(rows.flat_values, tf.int32),
                         tf.cast(tf.stack([batch, num_items]), tf.int64))
    hist = tf.where(history_index >= 0)
    hist_seen = tf.scatter_nd(tf.stack([hist[:, 0], tf.gather_nd(history_index, hist)], axis=1),
                              tf.ones([tf.shape(hist)[0]], tf.int32),
                              tf.cast(tf.stack([batch, num_items]), tf.int64))
    return (seen + hist_seen) > 0

  def _known_items(self, user: tf.Tensor) -> tf.RaggedTensor:
    """[B, None] each known user's items, most recent first (empty rows for unknown users)."""
    safe = tf.maximum(user, 0)
    starts = tf.gather(self.seen_indptr, safe)
    lengths = tf.where(user >= 0, tf.gather(self.seen_indptr, safe + 1) - starts, 0)
    return tf.RaggedTensor.from_row_lengths(
        tf.gather(self.seen_indices, tf.ragged.range(starts, starts + lengths).flat_values),
        lengths)

  def _top_k(self, scores: tf.Tensor) -> Dict[str, tf.Tensor]:
    top = tf.math.top_k(scores, k=self.k)
    return {"item_ids": tf.gather(self.item_ids, top.indices), "scores": top.values}

  # Signatures are traced without AutoGraph: their control flow is plain Python, and converting
  # the source of BERT and the tower cost half a minute per export.
  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name="user_id"),
      tf.TensorSpec([None, None], tf.string, name="history")])
  def recommend(self, user_id, history):
    queries, has_query, user, index = self._queries(user_id, history)
    scores = tf.matmul(queries, self.items, transpose_b=True) + self.item_bias[None, :]
    popular = tf.broadcast_to(self.popularity[None, :], tf.shape(scores))
    scores = tf.where(has_query[:, None], scores, popular)
    scores = tf.where(self._seen_mask(user, index), UNKNOWN_SCORE, scores)
    return self._top_k(scores)

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name="user_id"),
      tf.TensorSpec([None, None], tf.string, name="item_ids")])
  def rank(self, user_id, item_ids):
    """Scores of the given items; unknown items (and users unknown to the model) get -1e9."""
    queries, has_query, _, _ = self._queries(user_id, tf.zeros([tf.shape(user_id)[0], 0],
                                                               tf.string))
    index = self.item_table.lookup(item_ids)
    vectors = tf.gather(self.items, tf.maximum(index, 0))
    scores = (tf.einsum("bd,bnd->bn", queries, vectors)
              + tf.gather(self.item_bias, tf.maximum(index, 0)))
    valid = tf.logical_and(index >= 0, has_query[:, None])
    return {"scores": tf.where(valid, scores, UNKNOWN_SCORE)}

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name="item_id")])
  def similar_items(self, item_id):
    index = self.item_table.lookup(item_id)
    queries = tf.gather(self.items, tf.maximum(index, 0))
    scores = tf.matmul(queries, self.items, transpose_b=True)
    own = tf.one_hot(tf.maximum(index, 0), tf.shape(self.items)[0], on_value=True,
                     off_value=False)
    scores = tf.where(tf.logical_or(own, (index < 0)[:, None]), UNKNOWN_SCORE, scores)
    return self._top_k(scores)

  def signature(self, name: str):
    """The tf.function exported as signature `name`."""
    built = {"encode_items": "encode_items_signature", "encode_users": "encode_users_signature"}
    return getattr(self, built.get(name, name))

  def encode_items(self, title, categories, attributes=None):
    """The encode_items signature, in process; attributes [B, A] may be left out (none)."""
    if self.item_encoder is None:
      raise ValueError("this module has no item encoder: no encode_items")
    title = tf.convert_to_tensor(title, tf.string)
    if attributes is None:
      attributes = tf.zeros(tf.stack([tf.shape(title)[0], 0]), tf.string)
    return self.encode_items_signature(title, categories, attributes)

  def _encode_items(self, title, categories, attributes):
    """The encode_items signature (module docstring); built in __init__ with an encoder."""
    if hasattr(self.item_encoder, "encode"):
      embedding, text = self.item_encoder.encode(title, categories, attributes)
    else:  # A plain callable (title, categories) -> [B, D]: graph neighbours only.
      embedding, text = self.item_encoder(title, categories), None
    scores = tf.matmul(embedding, self.items, transpose_b=True)
    if self.item_text is not None:
      scores = blend_scores(scores, tf.matmul(text, self.item_text), self.has_text,
                            self.text_weight)
    return {"embedding": embedding, **self._top_k(scores)}

  def encode_users(self, attributes):
    """The encode_users signature, in process."""
    if self.user_encoder is None:
      raise ValueError("this module has no user encoder (its graph has no user attributes, or "
                       "its tower does not read them): no encode_users")
    return self.encode_users_signature(tf.convert_to_tensor(attributes, tf.string))

  def _encode_users(self, attributes):
    """The encode_users signature (module docstring); built in __init__ with an encoder."""
    embedding, has = self.user_encoder(attributes)
    scores = tf.matmul(embedding, self.items, transpose_b=True)
    popular = tf.broadcast_to(self.popularity[None, :], tf.shape(scores))
    return {"embedding": embedding, **self._top_k(tf.where(has[:, None], scores, popular))}

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name="user_id"),
      tf.TensorSpec([None, None], tf.string, name="history"),
      tf.TensorSpec([None, None], tf.string, name="item_ids")])
  def explain(self, user_id, history, item_ids):
    given = self.item_table.lookup(history)
    known = self._known_items(self.user_table.lookup(user_id)).to_tensor(default_value=-1)
    width = tf.maximum(tf.shape(given)[1], tf.shape(known)[1])
    pad = lambda rows, value: tf.pad(rows, [[0, 0], [0, width - tf.shape(rows)[1]]],
                                     constant_values=value)
    use_given = tf.reduce_any(given >= 0, axis=1, keepdims=True)
    index = tf.where(use_given, pad(given, -1), pad(known, -1))
    weight = tf.where(use_given, pad(self._weights(given), 0.0),
                      pad(self._weights(known, distinct=True), 0.0))
    vectors = tf.gather(self.items, tf.maximum(index, 0))           # [B, H, D]
    target = self.item_table.lookup(item_ids)
    candidates = tf.gather(self.items, tf.maximum(target, 0))        # [B, N, D]
    terms = tf.einsum("bhd,bnd->bnh", vectors, candidates) * weight[:, None, :]
    terms = tf.where((weight > 0)[:, None, :], terms, -np.inf)
    best = tf.argmax(terms, axis=2, output_type=tf.int32)            # [B, N]
    contribution = tf.reduce_max(terms, axis=2)
    ok = tf.logical_and(target >= 0, tf.math.is_finite(contribution))
    source = tf.gather(index, best, batch_dims=1)
    because = tf.gather(self.item_ids, tf.maximum(source, 0))
    return {"because": tf.where(ok, because, ""),
            "contribution": tf.where(ok, contribution, 0.0)}
