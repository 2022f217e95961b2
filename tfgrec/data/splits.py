"""A graph directory's splits in index space, and the events known when predicting each one.

  data = load_eval_data(graph_dir)              # vocabularies + splits/{train,validation,test}
  events = data.known_events("test")             # {'user', 'item', 'timestamp'} int64 [E]
  frame = data.history_events("test")            # the same events as a DataFrame

Training, ranking, evaluation and the final fit all read the splits from here, and ask
`EvalData.known_events` (or its DataFrame form `history_events`) which events a prediction of a
split may read: the one place that says it.
"""
import dataclasses
import os
from typing import Dict, List, Mapping, Optional

import numpy as np
import pandas as pd

from tfgrec import storage
from tfgrec.data import histories

# The split names of `EvalData.known_events`: predicting validation, predicting test, and
# serving (every known event: what the final fit and the served model read).
SERVING = "serving"
# Which held-out splits are known, beyond the training events, when predicting each split: a
# deployed model knows everything up to now.
KNOWN_AFTER_TRAINING = {"validation": (), "test": ("validation",),
                        SERVING: ("validation", "test")}
KNOWN_SPLITS = tuple(KNOWN_AFTER_TRAINING)
EVENT_COLUMNS = ("user", "item", "timestamp")


@dataclasses.dataclass
class EvalData:
  """A graph directory's splits in index space (node i = vocabulary line i).

  Attributes:
    num_users, num_items: node counts.
    train, validation, test: per-user item sets.
    train_events: DataFrame[user, item, timestamp] of the training events (deduplicated).
    popularity: [num_items] training users per item.
    validation_events: DataFrame[user, item, timestamp] of the validation events.
    test_events: DataFrame[user, item, timestamp] of the test events (their times set each
      user's reference time; never a model input).

  Known history: a model predicting the validation split knows each user's training events; one
  predicting the test split also knows the validation events (as a deployed model knows
  everything up to now); the served model (SERVING) knows every event. Models are fit on
  training events only; user-side models that can take a history (EASE, text only, the model's
  history readout, ALS by folding in) use the known history of the split they predict
  (`known_events`).
  """
  num_users: int
  num_items: int
  train: histories.Interactions
  validation: histories.Interactions
  test: histories.Interactions
  train_events: pd.DataFrame
  popularity: np.ndarray
  validation_events: Optional[pd.DataFrame] = None
  test_events: Optional[pd.DataFrame] = None

  def first_times(self, split: str) -> np.ndarray:
    """[num_users] int64: each user's first event time in `split` (NO_TIME = -1 if none): the
    reference time of a request that predicts the split."""
    frame = {"validation": self.validation_events, "test": self.test_events}.get(split)
    if frame is None:
      raise ValueError(f"split must be 'validation' or 'test' (loaded), got {split!r}")
    out = np.full(self.num_users, -1, np.int64)
    first = frame.groupby("user")["timestamp"].min()
    out[first.index.to_numpy()] = first.to_numpy()
    return out

  def _later_frames(self, split: str) -> List[pd.DataFrame]:
    """The non-empty frames of the held-out splits known when predicting `split`."""
    if split not in KNOWN_SPLITS:
      raise ValueError(f"split must be one of {KNOWN_SPLITS}, got {split!r}")
    frames = [getattr(self, f"{name}_events") for name in KNOWN_AFTER_TRAINING[split]]
    return [f for f in frames if f is not None and len(f)]

  def later_events(self, split: str) -> Optional[Dict[str, np.ndarray]]:
    """The events known when predicting `split` beyond the training events ({'user', 'item',
    'timestamp'} int64 [E]: the validation events for 'test', the validation and test events
    for SERVING), or None when there are none."""
    frames = self._later_frames(split)
    if not frames:
      return None
    return {k: np.concatenate([f[k].to_numpy(np.int64) for f in frames]) for k in EVENT_COLUMNS}

  def known_events(self, split: str = "test", *,
                   training: Optional[Mapping[str, np.ndarray]] = None
                   ) -> Dict[str, np.ndarray]:
    """The events known when predicting `split`, {'user', 'item', 'timestamp'} int64 [E]: the
    training events, then `later_events(split)`.

    Args:
      split: 'validation', 'test' or SERVING.
      training: the training events to start from ({'user', 'item', 'timestamp'} [E] arrays);
        default `train_events`. The graph tower passes its graph's edges (tfgrec.train.inputs):
        one per (user, item), at its latest training time (tfgrec.data.prepare.collapse_edges),
        so they differ from `train_events` where a user met an item more than once in training.

    Returns:
      {'user', 'item', 'timestamp'} int64 [E], the training events first.
    """
    if training is None:
      training = self.train_events
    out = {k: np.asarray(training[k], np.int64) for k in EVENT_COLUMNS}
    later = self.later_events(split)
    if later is not None:
      out = {k: np.concatenate([v, later[k]]) for k, v in out.items()}
    return out

  def history_events(self, split: str = "test") -> pd.DataFrame:
    """DataFrame[user, item, timestamp]: `known_events(split)` as a frame (the training events,
    then the later ones; a frame of this object itself when only one split has events)."""
    frames = [f for f in [self.train_events] + self._later_frames(split) if len(f)]
    if len(frames) <= 1:
      return frames[0] if frames else self.train_events
    return pd.concat(frames, ignore_index=True)


def _read_split(graph_dir: str, split: str) -> pd.DataFrame:
  folder = os.path.join(graph_dir, "splits", split)
  files = [f for f in storage.listdir(folder) if f.endswith(".parquet")]
  if not files:
    return pd.DataFrame({"user_id": [], "item_id": [], "timestamp": []})
  return pd.concat([storage.read_parquet(os.path.join(folder, f)) for f in files],
                   ignore_index=True)


def load_eval_data(graph_dir: str) -> EvalData:
  """Reads vocabularies and split files of a graph directory."""
  def vocab(name):
    return pd.Index(storage.read_text(os.path.join(graph_dir, "vocab", f"{name}.txt")
                                      ).splitlines())

  users, items = vocab("user"), vocab("item")
  out = {}
  for split in ("train", "validation", "test"):
    frame = _read_split(graph_dir, split)
    u = users.get_indexer(frame["user_id"])
    i = items.get_indexer(frame["item_id"])
    if (u < 0).any() or (i < 0).any():
      raise ValueError(f"{graph_dir}: {split} split names ids missing from the vocabularies")
    out[split] = pd.DataFrame({"user": u, "item": i,
                               "timestamp": frame["timestamp"].to_numpy(np.int64)})
  csr = {s: histories.Interactions.from_pairs(f["user"].to_numpy(), f["item"].to_numpy(),
                                              len(users)) for s, f in out.items()}
  popularity = np.bincount(csr["train"].indices, minlength=len(items))
  return EvalData(len(users), len(items), csr["train"], csr["validation"], csr["test"],
                  out["train"], popularity, out["validation"], out["test"])
