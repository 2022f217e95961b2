"""GraphRecommender: the graph tower + text under three tfrs tasks (retrieval, ranking, alignment).

Full-graph training: the training GraphTensor lives in the model; every step runs the graph
tower once over the whole graph and computes the losses on a batch of (user, item, value) pairs:

  retrieval  tfrs.tasks.Retrieval: in-batch softmax over cosine(user, item) / temperature, with
             accidental hits removed (the same item twice in a batch is not a negative) and a
             popularity correction: logits minus logq_strength * log p(item)
  ranking    tfrs.tasks.Ranking: an MLP (or DCN) head on [user, item, user * item] predicts the
             standardized rating (MSE), or click vs an in-batch shuffled item (BCE)
  alignment  InfoNCE between graph and text views, projected into a shared space: an item's
             graph embedding vs its text embedding, and a user's graph embedding vs their text
             profile (recency-weighted mean of the text of their training items)

  loss = w_retrieval * retrieval + w_ranking * ranking + w_alignment * alignment

User side (history readout, on when user_history_half_life > 0): a user's query embedding is
their graph-tower embedding plus the recency-weighted mean of the (normalized) embeddings of the
items they interacted with, weights 0.5 ** (rank from the latest / half-life), the factored
item-item model of FISM (Kabbur et al., 2013). A training pair never sees its own item in that mean,
so the model cannot score an item by its similarity to itself. Two readouts for training
(tasks.training_readout): 'leave_one_out' (the default) reads the user's whole history without
the pair's item, later events included, as the graph holds every training edge; 'causal' reads
only the user's events before the pair, weighted by their recency as of the pair's time, which is
what the query reads at test time (the history up to now). The readout makes the user side inductive: a user unknown to the graph is embedded from
their history alone.

Scores at inference are cosine similarities of the final embeddings (`embeddings()`).
"""
import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

import tensorflow as tf
import tensorflow_gnn as tfgnn
import tensorflow_recommenders as tfrs

from tfgrec.graph import recency
from tfgrec.graph import schema as gs
from tfgrec.models import graph_tower
from tfgrec.tasks import alignment


READOUTS = ("causal", "leave_one_out")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
  """The three losses and their weights.

  Attributes:
    retrieval_weight: weight of the in-batch softmax retrieval loss.
    temperature: softmax temperature of retrieval (scores are cosine similarities).
    logq_strength: popularity correction: logits minus strength * log(item frequency)
      (0: off, 1: the full logQ correction of sampled softmax).
    remove_accidental_hits: drop in-batch negatives that are the positive item.
    retrieval_groups: the batch is cut into this many groups of consecutive pairs, and each
      query's softmax runs over its own group's items: a batch of B pairs computes B * B / G
      logits instead of B * B (1: the whole batch). The graph tower still runs once per batch,
      so the groups cut the cost of the softmax without more tower steps per epoch.
    pair_recency_half_life: weigh each training pair by 0.5 ** (r / h), r = how many of the
      user's interactions are more recent (0: all pairs weigh the same). The future resembles a
      user's recent past more than their distant past; a short half-life (10) also throws away
      most of a long history (docs/decisions/pair-recency-half-life.md: 100 scores 8% higher on
      MovieLens).
    user_history_half_life: the user side adds the recency-weighted mean of the embeddings of
      the user's items, weights 0.5 ** (r / h) (0: graph embedding only). It also embeds users
      the graph has never seen, from their history.
    training_readout: which of the user's items a training pair's readout reads: 'causal' (the
      events before the pair, ranks counted from the pair's time) or 'leave_one_out' (every
      other event of the user, later ones included).
    query_user_weights, query_half_lives: the grid of the query a run predicts with,
      user weight * normalized graph embedding + readout with that half-life, picked on
      validation after training (tfgrec.train.query; the training query is the starting
      point, so a grid of one value each that matches it changes nothing).
    query_popularity_weights: then, with that query, the weight g of the items' popularity
      prior g * temperature * log p(item) added to the scores (0: none; tfgrec.train.query).
    ranking_weight: weight of the ranking loss (0: off).
    ranking_target: 'rating' (regression on the observed value), 'click' (binary, against
      in-batch shuffled negatives) or 'auto' (rating when values vary, else click).
    ranking_head: 'mlp' or 'dcn' (a cross layer, then an MLP).
    alignment_weight: weight of the graph <-> text InfoNCE (0: off).
    alignment_temperature: its temperature.
    alignment_dim: width of the shared space graph and text embeddings are projected into.
  """
  retrieval_weight: float = 1.0
  temperature: float = 0.1
  logq_strength: float = 1.0
  remove_accidental_hits: bool = True
  retrieval_groups: int = 4
  pair_recency_half_life: float = 100.0
  user_history_half_life: float = 10.0
  training_readout: str = "leave_one_out"
  query_user_weights: Tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
  query_half_lives: Tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0)
  query_popularity_weights: Tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
  ranking_weight: float = 0.1
  ranking_target: str = "auto"
  ranking_head: str = "mlp"
  alignment_weight: float = 0.1
  alignment_temperature: float = 0.1
  alignment_dim: int = 64

  def __post_init__(self):
    if self.temperature <= 0 or self.alignment_temperature <= 0:
      raise ValueError("tasks.temperature and tasks.alignment_temperature must be > 0, got "
                        f"{self.temperature}, {self.alignment_temperature}")
    if min(self.retrieval_weight, self.ranking_weight, self.alignment_weight,
           self.pair_recency_half_life, self.user_history_half_life) < 0:
      raise ValueError("task weights and half-lives must be >= 0")
    if any(a < 0 for a in self.query_user_weights + self.query_popularity_weights) or any(
        h <= 0 for h in self.query_half_lives):
      raise ValueError("tasks.query_user_weights and tasks.query_popularity_weights must be "
                       f">= 0 and tasks.query_half_lives > 0, got {self.query_user_weights}, "
                       f"{self.query_popularity_weights}, {self.query_half_lives}")
    if self.ranking_target not in ("auto", "rating", "click"):
      raise ValueError("tasks.ranking_target must be 'auto', 'rating' or 'click', got "
                        f"{self.ranking_target!r}")
    if self.training_readout not in READOUTS:
      raise ValueError(f"tasks.training_readout must be one of {READOUTS}, got "
                       f"{self.training_readout!r}")
    if self.retrieval_groups < 1:
      raise ValueError(f"tasks.retrieval_groups must be >= 1, got {self.retrieval_groups}")
    if self.ranking_head not in ("mlp", "dcn"):
      raise ValueError(f"tasks.ranking_head must be 'mlp' or 'dcn', got {self.ranking_head!r}")


def user_text_profile(users: np.ndarray, items: np.ndarray, ranks: np.ndarray,
                      item_text: np.ndarray, num_users: int, half_life: float = 20.0
                      ) -> np.ndarray:
  """[num_users, T] L2-normalized, recency-weighted mean of each user's items' text embeddings.

  Args:
    users, items: [E] the user and item of each training edge.
    ranks: [E] recency rank of each edge (tfgrec.graph.recency.recency_ranks).
    item_text: [num_items, T] text embeddings.
  """
  weights = recency.weights_from_ranks(ranks, half_life)
  profile = np.zeros([num_users, item_text.shape[1]], np.float32)
  np.add.at(profile, users, item_text[items] * weights[:, None])
  norm = np.linalg.norm(profile, axis=1, keepdims=True)
  return profile / np.maximum(norm, 1e-12)


def leave_one_out_readout(sums: tf.Tensor, totals: tf.Tensor, own_weight: tf.Tensor,
                          own_item: tf.Tensor) -> tf.Tensor:
  """[B, D] history mean of each pair's user without the pair's own item.

  Args:
    sums: [B, D] the user's sum of weight * normalized item embedding over their history.
    totals: [B] the user's sum of weights.
    own_weight: [B] the pair's weight in that history.
    own_item: [B, D] the pair's item embedding (normalized here).
  Returns zeros for a user whose only history item is the pair's own.
  """
  own_weight = own_weight[:, None]
  rest = sums - own_weight * tf.math.l2_normalize(own_item, axis=-1)
  rest_total = totals[:, None] - own_weight
  return tf.where(rest_total > 1e-6, rest / tf.maximum(rest_total, 1e-6), 0.0)


def earlier_readout(item_states: tf.Tensor, items: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
  """[B, D] each pair's readout of the events before it: sum_l w[b, l] * normalized
  item_states[items[b, l]] / sum_l w[b, l] (zeros for a pair without earlier events).

  Args:
    item_states: [I, D] the tower's item states.
    items, weights: [B, L] earlier items and their recency weights (0 pads).
  """
  weights = tf.cast(weights, item_states.dtype)
  total = tf.reduce_sum(weights, axis=1, keepdims=True)
  gathered = tf.gather(tf.math.l2_normalize(item_states, axis=-1), tf.cast(items, tf.int32))
  summed = tf.reduce_sum(gathered * weights[:, :, None], axis=1)
  return tf.where(total > 1e-6, summed / tf.maximum(total, 1e-6), 0.0)


class GraphRecommender(tfrs.Model):
  """The full model (see the module docstring).

  Args:
    tower: a GraphTower.
    graph: the prepared training GraphTensor (graph_tower.prepare_graph).
    item_text: [num_items, T] text embeddings (zeros for items without text), or None.
    user_profile: [num_users, T] user text profiles (for user alignment), or None.
    item_probability: [num_items] sampling probability of each item among training pairs.
    tasks: TaskConfig.
    rating_mean, rating_std: standardization of the ranking target (rating mode).
    text_encoder, item_strings: for fine-tuning the text tower end to end: a TextEncoder and
      the [num_items] item texts; each step re-embeds the batch's items with gradients.
    history: the training edges for the history readout, {'user', 'item', 'weight'} [E] arrays
      (weight = 0.5 ** (recency rank / user_history_half_life)); None: no readout. Training
      batches then carry each pair's own 'history_weight' (leave-one-out readout) or its
      'earlier_item' and 'earlier_weight' (causal readout; tfgrec.train.inputs).
  """

  def __init__(self, *, tower: graph_tower.GraphTower, graph: tfgnn.GraphTensor,
               item_text: Optional[np.ndarray], user_profile: Optional[np.ndarray],
               item_probability: np.ndarray, tasks: TaskConfig = TaskConfig(),
               rating_mean: float = 0.0, rating_std: float = 1.0, text_encoder=None,
               item_strings: Optional[np.ndarray] = None,
               history: Optional[Dict[str, np.ndarray]] = None, **kwargs):
    super().__init__(**kwargs)
    if tasks.ranking_target == "auto":
      raise ValueError("resolve ranking_target 'auto' to 'rating' or 'click' first")
    self.tower = tower
    self.task_weights = tasks
    self._graph = graph
    self._item_text = None if item_text is None else tf.constant(item_text, tf.float32)
    self._user_profile = None if user_profile is None else tf.constant(user_profile, tf.float32)
    self._log_probability = tf.constant(
        np.log(np.maximum(np.asarray(item_probability, np.float64), 1e-12)), tf.float32)
    self._rating = (float(rating_mean), float(max(rating_std, 1e-6)))
    self.text_encoder = text_encoder
    self._history = None
    if history is not None:
      self._history = self.history_tensors(history, int(graph.node_sets[gs.USER].total_size))
    self._item_strings = (None if item_strings is None
                          else tf.constant(np.asarray(item_strings, dtype=object), tf.string))
    # The cross-entropy is averaged over the global batch (tf.distribute-safe).
    none = tf.keras.losses.Reduction.NONE
    self.retrieval = tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=none),
        temperature=tasks.temperature, remove_accidental_hits=tasks.remove_accidental_hits,
        name="retrieval")
    if tasks.ranking_target == "rating":
      ranking_loss = tf.keras.losses.MeanSquaredError(reduction=none)
    else:
      ranking_loss = tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=none)
    self.ranking = tfrs.tasks.Ranking(loss=ranking_loss, name="ranking")
    # Heads exist only for the losses that are on (an unused head would hold unbuilt weights).
    self.ranking_head = None
    if tasks.ranking_weight:
      head = [tf.keras.layers.Dense(tower.config.dim, activation="relu"),
              tf.keras.layers.Dense(1)]
      if tasks.ranking_head == "dcn":
        head.insert(0, tfrs.layers.dcn.Cross(name="cross"))
      self.ranking_head = tf.keras.Sequential(head, name="ranking_head")
    self.alignment = alignment.AlignmentTask(temperature=tasks.alignment_temperature,
                                             name="alignment")
    self.graph_projection = self.text_projection = None
    if tasks.alignment_weight and item_text is not None:
      self.graph_projection = tf.keras.layers.Dense(tasks.alignment_dim, name="graph_to_shared")
      self.text_projection = tf.keras.layers.Dense(tasks.alignment_dim, name="text_to_shared")
    self.loss_trackers = {name: tf.keras.metrics.Mean(f"{name}_loss")
                          for name in ("retrieval", "ranking", "alignment")}

  @property
  def graph(self) -> tfgnn.GraphTensor:
    return self._graph

  def item_text_table(self, items: Optional[tf.Tensor] = None, training: bool = False):
    """[num_items, T] text embeddings; when fine-tuning, rows of `items` are re-encoded."""
    table = self._item_text
    if (self.text_encoder is None or items is None or not training or table is None):
      return table
    unique = tf.unique(tf.reshape(items, [-1])).y
    fresh = self.text_encoder(tf.gather(self._item_strings, unique), training=True)
    has_text = tf.cast(tf.strings.length(tf.gather(self._item_strings, unique)) > 0, tf.float32)
    return tf.tensor_scatter_nd_update(table, unique[:, None], fresh * has_text[:, None])

  def refresh_item_text(self, item_text: np.ndarray) -> None:
    """Replaces the text table (after the fine-tuned encoder re-embedded the catalog)."""
    self._item_text = tf.constant(item_text, tf.float32)

  def node_embeddings(self, training: bool = False, items: Optional[tf.Tensor] = None,
                      graph: Optional[tfgnn.GraphTensor] = None) -> Dict[str, tf.Tensor]:
    """{'user': [U, D], 'item': [I, D]} final embeddings (not normalized); `graph` replaces
    the training graph (same node sets, e.g. with later interactions)."""
    inputs = {"graph": self._graph if graph is None else graph}
    text = self.item_text_table(items, training)
    return self._tower(inputs, text, training)

  # The tower's control flow is plain Python (on config, never on tensor values): AutoGraph has
  # nothing to convert there, and skipping its source transformation of the tower and TF-GNN's
  # layers saves about 20 s of tracing per process. (TFRS's tasks need AutoGraph: they keep it.)
  @tf.autograph.experimental.do_not_convert
  def _tower(self, inputs, text, training):
    if text is not None:
      inputs["item_text"] = text
    return self.tower(inputs, training=training)

  @tf.function
  def _training_graph_states(self, text):
    """node_embeddings(training=False) of the training graph in a tf.function (about 5 times
    faster than eager on MovieLens); the text table is an argument, as fine-tuning replaces it."""
    return self._tower({"graph": self._graph}, text, False)

  @staticmethod
  def history_tensors(history: Dict[str, np.ndarray], num_users: int) -> Dict[str, tf.Tensor]:
    """The readout's constants from history arrays {'user', 'item', 'weight'} [E]."""
    return {
        "user": tf.constant(history["user"], tf.int32),
        "item": tf.constant(history["item"], tf.int32),
        "weight": tf.constant(history["weight"], tf.float32)[:, None],
        "total": tf.constant(np.bincount(history["user"], weights=history["weight"],
                                         minlength=num_users), tf.float32),
    }

  def history_sums(self, item_states: tf.Tensor, history=None) -> tf.Tensor:
    """[U, D] per user: sum over their edges of weight * normalized item state."""
    h = history or self._history
    items = tf.gather(tf.math.l2_normalize(item_states, axis=-1), h["item"])
    return tf.math.unsorted_segment_sum(h["weight"] * items, h["user"],
                                        tf.shape(h["total"])[0])

  def query_embeddings(self, states: Dict[str, tf.Tensor], history=None,
                       user_weight: float = 1.0) -> tf.Tensor:
    """[U, D] the users' query side at inference: user_weight * normalized graph embedding +
    history readout (tfgrec.train.query picks user_weight and the readout's half-life)."""
    user = states[gs.USER]
    if self._history is None:
      return user
    h = history or self._history
    readout = self.history_sums(states[gs.ITEM], h) / tf.maximum(h["total"], 1e-6)[:, None]
    return user_weight * tf.math.l2_normalize(user, axis=-1) + readout

  def states(self, graph: Optional[tfgnn.GraphTensor] = None) -> Dict[str, tf.Tensor]:
    """{'user': [U, D], 'item': [I, D]} the tower's final states (inference mode) of `graph`
    (default: the training graph, in one traced pass)."""
    if graph is None:
      return self._training_graph_states(self.item_text_table())
    return self.node_embeddings(training=False, graph=graph)

  def embeddings(self, history: Optional[Dict[str, np.ndarray]] = None,
                 graph: Optional[tfgnn.GraphTensor] = None, user_weight: float = 1.0,
                 states: Optional[Dict[str, tf.Tensor]] = None) -> Dict[str, np.ndarray]:
    """{'user': [U, D], 'item': [I, D]} L2-normalized inference embeddings (scores = dot).

    Args:
      history: the users' known history for the readout, {'user', 'item', 'weight'} [E]
        (default: the training edges), e.g. training + validation events to predict the test
        split.
      graph: the prepared graph the tower reads (default: the training graph), e.g. with the
        validation events added as edges.
      user_weight: the weight of the normalized graph embedding in the query (1: as trained).
      states: `states(graph)` when already computed (graph is then not read).
    """
    if states is None:  # Every epoch's validation: one traced pass over the training graph.
      states = self.states(graph)
    h = None
    if history is not None and self._history is not None:
      h = self.history_tensors(history, int(self._history["total"].shape[0]))
    query = self.query_embeddings(states, h, user_weight)
    return {gs.USER: tf.math.l2_normalize(query, axis=-1).numpy(),
            gs.ITEM: tf.math.l2_normalize(states[gs.ITEM], axis=-1).numpy()}

  def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
    users = tf.cast(inputs["user"], tf.int32)
    items = tf.cast(inputs["item"], tf.int32)
    w = self.task_weights
    # The text table once per step (when fine-tuning, it runs BERT on the batch's items).
    text = self.item_text_table(items, training)
    states = self._tower({"graph": self._graph}, text, training)
    user_emb = tf.gather(states[gs.USER], users)
    item_emb = tf.gather(states[gs.ITEM], items)
    if self._history is not None and "earlier_item" in inputs:
      # The readout of the events before each pair, as of the pair's time.
      readout = earlier_readout(states[gs.ITEM], inputs["earlier_item"],
                                inputs["earlier_weight"])
      user_emb = tf.math.l2_normalize(user_emb, axis=-1) + readout
    elif self._history is not None:
      # The readout of each pair's user, with the pair's own item left out.
      readout = leave_one_out_readout(
          tf.gather(self.history_sums(states[gs.ITEM]), users),
          tf.gather(self._history["total"], users),
          tf.cast(inputs["history_weight"], tf.float32), item_emb)
      user_emb = tf.math.l2_normalize(user_emb, axis=-1) + readout
    total = tf.constant(0.0)
    if w.retrieval_weight:
      query = tf.math.l2_normalize(user_emb, axis=-1)
      candidate = tf.math.l2_normalize(item_emb, axis=-1)
      probability = None
      if w.logq_strength:
        # tfrs subtracts log(p); p ** strength gives a partial correction.
        probability = tf.exp(w.logq_strength * tf.gather(self._log_probability, items))
      per_pair = self._retrieval_loss(query, candidate, items, probability,
                                      inputs.get("weight"))
      loss = tf.nn.compute_average_loss(per_pair)
      self.loss_trackers["retrieval"].update_state(loss)
      total += w.retrieval_weight * loss
    if w.ranking_weight:
      loss = tf.nn.compute_average_loss(self._ranking_loss(user_emb, item_emb, inputs))
      self.loss_trackers["ranking"].update_state(loss)
      total += w.ranking_weight * loss
    if self.graph_projection is not None:
      loss = self._alignment_loss(states, users, items, text)
      self.loss_trackers["alignment"].update_state(loss)
      total += w.alignment_weight * loss
    return total

  def _retrieval_loss(self, query, candidate, items, probability, weight) -> tf.Tensor:
    """[B] per-pair in-batch softmax loss, within each of tasks.retrieval_groups groups (one
    group when the batch has fewer pairs than groups)."""
    groups = self.task_weights.retrieval_groups
    size = tf.shape(query)[0]

    def within(count):
      bounds = [(i * size) // count for i in range(count + 1)]
      per_group = []
      for start, end in zip(bounds[:-1], bounds[1:]):
        part = lambda x, start=start, end=end: None if x is None else x[start:end]
        per_group.append(self.retrieval(
            part(query), part(candidate), candidate_ids=part(items),
            candidate_sampling_probability=part(probability), sample_weight=part(weight),
            compute_metrics=False, compute_batch_metrics=False))
      return per_group[0] if count == 1 else tf.concat(per_group, axis=0)

    if groups == 1:
      return within(1)
    return tf.cond(size >= groups, lambda: within(groups), lambda: within(1))

  def score_pairs(self, user_emb: tf.Tensor, item_emb: tf.Tensor) -> tf.Tensor:
    """Ranking head output [B]: a standardized rating, or a click logit."""
    if self.ranking_head is None:
      raise ValueError("this model has no ranking head (tasks.ranking_weight is 0)")
    features = tf.concat([user_emb, item_emb, user_emb * item_emb], axis=-1)
    return tf.squeeze(self.ranking_head(features), -1)

  def predict_value(self, user_emb: tf.Tensor, item_emb: tf.Tensor) -> tf.Tensor:
    """[B] predicted rating (rating mode) or click probability (click mode)."""
    out = self.score_pairs(user_emb, item_emb)
    if self.task_weights.ranking_target == "rating":
      return out * self._rating[1] + self._rating[0]
    return tf.sigmoid(out)

  def _ranking_loss(self, user_emb, item_emb, inputs):
    if self.task_weights.ranking_target == "rating":
      target = (tf.cast(inputs["value"], tf.float32) - self._rating[0]) / self._rating[1]
      return self.ranking(labels=target[:, None],
                          predictions=self.score_pairs(user_emb, item_emb)[:, None],
                          compute_metrics=False)
    negatives = tf.roll(item_emb, shift=1, axis=0)
    predictions = tf.concat([self.score_pairs(user_emb, item_emb),
                             self.score_pairs(user_emb, negatives)], axis=0)
    labels = tf.concat([tf.ones_like(predictions[:tf.shape(item_emb)[0]]),
                        tf.zeros_like(predictions[:tf.shape(item_emb)[0]])], axis=0)
    return self.ranking(labels=labels[:, None], predictions=predictions[:, None],
                        compute_metrics=False)

  def _alignment_loss(self, states, users, items, text):
    unique_items = tf.unique(items).y
    loss = self.alignment(self.graph_projection(tf.gather(states[gs.ITEM], unique_items)),
                          self.text_projection(tf.gather(text, unique_items)))
    if self._user_profile is not None:
      unique_users = tf.unique(users).y
      loss = 0.5 * (loss + self.alignment(
          self.graph_projection(tf.gather(states[gs.USER], unique_users)),
          self.text_projection(tf.gather(self._user_profile, unique_users))))
    return loss
