"""`tfgrec train`: one run from a YAML config to every artifact the served model holds.

  result = train(load_config("run.yaml"))
  result.best            # {'epoch': 12, 'val_ndcg@20': ..., ...}
  result.run_dir         # config.yaml, checkpoints/, final/, manifest.json, ...

The graph tower trains with validation (the best epoch is kept), the user query is picked on
validation (tfgrec.train.query), the stage-1 sources and the stage-2 ranker are fit over the
trained tower (tfgrec.train.two_stage), and the final fit (tfgrec.train.final_fit) makes every
artifact of the served model from every known event and writes the manifest. The run
directory's layout is tfgrec.train.layout's.

A run killed midway resumes from its last finished epoch when started again with the same
run_dir (tf.keras.callbacks.BackupAndRestore); a finished run is retrained from scratch.
"""
import dataclasses
import logging
import random
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np

import tensorflow as tf

from tfgrec import config as config_lib
from tfgrec import storage
from tfgrec.train import callbacks as cb
from tfgrec.train import final_fit as final_fit_lib
from tfgrec.train import inputs as inputs_lib
from tfgrec.train import layout as layout_lib
from tfgrec.train import query as query_lib
from tfgrec.train import two_stage

logger = logging.getLogger(__name__)



def choose_strategy() -> tf.distribute.Strategy:
  """The tf.distribute strategy for the devices present.

  Several GPUs: MirroredStrategy (each replica runs the graph tower on its share of the batch);
  one GPU: OneDeviceStrategy on it; otherwise the default strategy (CPU).
  """
  gpus = tf.config.list_physical_devices("GPU")
  if len(gpus) > 1:
    return tf.distribute.MirroredStrategy()
  if len(gpus) == 1:
    return tf.distribute.OneDeviceStrategy("/gpu:0")
  return tf.distribute.get_strategy()


def _has_backup(backup_dir: str) -> bool:
  """Whether an unfinished run left its state (a finished run leaves the folder empty)."""
  return storage.has_files(backup_dir)


def set_seeds(seed: int) -> None:
  random.seed(seed)
  np.random.seed(seed)
  tf.keras.utils.set_random_seed(seed)


@dataclasses.dataclass
class TrainResult:
  """What a finished run returns (also on disk in its run directory)."""
  run_dir: str
  best: Dict
  history: list
  seconds: float
  model: object


class _RefreshText(tf.keras.callbacks.Callback):
  """When the text tower fine-tunes, re-embeds the whole catalog before each epoch."""

  def __init__(self, config, inputs, encoder):
    super().__init__()
    self.config, self.inputs, self.encoder = config, inputs, encoder

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == 0:
      return
    self.model.refresh_item_text(_embed_items(self.config, self.encoder, self.inputs))


def _embed_items(config: config_lib.RunConfig, encoder, inputs: inputs_lib.RunInputs
                 ) -> np.ndarray:
  """[I, T] the catalog as `encoder` reads it now (no cache: fine-tuned weights change)."""
  from tfgrec import text as text_lib  # pylint: disable=g-import-not-at-top
  return text_lib.embed_texts(encoder, list(inputs.item_strings),
                              batch_size=config.text.batch_size, progress=False)


def save_embeddings(model, config: config_lib.RunConfig, inputs: inputs_lib.RunInputs,
                    path: str) -> Dict[str, np.ndarray]:
  """Writes the run's embeddings of the training graph and history, with its query
  (query.json), to `path`."""
  emb = query_lib.embeddings(model, config, inputs, "validation", query_lib.read_query(config))
  storage.save_npz(path, user=emb["user"], item=emb["item"],
                   item_bias=emb.get("item_bias", np.zeros(len(emb["item"]), np.float32)),
                   user_ids=inputs.user_ids.astype(str), item_ids=inputs.item_ids.astype(str))
  return emb


def dataset_of(config: config_lib.RunConfig, inputs: inputs_lib.RunInputs,
               batch_size: Optional[int] = None) -> tf.data.Dataset:
  return inputs_lib.training_dataset(
      inputs, batch_size or config.train.batch_size, config.train.seed,
      pair_recency_half_life=config.tasks.pair_recency_half_life,
      user_history_half_life=config.tasks.user_history_half_life,
      readout=config.tasks.training_readout)


def build(model, dataset: tf.data.Dataset) -> None:
  """Creates every variable of the model (losses on one batch, no update).

  Runs in replica context (`strategy.run`): under MirroredStrategy the losses, averaged over the
  global batch with `tf.nn.compute_average_loss`, cannot be computed in cross-replica context.
  """
  strategy = tf.distribute.get_strategy()
  for batch in dataset.take(1):
    strategy.run(lambda b: model.compute_loss(b, training=False), args=(batch,))
  for tracker in model.loss_trackers.values():
    tracker.reset_state()
  model.built = True


def restore_best(model, config: config_lib.RunConfig, inputs: inputs_lib.RunInputs) -> None:
  """Loads the best epoch's weights into the model."""
  best = cb.read_best(config.run_dir)
  path = cb.best_weights(config.run_dir, best["epoch"]) if best else None
  if path is None or not storage.exists(path + ".index"):
    raise FileNotFoundError(f"{config.run_dir} has no best checkpoint (best.json and "
                            "checkpoints/best-<epoch>/weights.index): train first")
  if not model.built:
    build(model, dataset_of(config, inputs, batch_size=256))
  status = model.load_weights(path)
  status.assert_existing_objects_matched()
  status.expect_partial()  # The optimizer slots are not needed to predict.


def train(config: config_lib.RunConfig, *, progress: bool = True,
          inputs: Optional[inputs_lib.RunInputs] = None,
          extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
          final_fit: bool = True) -> TrainResult:
  """Trains the model of `config` (see the module docstring); returns the best epoch.

  Args:
    config: the run config.
    progress: Keras progress bars and per-epoch validation lines.
    inputs: already loaded inputs (tests and baselines share them), else read from graph_dir.
    extra_callbacks: appended to the run's callbacks.
    final_fit: end with the final fit (every artifact of the served model). Off only for runs
      that are never served: the trained baselines of `tfgrec evaluate`, benchmark variants.
  """
  start = time.time()
  run_dir = config.run_dir
  layout = layout_lib.RunLayout(run_dir)
  storage.makedirs(run_dir)
  backup_dir = layout.backup
  if not _has_backup(backup_dir):  # A fresh run: forget a previous run's curves and best.
    for path in (layout.best, layout.history, layout.query, layout.manifest):
      storage.remove(path)
    storage.rmtree(layout.checkpoints)
    storage.rmtree(layout.final)
  config_lib.save_config(config, layout.config)
  set_seeds(config.train.seed)
  inputs = inputs or inputs_lib.load_inputs(config, progress=progress)
  strategy = choose_strategy()
  with strategy.scope():
    encoder = None
    if inputs.fine_tune_text:
      _, encoder = inputs_lib.text_encoder(config, trainable=True)
    model = inputs_lib.build_model(config, inputs, text_encoder_layer=encoder)
    optimizer = tf.keras.optimizers.Adam(config.train.learning_rate,
                                         global_clipnorm=config.train.clip_norm or None)
    model.compile(optimizer=optimizer,
                  jit_compile=config.train.jit_compile)
  dataset = dataset_of(config, inputs)
  with strategy.scope():
    build(model, dataset)
  callbacks = [
      cb.ValidationCallback(run_dir, model.embeddings, inputs.data, k=config.train.validation_k,
                            patience=config.train.patience, verbose=progress,
                            lr_decay_patience=config.train.lr_decay_patience,
                            lr_decay_factor=config.train.lr_decay_factor),
      cb.HistoryCallback(run_dir),
      tf.keras.callbacks.BackupAndRestore(backup_dir),
      tf.keras.callbacks.TensorBoard(layout.logs, write_graph=False,
                                     profile_batch=0),
  ]
  if encoder is not None:
    callbacks.append(_RefreshText(config, inputs, encoder))
  callbacks.extend(extra_callbacks)
  logger.info("training on %s (%d replica(s))", type(strategy).__name__,
              strategy.num_replicas_in_sync)
  # A progress bar per epoch on a terminal, one line per epoch in a log file.
  verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
  model.fit(dataset, epochs=config.train.epochs, callbacks=callbacks, verbose=verbose)
  restore_best(model, config, inputs)
  if encoder is not None:  # The catalog as the best epoch's text tower reads it (load_trained).
    model.refresh_item_text(_embed_items(config, encoder, inputs))
  query_lib.fit_query(model, config, inputs, progress=progress)
  save_embeddings(model, config, inputs, layout.embeddings)
  if config.ranking.enabled:  # Stage 1 sources and the stage 2 ranker, over the trained tower.
    if progress:
      print("two stages: fitting the candidate sources and the ranker", flush=True)
    two_stage.train(config, inputs, model, progress=progress)
  if final_fit:
    final_fit_lib.fit(config, inputs, model, progress=progress)
  return TrainResult(run_dir, cb.read_best(run_dir), cb.read_history(run_dir),
                     time.time() - start, model)


def final_fit(config: config_lib.RunConfig, *, progress: bool = True
              ) -> "final_fit_lib.manifest_lib.Manifest":
  """Reruns the final fit alone on a trained run (`tfgrec final-fit`); returns its manifest."""
  model, inputs = load_trained(config, progress=progress)
  return final_fit_lib.fit(config, inputs, model, progress=progress)


def load_trained(config: config_lib.RunConfig, inputs: Optional[inputs_lib.RunInputs] = None,
                 progress: bool = False):
  """Rebuilds a run's model and restores its best weights; returns (model, inputs)."""
  inputs = inputs or inputs_lib.load_inputs(config, progress=progress)
  encoder = None
  if inputs.fine_tune_text:
    _, encoder = inputs_lib.text_encoder(config, trainable=True)
  model = inputs_lib.build_model(config, inputs, text_encoder_layer=encoder)
  restore_best(model, config, inputs)
  if encoder is not None:  # The item texts as the fine-tuned text tower reads them.
    model.refresh_item_text(_embed_items(config, encoder, inputs))
  return model, inputs
