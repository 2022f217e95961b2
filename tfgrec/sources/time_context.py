"""Time context: what is trending, and what is fresh, at the reference time.

Both sources ignore the user's history (every user of a batch with the same `now` gets the same
scores) and use only events at or before `now`, so a score computed for a past reference time
does not change when later events are added. Events are stored sorted by (item, time) as one
int64 key per event, key = item * S + (time - t0); the count of item i's events in (a, b] is
two binary searches (``tf.searchsorted``), no per-event work. The sources score every item, and
for them the index also keeps prefix tables: the events sorted by time, and every item's count
before every C-th of them (C = `checkpoint_every`); the counts of all items up to a time are one
row of that table plus fewer than C events, O(B × (I + C)) for a batch instead of
O(B × I × log E) searches.

With n_i(a, b] the number of item i's fit events with a < time <= b (times in epoch seconds,
windows and half-lives in days):

  Trending:  score_i(now) = sum_{w in windows} n_i(now - w, now] / w
                            + popularity_weight * n_i(-inf, now]
             (events per day in each window: a stepped decay kernel; the last term orders the
             items without a recent event by their popularity so far)
  Fresh:     score_i(now) = (1 + n_i(-inf, now]) * 0.5 ** (age_i(now) / half_life)
             age_i(now) = now - first_i, first_i = the item's first event, or its
             ``item_data["available_time"]`` (e.g. a release date) when given and earlier;
             items with first_i > now, or never seen, score 0.

Without timestamps (every time NO_TIME = -1, or all equal, and `now` at that time) every event
is in every window and every age is 0: both sources degrade to popularity (events per item).
"""
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from tfgrec.sources import base

tf = base.tf

SECONDS_PER_DAY = 86_400
AVAILABLE_TIME = "available_time"
# first_i of an item never seen (and without available_time): after every `now`.
NEVER = np.iinfo(np.int64).max
# A time before every event (and far enough from int64's limits to subtract from).
BEGINNING = -(2 ** 62)
# Prefix tables (`EventIndex(checkpoint_every=...)`): one row of item counts every this many
# events, and at most this many table entries (the stride grows for long logs, large catalogs).
CHECKPOINT_EVERY = 256
CHECKPOINT_MAX_ENTRIES = 2 ** 24


class EventIndex(tf.Module):
  """Events as sorted (item, time) keys: per-item event counts in time windows, and first times.

  The one home of time-windowed item counts: the time-context sources and the ranker's
  popularity features read them. Counting is two binary searches per (row, item), so it only
  ever sees events inside the window asked for.

  >>> index = EventIndex([0, 1, 1], [10, 10, 20], num_items=2)
  >>> index.counts_numpy(np.array([[0, 1]]), np.array([0]), np.array([15])).tolist()
  [[1.0, 1.0]]

  Args:
    item: [E] item indices in [0, num_items).
    timestamp: [E] int64 epoch seconds.
    num_items: catalog size.
    available_time: optional [num_items] int64 times from which items exist (NO_TIME: unknown);
      an item's first time is the earlier of it and the item's first event.
    checkpoint_every: C, events between two rows of the prefix tables that `counts_many_all`
      reads (None: no tables; it searches every item's keys instead). Grows so that the table
      keeps at most CHECKPOINT_MAX_ENTRIES counts (int32, 64 MB).
  """

  def __init__(self, item, timestamp, *, num_items: int, available_time=None,
               checkpoint_every: Optional[int] = None, name: str = "event_index"):
    super().__init__(name=name)
    item = np.asarray(item, np.int64).reshape(-1)
    t = np.asarray(timestamp, np.int64).reshape(-1)
    num_items = int(num_items)
    t0 = int(t.min()) - 1 if len(t) else base.NO_TIME - 1
    span = (int(t.max()) - t0 + 2) if len(t) else 2  # S: keys of item i in [iS, iS+S).
    if num_items * span >= 2 ** 62:
      raise ValueError(f"num_items x time span too large for int64 keys: {num_items} x "
                       f"{span} s")
    keys = np.sort(item * span + (t - t0))
    # Where each item's keys start: the count "since the beginning" needs no search.
    starts = np.searchsorted(keys, np.arange(num_items, dtype=np.int64) * span, side="right")
    first = np.full(num_items, NEVER, np.int64)
    np.minimum.at(first, item, t)
    if available_time is not None:
      available = np.asarray(available_time, np.int64).reshape(-1)
      known = available != base.NO_TIME
      first[known] = np.minimum(first[known], available[known])
    if checkpoint_every is not None and int(checkpoint_every) <= 0:
      raise ValueError(f"checkpoint_every must be > 0 or None, got {checkpoint_every}")
    arrays = {"keys": keys, "starts": starts, "first_seen": first}
    state = {"num_items": num_items, "t0": t0, "span": span, "checkpoint_every": None}
    if checkpoint_every is not None and len(t):  # No events: the searches are as cheap.
      state["checkpoint_every"] = max(int(checkpoint_every),
                                      -(-len(t) * num_items // CHECKPOINT_MAX_ENTRIES))
      arrays.update(_prefix_tables(item, t, num_items, state["checkpoint_every"]))
    self._set_state(arrays, state)

  @classmethod
  def from_state(cls, arrays: Dict[str, np.ndarray], state: Dict[str, Any], *,
                 name: str = "event_index") -> "EventIndex":
    """The index `get_state` described, rebuilt without its events (no sort, no count)."""
    index = cls.__new__(cls)
    super(EventIndex, index).__init__(name=name)
    index._set_state(arrays, state)  # pylint: disable=protected-access
    return index

  def get_state(self) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """({name: array}, {name: JSON value}): what `from_state` rebuilds the index from."""
    arrays = {"keys": self._keys, "starts": self.starts.numpy(), "first_seen": self._first}
    if self.checkpoint_every is not None:
      arrays.update(times_sorted=self.times_sorted.numpy(),
                    items_by_time=self.items_by_time.numpy(),
                    prefix_counts=self.prefix_counts.numpy())
    return arrays, {"num_items": self.num_items, "t0": self.t0, "span": self.span,
                    "checkpoint_every": self.checkpoint_every}

  def _set_state(self, arrays, state):
    self.num_items = int(state["num_items"])
    self.t0 = int(state["t0"])
    self.span = int(state["span"])
    self._keys = np.asarray(arrays["keys"], np.int64)
    self.keys = tf.Variable(self._keys, trainable=False, name="event_keys")
    self.starts = tf.Variable(np.asarray(arrays["starts"], np.int64), trainable=False,
                              name="item_starts")
    self._first = np.asarray(arrays["first_seen"], np.int64)
    self.first_seen = tf.Variable(self._first, trainable=False, name="first_seen")
    self.checkpoint_every = state["checkpoint_every"]
    if self.checkpoint_every is None:
      return
    self.checkpoint_every = int(self.checkpoint_every)
    times_sorted = np.asarray(arrays["times_sorted"], np.int64)
    self._num_events = len(times_sorted)  # The padding entry of items_by_time.
    self.times_sorted = tf.Variable(times_sorted, trainable=False, name="times_sorted")
    self.items_by_time = tf.Variable(np.asarray(arrays["items_by_time"], np.int32),
                                     trainable=False, name="items_by_time")
    self.prefix_counts = tf.Variable(np.asarray(arrays["prefix_counts"], np.int32),
                                     trainable=False, name="prefix_counts")

  def counts(self, items, lower, upper):
    """n_i(lower, upper]: items [B, C] int, lower/upper [B] int64 -> [B, C] float32."""
    return self.counts_many(items, [lower], upper)[0]

  def counts_many(self, items, lowers, upper):
    """n_i(lower, upper] for several lower bounds that share `upper` (one search for it).

    Args:
      items: [B, C] int item indices.
      lowers: a list of [B] int64 bounds; None stands for the beginning (every event up to
        `upper`), which needs no search.
      upper: [B] int64.
    Returns:
      a list of [B, C] float32, one per entry of `lowers`.
    """
    items = tf.cast(items, tf.int64)
    span, t0 = tf.constant(self.span, tf.int64), tf.constant(self.t0, tf.int64)

    def position(time):
      rel = tf.clip_by_value(time - t0, 0, span - 1)
      key = items * span + rel[:, None]
      flat = tf.reshape(key, [1, -1])
      return tf.reshape(tf.searchsorted(self.keys[None, :], flat, side="right",
                                        out_type=tf.int64), tf.shape(key))

    top = position(upper)
    out = []
    for lower in lowers:
      bottom = tf.gather(self.starts, items) if lower is None else position(lower)
      out.append(tf.cast(top - bottom, tf.float32))
    return out

  def counts_many_all(self, lowers, upper):
    """`counts_many` for every item: [B] bounds -> a list of [B, num_items] float32."""
    if self.checkpoint_every is not None:
      bounds = [upper] + [lower for lower in lowers if lower is not None]
      batch = tf.shape(upper)[0]
      prefix = tf.split(self._prefix_all(tf.concat(bounds, axis=0)),
                        tf.fill([len(bounds)], batch))
      out, next_bound = [], 1
      for lower in lowers:
        if lower is None:
          out.append(tf.cast(prefix[0], tf.float32))
        else:
          out.append(tf.cast(prefix[0] - prefix[next_bound], tf.float32))
          next_bound += 1
      return out
    items = tf.range(self.num_items, dtype=tf.int64)[None, :]
    return self.counts_many(tf.broadcast_to(items, [tf.shape(upper)[0], self.num_items]),
                            lowers, upper)

  def _prefix_all(self, time):
    """[Q] int64 times -> [Q, num_items] int32: each item's events at or before each time."""
    every = self.checkpoint_every
    seen = tf.searchsorted(self.times_sorted[None, :], time[None, :], side="right",
                           out_type=tf.int64)[0]                               # [Q]
    row = seen // every
    rest = row[:, None] * every + tf.range(every, dtype=tf.int64)[None, :]     # [Q, C]
    inside = rest < seen[:, None]
    items = tf.gather(self.items_by_time, tf.where(inside, rest, self._num_events))
    queries = tf.shape(time)[0]
    # The events after the row, as (query, item) cells of the flat [Q * I] counts (a segment
    # sum: measured faster than a scatter into the gathered rows or a bincount).
    cell = tf.range(queries)[:, None] * self.num_items + items
    after = tf.math.unsorted_segment_sum(tf.reshape(tf.cast(inside, tf.int32), [-1]),
                                         tf.reshape(cell, [-1]), queries * self.num_items)
    return tf.gather(self.prefix_counts, row) + tf.reshape(after, [queries, self.num_items])

  def counts_numpy(self, items, lower, upper):
    """NumPy twin of `counts`, by brute force over the events."""
    item = self._keys // self.span
    time = self._keys % self.span + self.t0
    out = np.zeros(np.shape(items), np.float32)
    for row, (a, b) in enumerate(zip(lower, upper)):
      inside = (time > a) & (time <= b)
      out[row] = np.bincount(item[inside], minlength=self.num_items)[np.asarray(items[row])]
    return out

  def age(self, items, now):
    """(age [B, C] int64 seconds since the item's first time, available [B, C] bool)."""
    first = tf.gather(self.first_seen, tf.cast(items, tf.int64))
    never = first == NEVER
    age = now[:, None] - tf.where(never, tf.constant(0, tf.int64), first)
    return age, tf.logical_and(age >= 0, tf.logical_not(never))


def _prefix_tables(item: np.ndarray, t: np.ndarray, num_items: int, every: int
                   ) -> Dict[str, np.ndarray]:
  """Events by time, and [E // C + 1, I] counts of each item among the first k C of them.

  Returns:
    {"times_sorted": [E] int64, "items_by_time": [E + 1] int32 (one padding entry, so the
    fewer-than-C events after a row are a fixed-width gather), "prefix_counts": [E // C + 1, I]
    int32}.
  """
  num_events = len(t)
  order = np.argsort(t, kind="stable")
  block = np.arange(num_events) // every
  rows = num_events // every + 1
  table = np.zeros([rows, num_items], np.int32)
  full = block < rows - 1  # Events of the last, partial block are never a whole row.
  np.add.at(table, (block[full] + 1, item[order][full]), 1)
  return {"times_sorted": t[order], "items_by_time": np.append(item[order], 0).astype(np.int32),
          "prefix_counts": np.cumsum(table, axis=0, dtype=np.int32)}


class _ItemEventIndex(base.CandidateSource):
  """A source over an `EventIndex` of its fit events."""

  def _fit(self, events: base.Events, item_data: Dict[str, np.ndarray]) -> None:
    self.index = EventIndex(events.item, events.timestamp, num_items=events.num_items,
                            available_time=item_data.get(AVAILABLE_TIME),
                            checkpoint_every=CHECKPOINT_EVERY)

  def _get_state(self):
    return self.index.get_state()

  def _set_state(self, arrays, state):
    """The arrays and values of `EventIndex.get_state`."""
    self.index = EventIndex.from_state(arrays, state)

  def _counts(self, lowers, upper):
    """n_i(lower, upper] for each of `lowers` ([B] int64, None: the beginning) -> a list of
    [B, I] float32."""
    return self.index.counts_many_all(lowers, upper)

  def _counts_numpy(self, lower, upper):
    items = np.broadcast_to(np.arange(self._num_items), (len(upper), self._num_items))
    return self.index.counts_numpy(items, lower, upper)


class Trending(_ItemEventIndex):
  """Items most interacted with in windows ending at `now` (see the module docstring).

  >>> day = 86_400
  >>> src = Trending(windows_days=[1.0], popularity_weight=0.0).fit(
  ...     [0, 1, 2], [0, 1, 1], [0, 5 * day, 5 * day], num_items=2)
  >>> src.score_numpy([[-1]], [[0]], [5 * day]).tolist()
  [[0.0, 2.0]]

  Init args:
    windows_days: window lengths in days (each > 0).
    popularity_weight: weight of the count of every event so far (>= 0).
    name: the module name.
  """

  def __init__(self, *, windows_days: Sequence[float] = (7.0, 30.0, 365.0),
               popularity_weight: float = 0.1, name: str = "trending"):
    super().__init__(name=name)
    windows = [float(w) for w in windows_days]
    if not windows or any(not w > 0 for w in windows):
      raise ValueError(f"windows_days must be a non-empty list of days > 0, got {windows_days}")
    if not popularity_weight >= 0:
      raise ValueError(f"popularity_weight must be >= 0, got {popularity_weight}")
    self.windows_days = tuple(windows)
    self.popularity_weight = float(popularity_weight)

  def get_config(self) -> Dict[str, Any]:
    return {"windows_days": list(self.windows_days),
            "popularity_weight": self.popularity_weight, "name": self.name}

  def _scores(self, history, history_time, now):
    del history, history_time  # The same for every user.
    counts = self._counts([None] + [now - int(round(w * SECONDS_PER_DAY))
                                    for w in self.windows_days], now)
    out = self.popularity_weight * counts[0]
    for w, count in zip(self.windows_days, counts[1:]):
      out += count / w
    return out

  def _score_numpy(self, history, history_time, now):
    out = self.popularity_weight * self._counts_numpy(np.full(len(now), BEGINNING),
                                                      now)
    for w in self.windows_days:
      out += self._counts_numpy(now - int(round(w * SECONDS_PER_DAY)), now) / w
    return out


class Fresh(_ItemEventIndex):
  """Items first seen recently, by their interactions so far (see the module docstring).

  Reads ``item_data["available_time"]`` ([I] int64 epoch seconds, NO_TIME where unknown) when
  given: an item is available from the earlier of that time and its first event.

  Init args:
    half_life_days: half-life of an item's freshness, in days (> 0).
    name: the module name.
  """

  def __init__(self, *, half_life_days: float = 30.0, name: str = "fresh"):
    super().__init__(name=name)
    if not half_life_days > 0:
      raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
    self.half_life_days = float(half_life_days)

  def get_config(self) -> Dict[str, Any]:
    return {"half_life_days": self.half_life_days, "name": self.name}

  def _scores(self, history, history_time, now):
    del history, history_time  # The same for every user.
    counts = self._counts([None], now)[0]
    items = tf.broadcast_to(tf.range(self._num_items, dtype=tf.int64)[None, :], tf.shape(counts))
    age, available = self.index.age(items, now)
    days = tf.cast(tf.cast(tf.maximum(age, 0), tf.float64) / SECONDS_PER_DAY, tf.float32)
    fresh = (1.0 + counts) * tf.pow(0.5, days / self.half_life_days)
    return tf.where(available, fresh, 0.0)

  def _score_numpy(self, history, history_time, now):
    counts = self._counts_numpy(np.full(len(now), BEGINNING), now)
    first = self.index._first  # pylint: disable=protected-access
    never = first == NEVER
    age = now[:, None] - np.where(never, 0, first)[None, :]
    fresh = (1.0 + counts) * np.power(0.5, np.maximum(age, 0) / SECONDS_PER_DAY
                                      / self.half_life_days)
    return np.where((age >= 0) & ~never[None, :], fresh, 0.0)

