"""Items near the user's recent items in an embedding space: text neighbours, graph-tower retrieval.

One formula, two spaces. With e_i the L2-normalized embedding of item i and the user's history
weighted by recency (x_h = 0.5 ** (rank_h / half_life), rank 0 = most recent):

  q = sum_h x_h e_h / sum_h x_h                     the history readout [D]
  score_i = <e_i, q>                                 [I]

* ``EmbeddingNeighbours.text()``: e = the BERT embedding of the item's text
  (``item_data["text_embedding"]``). Text needs no interaction, so this is the only source that
  proposes cold items.
* ``EmbeddingNeighbours.graph_tower()``: e = the trained graph tower's item embedding
  (``item_data["item_embedding"]``); q is the model's history readout, the query the exported
  model uses for a user it did not train on, so the source is inductive (a known user's fresh
  events count as they happen).

Items without an embedding (an all-zero row) score 0. A user without usable history scores 0
everywhere (without a popularity prior, below).

The graph-tower source scores as the run's picked query does (tfgrec.train.query): the
cosine of the query, plus the items' popularity prior over the events it is fit on,

  score_i = <l2norm(q), e_i> + g * T * (log p_i - max log p)    (base.popularity_prior)

(`normalize_query`, `popularity_weight` = g * T), so a user without history or state gets the
most popular items.

The graph-tower source also reads an optional ``user_query`` [B, D] (``reads_user_query``): the
user's own part of the model's query, a * l2norm(the user's tower state) for a user the model
knows, the state of a new user from their attributes (unit norm,
tfgrec.export.item_encoder.NewUserEncoder), zero rows for the others. Then q = user_query + the
readout above, the model's query of a user node (a * l2norm(own state) + history readout,
tfgrec.models.recommender), so a new user without history is scored by their attributes alone.
"""
from typing import Any, Dict, Optional

import numpy as np

from tfgrec.sources import base

tf = base.tf

TEXT_EMBEDDING = "text_embedding"
ITEM_EMBEDDING = "item_embedding"


class EmbeddingNeighbours(base.CandidateSource):
  """Cosine between each item and the recency-weighted mean of the history (module docstring).

  >>> e = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
  >>> src = EmbeddingNeighbours(key="v", half_life=None).fit(
  ...     [0], [0], [0], num_items=3, item_data={"v": e})
  >>> [round(float(s), 3) for s in src.score_numpy([[0, 1]], [[5, 5]], [5])[0]]
  [0.5, 0.5, 0.707]

  Init args:
    key: the `item_data` key of the [num_items, D] embeddings read by `fit`.
    half_life: recency half-life in history events (None: a plain mean).
    max_history: read at most this many most recent history items.
    name: the module name.
    reads_user_query: `_scores` adds a request's user_query to the readout (module
      docstring); on for the graph-tower space, whose users live in the items' space.
    normalize_query: score with the cosine of the query (else its dot product).
    popularity_weight: the weight of the items' popularity prior over the fit events, in the
      score's units (module docstring; 0: none).
  """

  def __init__(self, *, key: str, half_life: Optional[float] = 5.0, max_history: int = 200,
               name: str = "embedding", reads_user_query: bool = False,
               normalize_query: bool = False, popularity_weight: float = 0.0):
    super().__init__(name=name)
    self.reads_user_query = bool(reads_user_query)
    self.normalize_query = bool(normalize_query)
    self.popularity_weight = float(popularity_weight)
    if not self.popularity_weight >= 0:
      raise ValueError(f"popularity_weight must be >= 0, got {popularity_weight}")
    if not key:
      raise ValueError("key must name an item_data entry, got an empty string")
    if int(max_history) <= 0:
      raise ValueError(f"max_history must be > 0, got {max_history}")
    self.key = key
    self.half_life = base.validate_half_life("half_life", half_life)
    self.max_history = int(max_history)

  @classmethod
  def text(cls, *, half_life: Optional[float] = 5.0, **kwargs) -> "EmbeddingNeighbours":
    """The text-neighbour source (reads item_data["text_embedding"])."""
    return cls(key=TEXT_EMBEDDING, half_life=half_life, name=kwargs.pop("name", "text"),
               **kwargs)

  @classmethod
  def graph_tower(cls, *, half_life: Optional[float] = 5.0, **kwargs) -> "EmbeddingNeighbours":
    """The graph-tower source (reads item_data["item_embedding"]; the query's cosine)."""
    return cls(key=ITEM_EMBEDDING, half_life=half_life, name=kwargs.pop("name", "graph_tower"),
               reads_user_query=kwargs.pop("reads_user_query", True),
               normalize_query=kwargs.pop("normalize_query", True), **kwargs)

  def get_config(self) -> Dict[str, Any]:
    return {"key": self.key, "half_life": self.half_life, "max_history": self.max_history,
            "name": self.name, "reads_user_query": self.reads_user_query,
            "normalize_query": self.normalize_query,
            "popularity_weight": self.popularity_weight}

  def _fit(self, events: base.Events, item_data: Dict[str, np.ndarray]) -> None:
    if self.key not in item_data:
      raise ValueError(f"{self.name} reads item_data[{self.key!r}], which fit was not given "
                       f"(keys: {sorted(item_data)})")
    e = np.asarray(item_data[self.key], np.float32)
    if e.ndim != 2:
      raise ValueError(f"item_data[{self.key!r}] must be [num_items, D], got shape {e.shape}")
    norm = np.linalg.norm(e, axis=1, keepdims=True)
    arrays = {"embeddings": np.where(norm > 0, e / np.maximum(norm, 1e-12), 0.0)}
    # The space is given; the events give only the popularity prior (when it has a weight).
    if self.popularity_weight:
      arrays["item_bias"] = base.popularity_prior(events.item, events.num_items,
                                                  self.popularity_weight)
    self._set_state(arrays, {})

  def _get_state(self):
    arrays = {"embeddings": self._e}
    if self._bias is not None:
      arrays["item_bias"] = self._bias
    return arrays, {}

  def _set_state(self, arrays, state):
    """Arrays: "embeddings" [I, D] (L2-normalized), "item_bias" [I] with a popularity prior."""
    del state  # None.
    self._e = np.asarray(arrays["embeddings"], np.float32)
    self.embeddings = tf.Variable(self._e, trainable=False, name="embeddings")
    self._bias = None
    if "item_bias" in arrays:
      self._bias = np.asarray(arrays["item_bias"], np.float32)
      self.item_bias = tf.Variable(self._bias, trainable=False, name="item_bias")

  def query(self, history, history_time, now):
    """[B, D] the recency-weighted mean of the usable history's normalized embeddings."""
    item, rank, keep = base.history_ranks(history, history_time, now)
    item, rank, keep = (t[:, :self.max_history] for t in (item, rank, keep))
    weight = tf.where(keep, base.recency_weight(rank, self.half_life), 0.0)
    total = tf.reduce_sum(weight, axis=1, keepdims=True)
    q = tf.einsum("bh,bhd->bd", weight, tf.gather(base.read_table(self.embeddings), item))
    return tf.math.divide_no_nan(q, total)

  def _scores(self, history, history_time, now, user_query=None):
    q = self.query(history, history_time, now)
    if user_query is not None and self.reads_user_query:
      q = q + tf.cast(user_query, q.dtype)
    if self.normalize_query:
      q = tf.math.l2_normalize(q, axis=-1)
    scores = tf.matmul(q, self.embeddings, transpose_b=True)
    if self._bias is not None:
      scores += base.read_table(self.item_bias)[None, :]
    return scores

  def _score_numpy(self, history, history_time, now):
    rows, item, rank = base.history_ranks_numpy(history, history_time, now)
    out = np.zeros([len(history), self._e.shape[1]], np.float32)
    for row in range(len(history)):
      mine = rows == row
      order = np.argsort(rank[mine], kind="stable")[:self.max_history]
      w = base.recency_weight_numpy(rank[mine][order], self.half_life)
      if w.sum() > 0:
        out[row] = (w[:, None] * self._e[item[mine][order]]).sum(0) / w.sum()
    if self.normalize_query:
      out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    scores = out @ self._e.T
    return scores if self._bias is None else scores + self._bias[None, :]
