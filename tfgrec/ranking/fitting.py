"""Fitting the two stages offline: the stage-1 sources on some events, the stage-2 rankers on
candidate lists (each member of the ensemble its own held-out users), and what each feature
group is worth to a fit ranker.

  fitted, seconds = fit_sources({name: (factory, n)}, events, num_items, item_data)
  ranker, history = train_ranker(lists, RankerConfig())
"""
import dataclasses
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from tfgrec.eval import selection as selection_lib
from tfgrec.ranking import features as features_lib
from tfgrec.ranking import ranker as ranker_lib
from tfgrec.ranking.lists import Lists
from tfgrec.ranking.lists import list_ndcg
from tfgrec.ranking.lists import rank_lists
from tfgrec.sources import base

tf = features_lib.tf

RankerConfig = ranker_lib.RankerConfig


def fit_sources(make: Mapping[str, Tuple[Callable[[], base.CandidateSource], int]],
                events: Mapping[str, np.ndarray], num_items: int,
                item_data: Optional[Mapping[str, np.ndarray]] = None, progress: bool = True
                ) -> Tuple[Dict[str, Tuple[base.CandidateSource, int]], Dict[str, float]]:
  """Builds and fits every source on `events` {"user", "item", "timestamp"}.

  Returns:
    ({name: (source, N)}, {name: fit seconds}).
  """
  out, seconds = {}, {}
  for name, (factory, n) in make.items():
    start = time.time()
    source = factory().fit(events["user"], events["item"], events["timestamp"],
                           num_items=num_items, item_data=item_data)
    seconds[name] = time.time() - start
    out[name] = (source, min(int(n), num_items))
    if progress:
      print(f"  source {name}: fit in {seconds[name]:.1f} s", flush=True)
  return out, seconds



def _dataset(lists: Lists, batch: int, seed: int) -> tf.data.Dataset:
  """Shuffled batches of `batch` lists, every one full: the last is padded with empty lists
  (no valid candidate, no label: weight 0 in the loss), so one traced step serves them all."""
  features, valid = lists.features.astype(np.float32), lists.valid
  labels = lists.labels.astype(np.float32)
  pad = -len(lists.users) % batch
  if pad:
    features = np.concatenate([features, np.zeros((pad,) + features.shape[1:], np.float32)])
    valid = np.concatenate([valid, np.zeros((pad,) + valid.shape[1:], bool)])
    labels = np.concatenate([labels, np.zeros((pad,) + labels.shape[1:], np.float32)])
  data = tf.data.Dataset.from_tensor_slices({"features": features, "valid": valid,
                                             "labels": labels})
  return data.shuffle(len(labels), seed=seed).batch(batch, drop_remainder=True)



def train_ranker(lists: Lists, config: RankerConfig = RankerConfig(), *,
                 progress: bool = True) -> Tuple[ranker_lib.RankerEnsemble, Dict[str, list]]:
  """Fits `config.ensemble` Rankers (seeds seed, seed + 1, ...; each its own held-out users)
  on training lists; returns (their ensemble, each at its best epoch; history).

  history: the first member's per-epoch "loss" and "holdout_ndcg" and its "holdout_rows" (lists
  it never trained on), "member_holdout_ndcg" (each member's best) and "member_holdout_rows"
  (each member's held-out lists).
  """
  members, history = [], None
  for m in range(config.ensemble):
    member_config = dataclasses.replace(config, seed=config.seed + m)
    if progress and config.ensemble > 1:
      print(f"  ranker {m + 1} of {config.ensemble}", flush=True)
    model, h = _train_one(lists, member_config, progress=progress)
    members.append(model)
    if history is None:
      history = dict(h, member_holdout_ndcg=[], member_holdout_rows=[])
    history["member_holdout_ndcg"].append(max(h["holdout_ndcg"]))
    history["member_holdout_rows"].append(h["holdout_rows"])
  return ranker_lib.RankerEnsemble(members), history



def _train_one(lists: Lists, config: RankerConfig, *, progress: bool
               ) -> Tuple[ranker_lib.Ranker, Dict[str, list]]:
  """One Ranker at its best epoch by held-out NDCG@k (train_ranker)."""
  if lists.labels is None:
    raise ValueError("train_ranker needs labelled lists (build_lists(..., relevant=...))")
  keep = lists.labels.sum(1) > 0
  if keep.sum() < 2:
    raise ValueError(f"train_ranker needs >= 2 lists with a positive candidate, got "
                     f"{int(keep.sum())}")
  held_rows, train_rows = _holdout_split(lists, config)
  num_held = len(held_rows)
  held, train = lists.take(held_rows), lists.take(train_rows)
  valid = train.valid.reshape(-1)
  flat = train.features.reshape(-1, train.features.shape[-1])[valid]
  tf.keras.utils.set_random_seed(config.seed)
  model = ranker_lib.Ranker(num_features=flat.shape[1], feature_mean=flat.mean(0),
                            feature_std=flat.std(0), cross_layers=config.cross_layers,
                            projection_dim=config.projection_dim, hidden=config.hidden,
                            dropout=config.dropout, l2=config.l2)
  model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  data = _dataset(train, config.batch_lists, config.seed)
  selection = _HeldOutSelection(held if num_held else None, config, progress)
  model.fit(data, epochs=config.epochs, verbose=0, callbacks=[selection])
  history = {"loss": selection.losses, "holdout_ndcg": selection.values,
             "holdout_rows": held_rows}
  selection.best.restore(model)
  return model, history



class _HeldOutSelection(tf.keras.callbacks.Callback):
  """Scores the held-out lists after each epoch (NDCG@k; minus the loss without them), keeps
  the best epoch's weights, and stops after `patience` epochs without improvement
  (selection.BestEpoch): one `fit` call for the whole training."""

  def __init__(self, held: Optional[Lists], config: RankerConfig, progress: bool):
    super().__init__()
    self.held, self.config, self.progress = held, config, progress
    self.losses: List[float] = []
    self.values: List[float] = []
    # The ranker's patience 0 stops at the first epoch without improvement, as 1 does (the
    # tower's train.patience 0 never stops).
    self.best = selection_lib.BestEpoch(max(config.patience, 1))

  def on_epoch_end(self, epoch, logs=None):
    loss = float((logs or {}).get("loss", np.nan))
    if self.held is not None:
      logits = self.model({"features": self.held.features, "valid": self.held.valid}).numpy()
      value = list_ndcg(logits, self.held, self.config.k)
    else:
      value = -loss
    self.losses.append(loss)
    self.values.append(value)
    if self.progress:
      print(f"  ranker epoch {epoch + 1}: loss {loss:.4f}, held-out ndcg@{self.config.k} "
            f"{value:.4f}", flush=True)
    self.best.update(epoch + 1, value, self.model)
    if self.best.stop:
      self.model.stop_training = True



def member_holdout_rows(lists: Lists, config: RankerConfig, members: int) -> List[np.ndarray]:
  """Each ensemble member's held-out rows of its training `lists`, as `train_ranker` draws them
  (member m: seed config.seed + m)."""
  return [_holdout_split(lists, dataclasses.replace(config, seed=config.seed + m))[0]
          for m in range(members)]



def _holdout_split(lists: Lists, config: RankerConfig) -> Tuple[np.ndarray, np.ndarray]:
  """(held-out rows, training rows) of one ranker: the lists with a positive, shuffled by
  config.seed, the first `config.holdout` share held out."""
  keep = lists.labels.sum(1) > 0
  rows = np.random.default_rng(config.seed).permutation(np.flatnonzero(keep))
  num_held = max(1, int(round(config.holdout * len(rows)))) if config.holdout > 0 else 0
  return rows[:num_held], rows[num_held:]



def permutation_importance(ranker: ranker_lib.Ranker, lists: Lists, groups, *, k: int = 20,
                           seed: int = 0) -> Dict[str, float]:
  """{group: NDCG@k lost when the group's columns are permuted across (user, candidate) pairs}.

  A feature group's worth to a trained ranker (Breiman 2001): the group's columns move together
  (their joint distribution is kept), every other column stays; measured on lists the ranker
  was not fit on.
  """
  base_ndcg = list_ndcg(rank_lists(ranker, lists), lists, k)
  rows, cols = np.nonzero(lists.valid)
  rng = np.random.default_rng(seed)
  out = {}
  for group in sorted(set(groups), key=list(groups).index):
    columns = np.array([g == group for g in groups])
    shuffled = lists.take(np.arange(len(lists.users)))
    shuffled.features = lists.features.copy()
    block = lists.features[rows, cols][:, columns]
    shuffled.features[rows[:, None], cols[:, None], np.flatnonzero(columns)[None, :]] = block[
        rng.permutation(len(rows))]
    out[group] = base_ndcg - list_ndcg(rank_lists(ranker, shuffled), lists, k)
  return out
