"""Callbacks of a training run: validation with the full-ranking metrics, the best checkpoint,
early stopping, and a per-epoch history on disk.

Their state lives in the run directory (``best.json``, ``history.json``), not in memory, so a run
resumed after the process was killed (tf.keras.callbacks.BackupAndRestore restores the weights,
the optimizer and the epoch) keeps its best epoch, its patience count and its curves.
"""
import os
import time
from typing import Callable, Dict, Optional

import numpy as np

import tensorflow as tf

from tfgrec import storage
from tfgrec.eval import metrics
from tfgrec.eval import selection as selection_lib
from tfgrec.train import layout as layout_lib



def best_weights(run_dir: str, epoch: int) -> str:
  """The checkpoint prefix of the best epoch `epoch` (1-based): a new folder per best epoch.

  Checkpoints are never overwritten in place: the new one is written, best.json is pointed at
  it, then older ones are deleted. On an object store (no atomic overwrite) a run killed at any
  moment leaves best.json naming complete weights.
  """
  return layout_lib.RunLayout(run_dir).best_weights(epoch)


def embedding_scorer(emb: Dict[str, np.ndarray]):
  """users [B] -> [B, I] scores of a run's embeddings {'user', 'item'[, 'item_bias']}: the dot
  product, plus the query's popularity prior `item_bias` [I] when it has one
  (tfgrec.train.query)."""
  user, item = emb["user"], emb["item"]
  bias = emb.get("item_bias")
  if bias is None:
    return lambda users: user[np.asarray(users)] @ item.T
  return lambda users: user[np.asarray(users)] @ item.T + bias[None, :]


def validation_metrics(emb: Dict[str, np.ndarray], data, k: int) -> Dict[str, float]:
  """{'val_ndcg@k', 'val_recall@k', 'val_hr@k', 'val_mrr@k'} of normalized embeddings
  {'user', 'item'[, 'item_bias']} on the validation split, training items excluded: what picks
  the best epoch and the run's query (tfgrec.train.query)."""
  result = metrics.evaluate(embedding_scorer(emb), data.validation, [data.train],
                            num_items=data.num_items, ks=[k])
  return {f"val_{m}@{k}": result[f"{m}@{k}"] for m in ("ndcg", "recall", "hr", "mrr")}


class ValidationCallback(tf.keras.callbacks.Callback):
  """After each epoch: full-ranking NDCG@k / Recall@k on the validation split.

  Adds `val_ndcg@k`, `val_recall@k` (and hr, mrr) to the epoch logs (so TensorBoard and the history
  see them), saves the weights of the best epoch to `<run_dir>/checkpoints/best-<epoch>/`, lowers
  the learning rate by `lr_decay_factor` after every `lr_decay_patience` epochs without
  improvement, and stops training after `patience` epochs without improvement
  (tfgrec.eval.selection.BestEpoch picks the epoch). The learning rate is the optimizer's own
  variable, so a resumed run (BackupAndRestore) continues with it.

  Args:
    run_dir: the run directory.
    embeddings_fn: () -> {'user': [U, D], 'item': [I, D]} normalized embeddings.
    data: tfgrec.eval.EvalData (validation items relevant, training items excluded).
    k: the cut-off.
    patience: epochs without improvement before stopping (0: never).
    lr_decay_patience: epochs without improvement before each lowering of the learning rate
      (0: never).
    lr_decay_factor: what the learning rate is multiplied by then.
  """

  def __init__(self, run_dir: str, embeddings_fn: Callable[[], Dict[str, np.ndarray]], data,
               *, k: int = 20, patience: int = 5, verbose: bool = True,
               lr_decay_patience: int = 0, lr_decay_factor: float = 0.5):
    super().__init__()
    self.lr_decay_patience = lr_decay_patience
    self.lr_decay_factor = lr_decay_factor
    self.run_dir = run_dir
    self.embeddings_fn = embeddings_fn
    self.data = data
    self.k = k
    self.patience = patience
    self.verbose = verbose
    self.monitor = f"val_ndcg@{k}"
    self.best: Dict = {}  # best.json: {"epoch": 1-based, **the best epoch's metrics}.
    self.selection = selection_lib.BestEpoch(patience)

  @property
  def best_path(self) -> str:
    return layout_lib.RunLayout(self.run_dir).best

  def on_train_begin(self, logs=None):
    self.best = storage.read_json(self.best_path, {})
    self.selection = selection_lib.BestEpoch(self.patience, best_epoch=self.best.get("epoch", 0),
                                             best_value=self.best.get(self.monitor))

  def evaluate(self) -> Dict[str, float]:
    return validation_metrics(self.embeddings_fn(), self.data, self.k)

  def on_epoch_end(self, epoch, logs=None):
    logs = logs if logs is not None else {}
    values = self.evaluate()
    logs.update(values)
    value = values[self.monitor]
    if self.selection.update(epoch + 1, value):
      path = best_weights(self.run_dir, epoch + 1)
      storage.rmtree(os.path.dirname(path))  # A resumed run's unpublished try of this epoch.
      self.model.save_weights(path)
      self.best = {"epoch": epoch + 1, **values}
      storage.write_json(self.best_path, self.best)
      checkpoints = layout_lib.RunLayout(self.run_dir).checkpoints
      for name in storage.listdir(checkpoints):
        if name.startswith("best-") and name != os.path.basename(os.path.dirname(path)):
          storage.rmtree(os.path.join(checkpoints, name))
      note = "new best, saved"
    else:
      note = f"best {self.selection.best_value:.4f} at epoch {self.selection.best_epoch}"
    if self.verbose:
      print(f"  validation: ndcg@{self.k} {value:.4f}  recall@{self.k} "
            f"{values[f'val_recall@{self.k}']:.4f}  ({note})", flush=True)
    waited = self.selection.waited
    rate = self.model.optimizer.learning_rate
    if self.lr_decay_patience and waited and waited % self.lr_decay_patience == 0:
      rate.assign(rate * self.lr_decay_factor)
      if self.verbose:
        print(f"  learning rate lowered to {float(rate.numpy()):.3g}", flush=True)
    logs["learning_rate"] = float(tf.keras.backend.get_value(rate))  # For the next epoch.
    if self.selection.stop:
      if self.verbose:
        print(f"  early stopping: no better {self.monitor} for {self.patience} epochs", flush=True)
      self.model.stop_training = True


class HistoryCallback(tf.keras.callbacks.Callback):
  """Appends each epoch's logs (losses, validation metrics, seconds) to `<run_dir>/history.json`.

  Entries of epochs at or after the (possibly resumed) starting epoch are replaced.
  """

  def __init__(self, run_dir: str):
    super().__init__()
    self.path = layout_lib.RunLayout(run_dir).history
    self._start: Optional[float] = None

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.time()

  def on_epoch_end(self, epoch, logs=None):
    history = [h for h in storage.read_json(self.path, []) if h["epoch"] <= epoch]
    entry = {"epoch": epoch + 1, "seconds": round(time.time() - (self._start or time.time()), 3)}
    entry.update({k: float(v) for k, v in (logs or {}).items()
                  if np.ndim(v) == 0 and not k.startswith("regularization")})
    history.append(entry)
    storage.write_json(self.path, history)


def read_history(run_dir: str):
  return storage.read_json(layout_lib.RunLayout(run_dir).history, [])


def read_best(run_dir: str):
  return storage.read_json(layout_lib.RunLayout(run_dir).best, {})
