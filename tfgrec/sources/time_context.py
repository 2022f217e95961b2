"""Time context: what is trending, and what is fresh, at the reference time.

Both sources ignore the user's history (every user of a batch with the same `now` gets the same
scores) and use only events at or before `now`, so a score computed for a past reference time
does not change when later events are added. Events are stored sorted by (item, time) as one
int64 key per event, key = item * S + (time - t0); the count of item i's events in (a, b] is
two binary searches (``tf.searchsorted``), O(B × I × log E) for a batch, no per-event work.

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
from typing import Dict, Sequence

import numpy as np

from tfgrec.sources import base

tf = base.tf

SECONDS_PER_DAY = 86_400
AVAILABLE_TIME = "available_time"
# first_i of an item never seen (and without available_time): after every `now`.
_NEVER = np.iinfo(np.int64).max
# A time before every event (and far enough from int64's limits to subtract from).
_BEGINNING = -(2 ** 62)


class _ItemEventIndex(base.CandidateSource):
  """Fit events as sorted (item, time) keys, and per-item window counts over them."""

  def _fit(self, events: base.Events, item_data: Dict[str, np.ndarray]) -> None:
    del item_data  # Subclasses read what they need.
    t = events.timestamp
    self.t0 = int(t.min()) - 1 if len(t) else base.NO_TIME - 1
    self.span = (int(t.max()) - self.t0 + 2) if len(t) else 2  # S: keys of item i in [iS, iS+S).
    if events.num_items * self.span >= 2 ** 62:
      raise ValueError(f"num_items x time span too large for int64 keys: {events.num_items} x "
                       f"{self.span} s")
    keys = np.sort(events.item * self.span + (t - self.t0))
    self._keys = keys
    self.keys = tf.Variable(keys, trainable=False, name="event_keys")

  def _bounds_key(self, time, span, t0):
    """time [B] int64 -> [B, I] int64 key of (item, time) for every item (clipped)."""
    rel = tf.clip_by_value(time - t0, 0, span - 1)
    items = tf.range(self._num_items, dtype=tf.int64)
    return items[None, :] * span + rel[:, None]

  def _counts(self, lower, upper):
    """n_i(lower, upper] for [B] int64 bounds -> [B, I] float32."""
    span, t0 = tf.constant(self.span, tf.int64), tf.constant(self.t0, tf.int64)
    hi = self._bounds_key(upper, span, t0)
    lo = self._bounds_key(lower, span, t0)
    sorted_keys = self.keys[None, :]

    def position(key):
      flat = tf.reshape(key, [1, -1])
      return tf.reshape(tf.searchsorted(sorted_keys, flat, side="right", out_type=tf.int64),
                        tf.shape(key))

    return tf.cast(position(hi) - position(lo), tf.float32)

  def _counts_numpy(self, lower, upper):
    """NumPy twin of `_counts`, by brute force over the events."""
    item = self._keys // self.span
    time = self._keys % self.span + self.t0
    out = np.zeros([len(upper), self._num_items], np.float32)
    for row, (a, b) in enumerate(zip(lower, upper)):
      inside = (time > a) & (time <= b)
      out[row] = np.bincount(item[inside], minlength=self._num_items)
    return out


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

  def _scores(self, history, history_time, now):
    del history, history_time  # The same for every user.
    out = self.popularity_weight * self._counts(tf.fill(tf.shape(now), _min_time()), now)
    for w in self.windows_days:
      out += self._counts(now - int(round(w * SECONDS_PER_DAY)), now) / w
    return out

  def _score_numpy(self, history, history_time, now):
    out = self.popularity_weight * self._counts_numpy(np.full(len(now), _BEGINNING),
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

  def _fit(self, events: base.Events, item_data: Dict[str, np.ndarray]) -> None:
    super()._fit(events, item_data)
    first = np.full(events.num_items, _NEVER, np.int64)
    np.minimum.at(first, events.item, events.timestamp)
    if AVAILABLE_TIME in item_data:
      available = np.asarray(item_data[AVAILABLE_TIME], np.int64).reshape(-1)
      known = available != base.NO_TIME
      first[known] = np.minimum(first[known], available[known])
    self._first = first
    self.first_seen = tf.Variable(first, trainable=False, name="first_seen")

  def _scores(self, history, history_time, now):
    del history, history_time  # The same for every user.
    counts = self._counts(tf.fill(tf.shape(now), _min_time()), now)
    never = self.first_seen == _NEVER
    age = now[:, None] - tf.where(never, tf.constant(0, tf.int64), self.first_seen)[None, :]
    days = tf.cast(tf.cast(tf.maximum(age, 0), tf.float64) / SECONDS_PER_DAY, tf.float32)
    fresh = (1.0 + counts) * tf.pow(0.5, days / self.half_life_days)
    available = tf.logical_and(age >= 0, tf.logical_not(never)[None, :])
    return tf.where(available, fresh, 0.0)

  def _score_numpy(self, history, history_time, now):
    counts = self._counts_numpy(np.full(len(now), _BEGINNING), now)
    never = self._first == _NEVER
    age = now[:, None] - np.where(never, 0, self._first)[None, :]
    fresh = (1.0 + counts) * np.power(0.5, np.maximum(age, 0) / SECONDS_PER_DAY
                                      / self.half_life_days)
    return np.where((age >= 0) & ~never[None, :], fresh, 0.0)


def _min_time():
  return tf.constant(_BEGINNING, tf.int64)
