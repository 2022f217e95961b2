"""The graph tower: initial node states, rounds of convolution + attention, layer combination.

  tower = GraphTower(GraphTowerConfig(dim=64, rounds=1), num_users=U, num_items=I,
                     num_categories=C, item_text_dim=384)
  states = tower({"graph": graph, "item_text": text_embeddings})
  states["user"]  # [U, 64]
  states["item"]  # [I, 64]

Initial states: item = projection of its text embedding + learned ID embedding (items without
text have a zero text embedding, so they start from their ID; cold items with text start from
their text); user = learned ID embedding; category = learned embedding.

Each round updates every node set from its incoming edge sets. Per edge set, the degree-normalized
convolution (tfgrec.layers.GCNConv) and multi-head scaled dot-product attention
(tfgrec.layers.GraphAttentionConv) run side by side ("both"; "conv" or "attention" alone give the
ablations); the node set's next-state layer combines their results with its old state, and the
new states are layer-normalized. On the interaction edge sets both branches see time: the
attention reads each edge's recency encoding with the sender's state, and the convolution
weighs each message by the edge's recency weight (tfgrec.graph.recency; prepare_graph adds both
features). The final embedding combines the states of all rounds: their mean (as LightGCN) or
their concatenation followed by a projection.
"""
import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

import tensorflow as tf
import tensorflow_gnn as tfgnn

from tfgrec.graph import recency
from tfgrec.graph import schema as gs
from tfgrec.layers import gcn_conv
from tfgrec.layers import graph_attention

BRANCHES = ("both", "conv", "attention")
COMBINES = ("mean", "concat")
# Receiver node set -> incoming edge sets (each read at its TARGET), when the tower uses them.
INCOMING = {
    gs.USER: (gs.INTERACTED_BY, gs.ATTRIBUTE_OF_USER),
    gs.ITEM: (gs.INTERACTED, gs.HAS_ITEM, gs.ATTRIBUTE_OF),
    gs.CATEGORY: (gs.IN_CATEGORY,),
    gs.ITEM_ATTRIBUTE: (gs.HAS_ATTRIBUTE,),
    gs.USER_ATTRIBUTE: (gs.USER_HAS_ATTRIBUTE,),
}
# Node sets that only speak through message passing (learned embeddings, nothing reads them
# after the last round), and the edge sets that touch each.
SIDE_SETS = {
    gs.CATEGORY: (gs.HAS_ITEM, gs.IN_CATEGORY),
    gs.ITEM_ATTRIBUTE: (gs.ATTRIBUTE_OF, gs.HAS_ATTRIBUTE),
    gs.USER_ATTRIBUTE: (gs.ATTRIBUTE_OF_USER, gs.USER_HAS_ATTRIBUTE),
}
SIDE_OWNER = {gs.CATEGORY: gs.ITEM, gs.ITEM_ATTRIBUTE: gs.ITEM, gs.USER_ATTRIBUTE: gs.USER}


@dataclasses.dataclass(frozen=True)
class GraphTowerConfig:
  """Shape of the graph tower (one-to-one with GraphTower's arguments).

  Attributes:
    dim: width of every node state.
    rounds: message-passing rounds (0: embeddings only, a matrix-factorization tower).
    heads: attention heads (dim must be divisible by heads).
    dropout: dropout on states between rounds.
    branches: 'both' (convolution and attention), 'conv' or 'attention'.
    attention_edge_sets: the edge sets that get the attention branch (None: every edge set the
      tower reads); the others get the convolution alone, whatever `branches` says.
    combine: 'mean' over the states of all rounds (LightGCN) or 'concat' + projection.
    use_categories: include the category node set and its edge sets.
    use_attributes: include the attribute node sets (item_attribute, user_attribute) and their
      edge sets, when the graph has attribute nodes (tfgrec.data.attributes).
    update_attributes: attribute values are updated from their items (users) each round, as
      categories are; off: they keep their learned embedding and only send it (a value shared
      by a thousand items then does not pass on the mean of those items).
    use_text: items start from their text embedding (off: the graph-only ablation).
    layer_norm: normalize every node state after each round (keeps state scales steady as
      rounds add up).
    l2: L2 regularization of the ID embeddings.
    recency_half_lives: the recency encoding of an interaction edge: 0.5 ** (r / h) for each
      half-life h, r = how many of the user's interactions are more recent than this one
      (0 for the latest). Fed to the attention with each message (empty: no encoding).
    conv_recency_half_life: the convolution weighs each interaction message by
      0.5 ** (r / h) with this h (0: unweighted).
    attention_recent: on the interaction edge sets the attention reads only each user's this
      many most recent interactions (r < this; 0: all of them); the convolution reads all.
  """
  dim: int = 64
  rounds: int = 1
  heads: int = 4
  dropout: float = 0.1
  branches: str = "both"
  attention_edge_sets: Optional[Tuple[str, ...]] = None
  combine: str = "mean"
  use_categories: bool = True
  use_attributes: bool = True
  update_attributes: bool = False
  use_text: bool = True
  layer_norm: bool = True
  l2: float = 0.0
  recency_half_lives: Tuple[float, ...] = (5.0, 20.0, 80.0)
  conv_recency_half_life: float = 20.0
  attention_recent: int = 20

  def __post_init__(self):
    if self.dim < 1 or self.rounds < 0:
      raise ValueError(f"dim must be >= 1 and rounds >= 0, got dim={self.dim}, "
                       f"rounds={self.rounds}")
    if self.heads < 1 or self.dim % self.heads:
      raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
    if self.branches not in BRANCHES:
      raise ValueError(f"branches must be one of {BRANCHES}, got {self.branches!r}")
    known = sorted({e for edge_sets in INCOMING.values() for e in edge_sets})
    unknown = [e for e in self.attention_edge_sets or () if e not in known]
    if unknown:
      raise ValueError(f"attention_edge_sets: unknown edge set {unknown[0]!r}; the tower reads "
                       f"{', '.join(known)}")
    if self.combine not in COMBINES:
      raise ValueError(f"combine must be one of {COMBINES}, got {self.combine!r}")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
    if self.attention_recent < 0:
      raise ValueError(f"attention_recent must be >= 0, got {self.attention_recent}")
    if any(h <= 0 for h in self.recency_half_lives) or self.conv_recency_half_life < 0:
      raise ValueError("recency half-lives must be > 0 (conv_recency_half_life >= 0), got "
                       f"{self.recency_half_lives}, {self.conv_recency_half_life}")


@tf.keras.utils.register_keras_serializable(package="tfgrec")
class ParallelConvolutions(tf.keras.layers.Layer):
  """Runs several convolutions over the same edge set and concatenates their results."""

  def __init__(self, convolutions: List[tf.keras.layers.Layer], **kwargs):
    super().__init__(**kwargs)
    self.convolutions = list(convolutions)

  def call(self, graph, *, edge_set_name, training=None):
    outputs = [c(graph, edge_set_name=edge_set_name, training=training)
               for c in self.convolutions]
    return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=-1)

  def get_config(self):
    return {**super().get_config(),
            "convolutions": [tf.keras.layers.serialize(c) for c in self.convolutions]}

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config["convolutions"] = [tf.keras.layers.deserialize(c) for c in config["convolutions"]]
    return cls(**config)


class GraphTower(tf.keras.layers.Layer):
  """Node embeddings for users and items from the interaction graph (see the module docstring).

  Args:
    config: GraphTowerConfig.
    num_users, num_items, num_categories: node counts of the training graph.
    item_text_dim: width of the item text embeddings (0: no text, the graph-only ablation).
    num_item_attributes, num_user_attributes: attribute node counts (0: the graph has none, or
      an older graph without attribute node sets).
  """

  def __init__(self, config: GraphTowerConfig, *, num_users: int, num_items: int,
               num_categories: int, item_text_dim: int = 0, num_item_attributes: int = 0,
               num_user_attributes: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    sizes = {gs.CATEGORY: num_categories if config.use_categories else 0,
             gs.ITEM_ATTRIBUTE: num_item_attributes if config.use_attributes else 0,
             gs.USER_ATTRIBUTE: num_user_attributes if config.use_attributes else 0}
    # The side node sets this tower reads (categories: even when the catalog has none, as
    # before; attributes: only when the graph has some).
    self.side_sets = tuple(name for name in SIDE_SETS if config.rounds and (
        (name == gs.CATEGORY and config.use_categories) or sizes[name] > 0))
    reg = tf.keras.regularizers.l2(config.l2) if config.l2 else None
    self.user_embedding = tf.keras.layers.Embedding(
        num_users, config.dim, embeddings_regularizer=reg, name="user_id")
    self.item_embedding = tf.keras.layers.Embedding(
        num_items, config.dim, embeddings_regularizer=reg, name="item_id")
    # Categories and attribute values only speak through message passing.
    self.category_embedding = (tf.keras.layers.Embedding(
        max(num_categories, 1), config.dim, name="category_id")
                               if gs.CATEGORY in self.side_sets else None)
    self.attribute_embedding = {
        name: tf.keras.layers.Embedding(sizes[name], config.dim, name=f"{name}_id")
        for name in (gs.ITEM_ATTRIBUTE, gs.USER_ATTRIBUTE) if name in self.side_sets}
    item_text_dim = item_text_dim if config.use_text else 0
    self.text_projection = (tf.keras.layers.Dense(config.dim, use_bias=False, name="item_text")
                            if item_text_dim else None)
    self.item_text_dim = item_text_dim
    self.rounds = [self._round(i, last=i == config.rounds - 1) for i in range(config.rounds)]
    self.dropout = tf.keras.layers.Dropout(config.dropout)
    # After the last round nothing reads the side sets: no norm for them there.
    self.norms = [{name: tf.keras.layers.LayerNormalization(name=f"norm_{i}_{name}")
                   for name in self._receivers(last=i == config.rounds - 1)}
                  for i in range(config.rounds)] if config.layer_norm else []
    self.projection = {
        name: tf.keras.layers.Dense(config.dim, name=f"{name}_combine")
        for name in (gs.USER, gs.ITEM)} if config.combine == "concat" else {}

  def _convolution(self, round_index: int, edge_set: str) -> tf.keras.layers.Layer:
    cfg = self.config
    interaction = edge_set in recency.USER_ENDPOINT
    attention = cfg.branches in ("both", "attention") and (
        cfg.attention_edge_sets is None or edge_set in cfg.attention_edge_sets)
    convs = []
    if cfg.branches in ("both", "conv") or not attention:
      convs.append(gcn_conv.GCNConv(
          cfg.dim, receiver_tag=tfgnn.TARGET, skip=False,
          edge_weight_feature=(recency.RECENCY_WEIGHT
                               if interaction and cfg.conv_recency_half_life else None),
          name=f"gcn_{round_index}_{edge_set}"))
    if attention:
      convs.append(graph_attention.GraphAttentionConv(
          num_heads=cfg.heads, per_head_channels=cfg.dim // cfg.heads,
          receiver_tag=tfgnn.TARGET,
          sender_edge_feature=(recency.RECENCY
                               if interaction and cfg.recency_half_lives else None),
          edge_mask_feature=(recency.RECENT
                             if interaction and cfg.attention_recent else None),
          name=f"attention_{round_index}_{edge_set}"))
    return ParallelConvolutions(convs, name=f"round_{round_index}_{edge_set}")

  def _receivers(self, last: bool) -> List[str]:
    """The node sets a round updates: users, items and (but in the last round, after which
    nothing reads them) the side sets in use."""
    updated = [name for name in self.side_sets
               if name == gs.CATEGORY or self.config.update_attributes]
    return [gs.USER, gs.ITEM] + ([] if last else updated)

  def _incoming(self, receiver: str) -> List[str]:
    unused = {e for name, edge_sets in SIDE_SETS.items() if name not in self.side_sets
              for e in edge_sets}
    return [e for e in INCOMING[receiver] if e not in unused]

  def _round(self, index: int, last: bool) -> tfgnn.keras.layers.GraphUpdate:
    node_sets = {}
    for receiver in self._receivers(last):
      inputs = {e: self._convolution(index, e) for e in self._incoming(receiver)}
      node_sets[receiver] = tfgnn.keras.layers.NodeSetUpdate(
          inputs, tfgnn.keras.layers.ResidualNextState(
              tf.keras.layers.Dense(self.config.dim, name=f"next_{index}_{receiver}")))
    return tfgnn.keras.layers.GraphUpdate(node_sets=node_sets, name=f"round_{index}")

  def initial_states(self, graph: tfgnn.GraphTensor,
                     item_text: Optional[tf.Tensor]) -> tfgnn.GraphTensor:
    """Returns `graph` with hidden states on its node sets."""
    def ids(name):
      return tf.range(graph.node_sets[name].total_size)

    # Items without a training interaction (cold) start from their text alone: their ID row
    # never receives a gradient, so it would only add noise.
    interacted = tfgnn.node_degree(graph, gs.INTERACTED, tfgnn.TARGET) > 0
    item = self.item_embedding(ids(gs.ITEM)) * tf.cast(interacted, tf.float32)[:, None]
    if self.text_projection is not None:
      if item_text is None:
        raise ValueError("this GraphTower reads item text: pass item_text [num_items, "
                         f"{self.item_text_dim}]")
      item = item + self.text_projection(item_text)
    # Likewise a user node without an interaction (none in a training graph) has no ID state:
    # it hears only its attribute values (encode_new_users).
    active = tfgnn.node_degree(graph, gs.INTERACTED, tfgnn.SOURCE) > 0
    user = self.user_embedding(ids(gs.USER)) * tf.cast(active, tf.float32)[:, None]
    features = {gs.USER: {tfgnn.HIDDEN_STATE: user},
                gs.ITEM: {tfgnn.HIDDEN_STATE: item}}
    if self.category_embedding is not None:
      features[gs.CATEGORY] = {
          tfgnn.HIDDEN_STATE: self.category_embedding(ids(gs.CATEGORY))}
    for name, embedding in self.attribute_embedding.items():
      features[name] = {tfgnn.HIDDEN_STATE: embedding(ids(name))}
    for name in graph.node_sets:  # Node sets this tower does not read: zero states.
      features.setdefault(name, {tfgnn.HIDDEN_STATE: tf.zeros(
          [graph.node_sets[name].total_size, self.config.dim])})
    return graph.replace_features(node_sets=features)

  def call(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> Dict[str, tf.Tensor]:
    """inputs: {'graph': GraphTensor with gcn_norm edge features, 'item_text': [I, T]}."""
    graph = self.initial_states(inputs["graph"], inputs.get("item_text"))
    return self._propagate(graph, training)

  def side_round_states(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, List[tf.Tensor]]:
    """The states of the side node sets in use (categories, attribute values) entering each
    round: {name: one [N, dim] tensor per round} (inference mode).

    With their degrees, they are what :meth:`encode_new_items` needs to embed an item that is
    not in the graph.
    """
    graph = self.initial_states(inputs["graph"], inputs.get("item_text"))
    trace = {name: [] for name in self.side_sets}
    self._propagate(graph, training=False, trace=trace)
    return trace

  def category_round_states(self, inputs: Dict[str, tf.Tensor]) -> List[tf.Tensor]:
    """The category states entering each round ([C, dim] each; see side_round_states)."""
    graph = self.initial_states(inputs["graph"], inputs.get("item_text"))
    trace = {gs.CATEGORY: []}
    self._propagate(graph, training=False, trace=trace)
    return trace[gs.CATEGORY]

  def encode_new_items(self, item_text: Optional[tf.Tensor], categories: tf.RaggedTensor,
                       category_states: List[tf.Tensor], category_degree: tf.Tensor,
                       attributes: Optional[tf.RaggedTensor] = None,
                       attribute_states: Optional[List[tf.Tensor]] = None,
                       attribute_degree: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Final embeddings [B, dim] of items that have no interactions (new to the catalog).

    Runs this tower's layers on a graph of the new items alone, their categories and
    attribute values, and no users: each round, an item hears its categories and attribute
    values (and no user), exactly as a cold item of the training graph does, with their states
    taken from the full graph (:meth:`side_round_states`). One new item per category or value
    changes those states by a negligible amount, so they are held fixed.

    Args:
      item_text: [B, T] text embeddings (zeros: no text), or None for a tower without text.
      categories: [B, None] ragged category indices of each item (unknown ones removed).
      category_states: one [C, dim] tensor per round.
      category_degree: [C] how many items each category has, counting the new item.
      attributes: [B, None] ragged item_attribute indices of each item (None: none), read when
        the tower uses attribute values.
      attribute_states: one [A, dim] tensor per round (with `attributes`).
      attribute_degree: [A] how many items have each value, counting the new item.
    """
    batch = tf.cast(categories.nrows(), tf.int32)
    item = tf.zeros(tf.stack([batch, self.config.dim]))
    if self.text_projection is not None:
      if item_text is None:
        raise ValueError("this GraphTower reads item text: pass item_text")
      item = self.text_projection(item_text)
    if not self.rounds:
      return item
    members = {gs.CATEGORY: (categories, category_states, category_degree)}
    if attributes is not None and attribute_states is not None and attribute_degree is not None:
      members[gs.ITEM_ATTRIBUTE] = (attributes, attribute_states, attribute_degree)
    return self._encode_cold(gs.ITEM, item, members)

  def encode_new_users(self, attributes: tf.RaggedTensor, attribute_states: List[tf.Tensor],
                       attribute_degree: tf.Tensor) -> tf.Tensor:
    """Final embeddings [B, dim] of users the graph does not have, from their attributes.

    The user-side twin of :meth:`encode_new_items`: a user without interactions has no ID
    state (as the tower treats a user node without interaction edges) and hears only their
    attribute values, with the values' states taken from the full graph
    (:meth:`side_round_states`).

    Args:
      attributes: [B, None] ragged user_attribute indices of each user.
      attribute_states: one [A, dim] tensor per round.
      attribute_degree: [A] how many users have each value, counting the new user.
    """
    user = tf.zeros(tf.stack([tf.cast(attributes.nrows(), tf.int32), self.config.dim]))
    if not self.rounds or gs.USER_ATTRIBUTE not in self.side_sets:
      return user
    return self._encode_cold(gs.USER, user, {
        gs.USER_ATTRIBUTE: (attributes, attribute_states, attribute_degree)})

  def _encode_cold(self, receiver: str, state: tf.Tensor,
                   members: Dict[str, Tuple[tf.RaggedTensor, List[tf.Tensor], tf.Tensor]]
                   ) -> tf.Tensor:
    """Runs the rounds on a graph of B new `receiver` nodes (users or items) with `state`, no
    interaction, and edges to the side node sets in `members` ({side set: (ragged [B, None]
    indices, its states per round, its degrees counting the new node)}); the other side sets
    are present and empty. Returns the receivers' final states [B, dim]."""
    dim = self.config.dim
    size = lambda n: tf.reshape(n, [1])
    empty = tf.zeros([0], tf.int32)

    def nothing():
      return tfgnn.NodeSet.from_fields(sizes=size(0),
                                       features={tfgnn.HIDDEN_STATE: tf.zeros([0, dim])})

    def edge_set(source, target, source_index, target_index, norm, count):
      return tfgnn.EdgeSet.from_fields(
          sizes=size(count), features={gcn_conv.GCN_NORM: norm},
          adjacency=tfgnn.Adjacency.from_indices((source, source_index),
                                                 (target, target_index)))

    interaction = {gcn_conv.GCN_NORM: tf.zeros([0, 1])}
    if self.config.recency_half_lives:
      interaction[recency.RECENCY] = tf.zeros([0, len(self.config.recency_half_lives)])
    if self.config.conv_recency_half_life:
      interaction[recency.RECENCY_WEIGHT] = tf.zeros([0, 1])
    if self.config.attention_recent:
      interaction[recency.RECENT] = tf.zeros([0])

    def no_interactions(source, target):
      return tfgnn.EdgeSet.from_fields(
          sizes=size(0), features=dict(interaction),
          adjacency=tfgnn.Adjacency.from_indices((source, empty), (target, empty)))

    node_sets = {gs.USER: nothing(), gs.ITEM: nothing()}
    node_sets[receiver] = tfgnn.NodeSet.from_fields(
        sizes=size(tf.shape(state, out_type=tf.int32)[0]),
        features={tfgnn.HIDDEN_STATE: state})
    edge_sets = {gs.INTERACTED: no_interactions(gs.USER, gs.ITEM),
                 gs.INTERACTED_BY: no_interactions(gs.ITEM, gs.USER)}
    fixed = {}
    for side in [name for name in SIDE_SETS if name in self.side_sets or name == gs.CATEGORY]:
      to_owner, to_side = SIDE_SETS[side]
      owner = SIDE_OWNER[side]
      if side in members and owner == receiver:
        rows, states, degree = members[side]
        member = tf.cast(rows.flat_values, tf.int32)
        index = tf.cast(rows.value_rowids(), tf.int32)
        per_node = tf.cast(rows.row_lengths(), tf.float32)
        # The GCN normalization of the graph: 1 / sqrt(side degree * the node's own degree).
        norm = tf.math.rsqrt(tf.maximum(tf.gather(tf.cast(degree, tf.float32), member)
                                        * tf.gather(per_node, index), 1.0))[:, None]
        count = tf.shape(member)[0]
        node_sets[side] = tfgnn.NodeSet.from_fields(
            sizes=size(tf.shape(states[0], out_type=tf.int32)[0]),
            features={tfgnn.HIDDEN_STATE: states[0]})
        edge_sets[to_owner] = edge_set(side, owner, member, index, norm, count)
        edge_sets[to_side] = edge_set(owner, side, index, member, norm, count)
        fixed[side] = states
      else:
        node_sets[side] = nothing()
        no_norm = tf.zeros([0, 1])
        edge_sets[to_owner] = edge_set(side, owner, empty, empty, no_norm, 0)
        edge_sets[to_side] = edge_set(owner, side, empty, empty, no_norm, 0)
    graph = tfgnn.GraphTensor.from_pieces(node_sets=node_sets, edge_sets=edge_sets)
    return self._propagate(graph, training=False, fixed=fixed)[receiver]

  def _propagate(self, graph: tfgnn.GraphTensor, training: bool,
                 fixed: Optional[Dict[str, List[tf.Tensor]]] = None,
                 trace: Optional[Dict[str, List[tf.Tensor]]] = None) -> Dict[str, tf.Tensor]:
    """Runs the rounds from the graph's initial states and combines the rounds' states.

    fixed: {side node set: its states to use at each round instead of the graph's own};
    trace: {side node set: a list that receives its states entering each round}.
    """
    states = {name: [graph.node_sets[name][tfgnn.HIDDEN_STATE]] for name in (gs.USER, gs.ITEM)}
    for index, update in enumerate(self.rounds):
      if fixed:
        graph = graph.replace_features(node_sets={
            name: {tfgnn.HIDDEN_STATE: per_round[index]} for name, per_round in fixed.items()})
      for name, received in (trace or {}).items():
        received.append(graph.node_sets[name][tfgnn.HIDDEN_STATE])
      graph = update(graph, training=training)
      node_sets = {}
      for name in self._receivers(last=index == len(self.rounds) - 1):
        state = graph.node_sets[name][tfgnn.HIDDEN_STATE]
        if self.norms:
          state = self.norms[index][name](state)
        node_sets[name] = {tfgnn.HIDDEN_STATE: self.dropout(state, training=training)}
      graph = graph.replace_features(node_sets=node_sets)
      for name in states:
        states[name].append(graph.node_sets[name][tfgnn.HIDDEN_STATE])
    if self.config.combine == "mean":
      return {name: tf.add_n(s) / float(len(s)) for name, s in states.items()}
    return {name: self.projection[name](tf.concat(s, axis=-1)) for name, s in states.items()}


def prepare_graph(graph: tfgnn.GraphTensor,
                  config: Optional[GraphTowerConfig] = None) -> tfgnn.GraphTensor:
  """The training graph as the tower reads it: one component, with GCN normalization and the
  recency features of `config` (tfgrec.graph.recency).

  Node features of the file (ids, text) stay; GraphTower.initial_states replaces them.
  """
  config = config or GraphTowerConfig()
  if graph.rank != 0:
    graph = graph.merge_batch_to_components()
  graph = recency.add_recency_features(graph, config.recency_half_lives,
                                       config.conv_recency_half_life, config.attention_recent)
  return gcn_conv.add_gcn_normalization(graph)
