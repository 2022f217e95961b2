"""What a run reads from a graph directory, and the model built from it.

  inputs = load_inputs(config)        # graph, text embeddings, splits, sampling probabilities
  model = build_model(config, inputs)  # a GraphRecommender (inside the strategy's scope)
"""
import dataclasses
import logging
import os
from typing import Dict, Optional

import numpy as np

import tensorflow as tf
import tensorflow_gnn as tfgnn

from tfgrec import config as config_lib
from tfgrec import storage
from tfgrec.data import contract
from tfgrec.data import splits
from tfgrec.graph import recency
from tfgrec.graph import schema as gs
from tfgrec.models import graph_tower
from tfgrec.models import recommender

logger = logging.getLogger(__name__)

GRAPH_PATTERN = "graph-*.tfrecord"


@dataclasses.dataclass
class RunInputs:
  """Everything training and evaluation read, in index space (node i = vocabulary line i).

  Attributes:
    graph: the prepared training GraphTensor (normalization and recency features added).
    data: splits and popularity (tfgrec.data.splits.EvalData).
    item_ids, user_ids: [I], [U] vocabularies.
    item_strings: [I] item texts ('' for items without text).
    item_text: [I, T] frozen text embeddings, or None when no part of the model reads text.
    pairs: training pairs {'user', 'item', 'value', 'timestamp'} ([E] arrays), one per edge
      of the graph: one per (user, item), at its latest training time (data.train_events keeps
      every distinct training event).
    ranking_target: 'rating' or 'click' (tasks.ranking_target resolved).
    fine_tune_text: whether the text tower trains end to end.
  """
  graph: tfgnn.GraphTensor
  data: splits.EvalData
  item_ids: np.ndarray
  user_ids: np.ndarray
  item_strings: np.ndarray
  item_text: Optional[np.ndarray]
  pairs: dict
  ranking_target: str
  fine_tune_text: bool
  raw_graph: Optional[tfgnn.GraphTensor] = None


def read_graph(graph_dir: str) -> tfgnn.GraphTensor:
  """Parses the graph directory's training GraphTensor (one tf.Example)."""
  schema_path = os.path.join(graph_dir, gs.SCHEMA_FILENAME)
  files = tf.io.gfile.glob(os.path.join(graph_dir, GRAPH_PATTERN))
  if not tf.io.gfile.exists(schema_path) or not files:
    raise FileNotFoundError(
        f"{graph_dir} is not a graph directory (no {gs.SCHEMA_FILENAME} or {GRAPH_PATTERN}): "
        "build one with `tfgrec build-graph`")
  spec = gs.graph_spec(gs.read_schema(schema_path))
  records = list(tf.data.TFRecordDataset(sorted(files)).as_numpy_iterator())
  if len(records) != 1:
    raise ValueError(f"{graph_dir}: expected one training graph, found {len(records)} records "
                     "(full-graph mode)")
  return tfgnn.parse_single_example(spec, tf.constant(records[0]))


def read_vocab(graph_dir: str, name: str) -> np.ndarray:
  """The ids of a node set ('user', 'item', 'category') in node order."""
  return np.array(storage.read_text(os.path.join(graph_dir, "vocab", f"{name}.txt")
                                    ).splitlines(), dtype=object)


def fine_tune_text(config: config_lib.RunConfig) -> bool:
  """text.fine_tune resolved: 'auto' fine-tunes when a GPU is present."""
  mode = config.text.fine_tune
  if mode == "auto":
    return bool(tf.config.list_physical_devices("GPU"))
  return mode == "on"


def text_encoder(config: config_lib.RunConfig, trainable: bool = False):
  """The run's TextEncoder (embedded MiniLM by default)."""
  from tfgrec import text as text_lib  # pylint: disable=g-import-not-at-top
  checkpoint = text_lib.resolve_checkpoint(config.text.checkpoint)
  layers = (config.text.trainable_layers or -1) if trainable else 0
  return checkpoint, text_lib.TextEncoder.from_checkpoint(
      checkpoint, max_length=config.text.max_length, trainable_layers=layers)


def embed_catalog(config: config_lib.RunConfig, item_strings: np.ndarray, encoder=None,
                  checkpoint=None, progress: bool = True) -> np.ndarray:
  """[I, T] text embeddings of the catalog, from the cache when possible."""
  from tfgrec import text as text_lib  # pylint: disable=g-import-not-at-top
  if encoder is None:
    checkpoint, encoder = text_encoder(config)
  cache_dir = config.text.cache_dir or storage.join(
      storage.dirname(config.graph_dir if not storage.is_local(config.graph_dir)
                      else os.path.abspath(config.graph_dir)), "text_cache")
  return text_lib.embed_texts(encoder, list(item_strings), batch_size=config.text.batch_size,
                              cache_dir=cache_dir, fingerprint=checkpoint.fingerprint,
                              progress=progress)


def load_inputs(config: config_lib.RunConfig, progress: bool = True) -> RunInputs:
  """Reads the graph directory of `config` and embeds the item texts (cached)."""
  graph_dir = config.graph_dir
  raw = read_graph(graph_dir)
  graph = graph_tower.prepare_graph(raw, config.tower)
  data = splits.load_eval_data(graph_dir)
  item_ids, user_ids = read_vocab(graph_dir, "item"), read_vocab(graph_dir, "user")
  items = graph.node_sets[gs.ITEM]
  if items.total_size != len(item_ids) or data.num_items != len(item_ids):
    raise ValueError(f"{graph_dir}: the graph has {int(items.total_size)} items but "
                     f"vocab/item.txt has {len(item_ids)}")
  item_strings = np.array([t.decode("utf-8") for t in items["text"].numpy()], dtype=object)
  needs_text = config.model.use_text or config.tasks.alignment_weight > 0
  fine_tune = needs_text and fine_tune_text(config)
  item_text = embed_catalog(config, item_strings, progress=progress) if needs_text else None
  edges = raw.edge_sets[gs.INTERACTED]
  values = edges["value"].numpy()
  pairs = {"user": edges.adjacency.source.numpy(), "item": edges.adjacency.target.numpy(),
           "value": values.astype(np.float32),
           "timestamp": edges["timestamp"].numpy()}
  target = config.tasks.ranking_target
  if target == "auto":
    target = "rating" if len(values) and float(np.std(values)) > 0 else "click"
  return RunInputs(graph, data, item_ids, user_ids, item_strings, item_text, pairs, target,
                   fine_tune, raw)


def node_count(graph: tfgnn.GraphTensor, name: str) -> int:
  """Nodes of set `name` (0 when the graph has no such set, e.g. built by an older version)."""
  return int(graph.node_sets[name].total_size) if name in graph.node_sets else 0


def build_model(config: config_lib.RunConfig, inputs: RunInputs, text_encoder_layer=None
                ) -> recommender.GraphRecommender:
  """The GraphRecommender of `config` over `inputs` (call inside the strategy's scope)."""
  graph = inputs.graph
  text_dim = 0 if inputs.item_text is None else inputs.item_text.shape[1]
  tower = graph_tower.GraphTower(
      config.tower, num_users=int(graph.node_sets[gs.USER].total_size),
      num_items=int(graph.node_sets[gs.ITEM].total_size),
      num_categories=int(graph.node_sets[gs.CATEGORY].total_size), item_text_dim=text_dim,
      num_item_attributes=node_count(graph, gs.ITEM_ATTRIBUTE),
      num_user_attributes=node_count(graph, gs.USER_ATTRIBUTE))
  pairs = inputs.pairs
  counts = np.bincount(pairs["item"], minlength=inputs.data.num_items).astype(np.float64)
  probability = counts / max(counts.sum(), 1.0)
  profile = None
  if inputs.item_text is not None and config.tasks.alignment_weight > 0:
    ranks = recency.recency_ranks(pairs["user"], pairs["timestamp"])
    profile = recommender.user_text_profile(pairs["user"], pairs["item"], ranks,
                                            inputs.item_text, inputs.data.num_users)
  history = None
  if config.tasks.user_history_half_life:
    history = {"user": pairs["user"], "item": pairs["item"],
               "weight": history_weights(pairs, config.tasks.user_history_half_life)}
  values = pairs["value"]
  tasks = dataclasses.replace(config.tasks, ranking_target=inputs.ranking_target)
  return recommender.GraphRecommender(
      tower=tower, graph=graph, item_text=inputs.item_text, user_profile=profile,
      item_probability=probability, tasks=tasks,
      rating_mean=float(values.mean()) if len(values) else 0.0,
      rating_std=float(values.std()) if len(values) else 1.0,
      text_encoder=text_encoder_layer,
      item_strings=inputs.item_strings if text_encoder_layer is not None else None,
      history=history)


def history_weights(pairs: dict, half_life: float) -> np.ndarray:
  """[E] float32 recency weight of each pair among its user's (tfgrec.graph.recency)."""
  return recency.recency_weights(pairs["user"], pairs["timestamp"], half_life)


def known_graph(config: config_lib.RunConfig, inputs: RunInputs, split: str = "test"
                ) -> tfgnn.GraphTensor:
  """The graph the tower reads to predict `split`: the training graph, plus as interaction
  edges the events after training that `split` knows (tfgrec.data.splits.EvalData.later_events:
  the validation events for 'test', the validation and test events for 'serving')."""
  extra = inputs.data.later_events(split)
  if extra is None or inputs.raw_graph is None:
    return inputs.graph
  from tfgrec.graph import build  # pylint: disable=g-import-not-at-top
  later = build.add_interactions(inputs.raw_graph, extra["user"], extra["item"],
                                 extra["timestamp"])
  return graph_tower.prepare_graph(later, config.tower)


def known_events(inputs: RunInputs, split: str = "test") -> Dict[str, np.ndarray]:
  """The events known when predicting `split`, {'user', 'item', 'timestamp'} int64 [E]
  (tfgrec.data.splits.EvalData.known_events), starting from the training graph's edges
  (`inputs.pairs`, what the tower reads; known_graph) rather than data.train_events: a user's
  repeated training events with an item count once here, at the latest."""
  return inputs.data.known_events(split, training=inputs.pairs)


def known_history(config: config_lib.RunConfig, inputs: RunInputs, split: str = "test",
                  half_life: Optional[float] = None) -> Optional[dict]:
  """The history readout's arrays for predicting `split`: the known events (`known_events`)
  weighted by recency with `half_life` (default: tasks.user_history_half_life, the training
  readout's)."""
  if not config.tasks.user_history_half_life:
    return None
  half_life = half_life or config.tasks.user_history_half_life
  pairs = known_events(inputs, split)
  return {"user": pairs["user"], "item": pairs["item"],
          "weight": history_weights(pairs, half_life)}


# The causal readout of a training pair reads the user's events of the last this many
# half-lives before it (older ones weigh under 0.5 ** 6, 1.6%, and are left out).
CAUSAL_WINDOW_HALF_LIVES = 6.0


def training_dataset(inputs: RunInputs, batch_size: int, seed: int,
                     pair_recency_half_life: float = 0.0,
                     user_history_half_life: float = 0.0,
                     readout: str = "leave_one_out") -> tf.data.Dataset:
  """Shuffled batches of training pairs, reshuffled every epoch: {'user', 'item', 'value'},
  with 'weight' (0.5 ** (recency rank / pair_recency_half_life), scaled to mean 1) when that is
  on, and the history readout's inputs when user_history_half_life is on:

    readout 'leave_one_out': 'history_weight', the pair's weight in its user's whole-history
      readout (the model leaves the pair's own item out);
    readout 'causal': 'earlier_item' and 'earlier_weight' [B, L], the user's events strictly
      before the pair's time, latest first, weighted by their recency rank as of that time
      (0.5 ** (rank / half-life), tfgrec.graph.recency; weight 0 pads). The readout is then
      what a server would compute at the moment of the event, as at test time. Events without
      a time are older than every timed one and tie among themselves, so they have no earlier
      events; a log where no event has a time has no order at all, and trains with the
      leave-one-out readout.
  """
  if readout not in recommender.READOUTS:
    raise ValueError(f"tasks.training_readout must be one of {recommender.READOUTS}, got "
                     f"{readout!r}")
  pairs = inputs.pairs
  n = len(pairs["user"])
  if n == 0:
    raise ValueError("the training graph has no interactions")
  columns = {"user": pairs["user"].astype(np.int32), "item": pairs["item"].astype(np.int32),
             "value": pairs["value"]}
  if pair_recency_half_life:
    weight = history_weights(pairs, pair_recency_half_life)
    columns["weight"] = (weight / weight.mean()).astype(np.float32)
  if not user_history_half_life:
    return shuffled_batches(columns, batch_size, seed)
  if readout == "causal" and not (np.asarray(pairs["timestamp"]) != contract.NO_TIME).any():
    logger.info("no training event has a time: the history readout trains leave-one-out")
    readout = "leave_one_out"
  if readout == "leave_one_out":
    columns["history_weight"] = history_weights(pairs, user_history_half_life)
    return shuffled_batches(columns, batch_size, seed)
  order, start, end, offset = recency.earlier_events(pairs["user"], pairs["timestamp"])
  columns.update(earlier_start=start, earlier_end=end, earlier_offset=offset)
  ranks = recency.recency_ranks(pairs["user"], pairs["timestamp"])
  window = int(np.ceil(CAUSAL_WINDOW_HALF_LIVES * user_history_half_life))
  return shuffled_batches(columns, batch_size, seed).map(
      earlier_events_of(pairs["item"][order].astype(np.int32), ranks[order], window,
                        user_history_half_life),
      num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def earlier_events_of(items: np.ndarray, ranks: np.ndarray, window: int, half_life: float):
  """A batch map that replaces 'earlier_start/end/offset' (tfgrec.graph.recency.earlier_events)
  with 'earlier_item' and 'earlier_weight' [B, window], latest first.

  Args:
    items, ranks: [E] the item and recency rank of each event, in earlier_events' order.
    window: events kept before each pair.
    half_life: of the weights.
  """
  items = tf.constant(items, tf.int32)
  ranks = tf.constant(ranks, tf.int64)
  steps = tf.range(1, window + 1, dtype=tf.int64)[None, :]

  def add(batch):
    batch = dict(batch)
    start = batch.pop("earlier_start")[:, None]
    position = batch.pop("earlier_end")[:, None] - steps               # [B, L], latest first
    offset = batch.pop("earlier_offset")[:, None]
    valid = position >= start
    position = tf.maximum(position, 0)
    rank = tf.gather(ranks, position) - offset
    weight = tf.reshape(recency.encode(tf.reshape(rank, [-1]), [half_life]), tf.shape(rank))
    batch["earlier_item"] = tf.where(valid, tf.gather(items, position), 0)
    batch["earlier_weight"] = tf.where(valid, weight, 0.0)
    return batch

  return add


def shuffled_batches(columns: Dict[str, np.ndarray], batch_size: int, seed: int
                     ) -> tf.data.Dataset:
  """Batches of the rows of `columns` ({name: [N] array}), a new order on every pass over the
  dataset (every epoch), the same orders for the same seed; the last batch holds the rest.

  Whole batches are gathered from the column tensors by a shuffled index: a row-by-row shuffle
  buffer costs about 0.7 s a pass over MovieLens's 80,000 pairs on two cores, this about 0.07 s.
  """
  n = len(next(iter(columns.values())))
  size = max(1, min(int(batch_size), n))
  tables = {name: tf.constant(values) for name, values in columns.items()}
  bounds = tf.constant(np.append(np.arange(0, n, size), n), tf.int64)  # [0, size, ..., n]

  def epoch(draw):
    order = tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), draw]))
    return tf.data.Dataset.from_tensor_slices((bounds[:-1], bounds[1:])).map(
        lambda start, end: {name: tf.gather(table, order[start:end])
                            for name, table in tables.items()})

  # One fresh draw per pass (rerandomize_each_iteration), so each epoch has its own order.
  draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
  return draws.flat_map(epoch).prefetch(tf.data.AUTOTUNE)
