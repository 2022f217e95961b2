"""Columnar steps between validated rows and the graph: pseudonymize, dedupe, split, collapse.

All functions take and return pandas DataFrames with the columns of
``tfgrec.data.readers.columns('interactions')`` (plus ``count`` and ``split`` once added), are
deterministic (ties are broken by item id and event), and run per shard of users in the Beam job,
so they never need more than one shard in memory.

The temporal split, per user (users are independent):
  1. Sort the user's (deduplicated) events by (timestamp, item_id, event).
  2. A user with fewer than ``min_interactions`` events keeps all of them in train.
  3. Otherwise the last ``max(1, floor(n * test_fraction))`` events go to test, the
     ``max(1, floor(n * validation_fraction))`` before them to validation (a fraction of 0 gives
     none), and the rest to train. Train always keeps at least one event.
"""
import dataclasses
import hashlib
import hmac
from typing import Dict, Tuple

import numpy as np
import pandas as pd

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
SALT_ENV = "TFGREC_PSEUDONYM_SALT"


@dataclasses.dataclass(frozen=True)
class SplitConfig:
  """How interactions are split per user by time (see the module docstring).

  Attributes:
    validation_fraction: share of each user's latest events held out for validation.
    test_fraction: share of each user's latest events held out for test.
    min_interactions: users with fewer events stay entirely in train.
  """
  validation_fraction: float = 0.1
  test_fraction: float = 0.1
  min_interactions: int = 5

  def __post_init__(self):
    for name in ("validation_fraction", "test_fraction"):
      value = getattr(self, name)
      if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    if self.validation_fraction + self.test_fraction >= 1.0:
      raise ValueError("validation_fraction + test_fraction must be < 1, got "
                       f"{self.validation_fraction + self.test_fraction}")
    needed = 1 + (self.validation_fraction > 0) + (self.test_fraction > 0)
    if self.min_interactions < needed:
      raise ValueError(f"min_interactions must be >= {needed} (one event for each non-empty "
                       f"split), got {self.min_interactions}")


def pseudonymize(ids: pd.Series, salt: str) -> pd.Series:
  """Replaces ids by a keyed hash (HMAC-SHA256, 20 hex digits); the salt is never stored.

  Args:
    ids: [n] user ids.
    salt: secret key; the same salt gives the same pseudonyms across runs.
  """
  if not salt:
    raise ValueError(f"pseudonymization needs a non-empty salt (option --pseudonymize-salt or "
                     f"environment variable {SALT_ENV})")
  key = salt.encode("utf-8")
  uniques, codes = np.unique(ids.to_numpy(dtype=object), return_inverse=True)
  hashed = np.array(
      [hmac.new(key, u.encode("utf-8"), hashlib.sha256).hexdigest()[:20] for u in uniques],
      dtype=object)
  return pd.Series(hashed[codes], index=ids.index, name=ids.name)


def bucket_of(ids: pd.Series, num_buckets: int) -> np.ndarray:
  """Stable shard number in [0, num_buckets) of each id (same on every machine and run)."""
  hashes = pd.util.hash_pandas_object(ids, index=False).to_numpy()
  return (hashes % np.uint64(num_buckets)).astype(np.int64)


def dedupe(frame: pd.DataFrame) -> Tuple[pd.DataFrame, int]:
  """Collapses identical events (same user, item, event and timestamp) into one with a count.

  Returns:
    (frame with a `count` column and the mean of the duplicates' values, number of rows removed).
  """
  keys = ["user_id", "item_id", "event", "timestamp"]
  if "count" not in frame:
    frame = frame.assign(count=np.ones(len(frame), dtype=np.int64))
  out = (frame.groupby(keys, sort=True, dropna=False)
         .agg(value=("value", "mean"), count=("count", "sum"))
         .reset_index())
  out = out[["user_id", "item_id", "timestamp", "event", "value", "count"]]
  return out, len(frame) - len(out)


def temporal_split(frame: pd.DataFrame, config: SplitConfig) -> pd.DataFrame:
  """Adds a `split` column (train / validation / test) per the module docstring."""
  frame = frame.sort_values(["user_id", "timestamp", "item_id", "event"], kind="stable")
  frame = frame.reset_index(drop=True)
  group = frame.groupby("user_id", sort=False)
  position = group.cumcount().to_numpy()
  n = group["user_id"].transform("size").to_numpy()
  eligible = n >= config.min_interactions

  def held_out(fraction):
    if fraction <= 0:
      return np.zeros_like(n)
    return np.where(eligible, np.maximum(1, np.floor(n * fraction).astype(np.int64)), 0)

  n_test = held_out(config.test_fraction)
  n_val = held_out(config.validation_fraction)
  # Train keeps at least one event.
  overflow = np.maximum(0, n_test + n_val - (n - 1))
  n_val = np.maximum(0, n_val - overflow)
  from_end = n - position  # 1 for the latest event.
  split = np.full(len(frame), TRAIN, dtype=object)
  split[from_end <= n_test + n_val] = VALIDATION
  split[from_end <= n_test] = TEST
  return frame.assign(split=split)


def collapse_edges(train: pd.DataFrame) -> pd.DataFrame:
  """One edge per (user, item): total count, latest timestamp, value of the latest event.

  Args:
    train: training events with columns user_id, item_id, timestamp, event, value, count.

  Returns:
    DataFrame[user_id, item_id, value (float32; 1.0 where absent), timestamp, count], sorted.
  """
  ordered = train.sort_values(["user_id", "item_id", "timestamp", "event"], kind="stable")
  grouped = ordered.groupby(["user_id", "item_id"], sort=True)
  edges = grouped.agg(timestamp=("timestamp", "max"), count=("count", "sum"),
                      value=("value", "last")).reset_index()
  # `last` skips NaN; a pair whose events all lack a value is an implicit interaction: 1.0.
  edges["value"] = edges["value"].fillna(1.0).astype(np.float32)
  edges["timestamp"] = edges["timestamp"].astype(np.int64)
  edges["count"] = edges["count"].astype(np.int64)
  return edges[["user_id", "item_id", "value", "timestamp", "count"]]


def split_counts(frame: pd.DataFrame) -> Dict[str, int]:
  counts = frame["split"].value_counts()
  return {s: int(counts.get(s, 0)) for s in SPLITS}


def item_text(title: str, categories, description: str = "") -> str:
  """The text the language model reads for an item: 'title | cat1, cat2 | description'.

  Parts that are empty are left out; the serving signature ``encode_items`` builds the same
  string inside the TensorFlow graph.
  """
  parts = [title.strip()] if title and title.strip() else []
  cats = ", ".join(c for c in categories if c)
  if cats:
    parts.append(cats)
  if description and description.strip():
    parts.append(description.strip())
  return " | ".join(parts)
