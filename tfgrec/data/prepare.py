"""Columnar steps between validated rows and the graph: pseudonymize, dedupe, split, collapse.

All functions take and return pandas DataFrames with the columns of
``tfgrec.data.readers.columns('interactions')`` (plus ``count`` and ``split`` once added), are
deterministic (ties are broken by item id and event), and run per shard of users in the Beam job,
so they never need more than one shard in memory.

The split, per user (users are independent):
  1. Order the user's (deduplicated) events by (timestamp, item_id, event); events without a
     time (timestamp ``contract.NO_TIME`` = -1) come first, in input order (``position``).
  2. A user with fewer than ``min_interactions`` events keeps all of them in train.
  3. Otherwise ``n_test = max(1, floor(n * test_fraction))`` events go to test,
     ``n_val = max(1, floor(n * validation_fraction))`` to validation (a fraction of 0 gives
     none), and the rest to train. Train always keeps at least one event. Which events:
     * temporal (every event of the user has a time): the latest n_test go to test, the n_val
       before them to validation;
     * random (at least one event of the user has no time, so "latest" is undefined): the
       events are ranked by a keyed hash of (seed, user_id, item_id, event, timestamp), which
       identifies a deduplicated event; the n_test highest go to test, the n_val below them to
       validation. The hash depends on nothing else (not on shards, workers, runners or the
       order of the input), so the split is the same on every runner; another ``seed`` gives
       another split.

Events without a time, further: identical ones (same user, item and event) are collapsed into
one with a count like any duplicate (nothing tells them apart); an edge whose events all lack a
time has timestamp -1, so it ties with the user's other such edges in the recency ranks
(``tfgrec.graph.recency``: weight 1) and counts as older than every timed edge of the user.
"""
import dataclasses
import hashlib
import hmac
from typing import Dict, Tuple

import numpy as np
import pandas as pd

from tfgrec.data import contract

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
SALT_ENV = "TFGREC_PSEUDONYM_SALT"


@dataclasses.dataclass(frozen=True)
class SplitConfig:
  """How interactions are split per user (see the module docstring).

  Attributes:
    validation_fraction: share of each user's events held out for validation (the latest ones;
      a random share for users with events without a time).
    test_fraction: share of each user's events held out for test (likewise).
    min_interactions: users with fewer events stay entirely in train.
    seed: seed of the random split of users with events without a time.
  """
  validation_fraction: float = 0.1
  test_fraction: float = 0.1
  min_interactions: int = 5
  seed: int = 0

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
    if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
      raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")


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


EVENT_COLUMNS = ["user_id", "item_id", "timestamp", "event", "value", "count", "position"]


def has_time(timestamps) -> np.ndarray:
  """[n] bool: which timestamps are times (not contract.NO_TIME)."""
  return np.asarray(timestamps, np.int64) != contract.NO_TIME


def dedupe(frame: pd.DataFrame) -> Tuple[pd.DataFrame, int]:
  """Collapses identical events (same user, item, event and timestamp) into one with a count.

  Events without a time are identical when user, item and event agree (their timestamps are
  all contract.NO_TIME).

  Args:
    frame: events; `count` (default 1) and `position` (input order; default: row order) are
      optional.

  Returns:
    (frame with the columns EVENT_COLUMNS: `count` the total, `value` the mean of the
    duplicates' values, `position` the first one's; number of rows removed).
  """
  keys = ["user_id", "item_id", "event", "timestamp"]
  if "count" not in frame:
    frame = frame.assign(count=np.ones(len(frame), dtype=np.int64))
  if "position" not in frame:
    frame = frame.assign(position=np.arange(len(frame), dtype=np.int64))
  out = (frame.groupby(keys, sort=True, dropna=False)
         .agg(value=("value", "mean"), count=("count", "sum"), position=("position", "min"))
         .reset_index())
  out = out[EVENT_COLUMNS]
  return out, len(frame) - len(out)


def _tie(frame: pd.DataFrame) -> np.ndarray:
  """[n] order among equal timestamps: the input position for events without a time, else 0
  (timed ties are then ordered by item id and event)."""
  position = (frame["position"].to_numpy(np.int64) if "position" in frame
              else np.zeros(len(frame), np.int64))
  return np.where(has_time(frame["timestamp"]), 0, position)


def order_events(frame: pd.DataFrame) -> pd.DataFrame:
  """`frame` sorted per user: by time (ties by item id, event); events without a time first,
  in input order. Index reset."""
  frame = frame.assign(_tie=_tie(frame))
  frame = frame.sort_values(["user_id", "timestamp", "_tie", "item_id", "event"], kind="stable")
  return frame.drop(columns=["_tie"]).reset_index(drop=True)


def split_hash(frame: pd.DataFrame, seed: int) -> np.ndarray:
  """[n] uint64 keyed hash of each event's (user_id, item_id, event, timestamp) under `seed`.

  A deduplicated event is identified by these four; the hash (SipHash, pandas'
  hash_pandas_object) is the same on every machine, so the random split is too.
  """
  key = hashlib.sha256(f"tfgrec split {seed}".encode("utf-8")).hexdigest()[:16]
  cols = frame[["user_id", "item_id", "event", "timestamp"]].reset_index(drop=True)
  return pd.util.hash_pandas_object(cols, index=False, hash_key=key).to_numpy()


def random_split_users(frame: pd.DataFrame) -> np.ndarray:
  """[n] bool: whether each event's user is split at random (has an event without a time)."""
  timeless = pd.Series(~has_time(frame["timestamp"]), index=frame.index)
  return timeless.groupby(frame["user_id"]).transform("any").to_numpy(bool)


def temporal_split(frame: pd.DataFrame, config: SplitConfig) -> pd.DataFrame:
  """Adds a `split` column (train / validation / test) per the module docstring.

  Users whose events all have a time are split by time; users with an event without a time
  are split at random (seeded by config.seed). Rows come out in `order_events` order.
  """
  frame = order_events(frame)
  group = frame.groupby("user_id", sort=False)
  # Rank of each event in the order that decides the split: time, or the split hash.
  position = group.cumcount().to_numpy()
  random_user = random_split_users(frame)
  if random_user.any():
    # The hash-ranked events of a random user play the role of the time-ordered ones: the
    # highest hashes are "latest" and go to test.
    user = group.ngroup().to_numpy()  # Rows are grouped by user (order_events).
    order = np.lexsort((np.arange(len(frame)), split_hash(frame, config.seed), user))
    by_hash = np.empty(len(frame), np.int64)
    by_hash[order] = np.arange(len(frame)) - np.searchsorted(user[order], user[order])
    position = np.where(random_user, by_hash, position)
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

  Events without a time are older than timed ones (timestamp -1) and ordered among themselves
  by input position: an edge of only such events has timestamp -1 and the value of the last in
  the input.

  Args:
    train: training events with columns user_id, item_id, timestamp, event, value, count
      (and `position`, optional).

  Returns:
    DataFrame[user_id, item_id, value (float32; 1.0 where absent), timestamp, count], sorted.
  """
  ordered = train.assign(_tie=_tie(train)).sort_values(
      ["user_id", "item_id", "timestamp", "_tie", "event"], kind="stable")
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
