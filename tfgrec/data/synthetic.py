"""Synthetic interaction logs with structure a good recommender can find.

* Items belong to taste clusters. A cluster has a theme (a small set of English words) and a main
  category; item titles are drawn from the theme's words and item categories are the cluster's
  main category plus, sometimes, a random other one. So text and categories carry the cluster.
* Popularity is a power law (Zipf) inside each cluster, and clusters differ in size.
* Each user has three favourite clusters and moves between them in phases over time (what a
  user did recently says more about their next event than what they did long ago); a share of
  events is noise drawn from global popularity.
* User activity is heavy-tailed; every user has at least ``min(5, interactions // users)``
  events. A share of the catalog (``cold_fraction``) never gets an interaction: cold items, with
  text and categories.
* Attributes that carry the cluster too (drawn from their own random stream, so the events are
  those of the same seed without them): each item has a ``brand`` (one of its cluster's three
  brands, or any brand for one item in five) and a ``price`` (log-normal around a price level
  of its cluster); each user has an ``age_group`` (the group of their first favourite cluster,
  or any group for three users in ten). The users table holds it.
* New releases (``release_fraction`` > 0; their own random stream too): that share of the
  catalog is released while the log runs, at times spread over its later part, and gets no event
  before its release; an event that drew an unreleased item draws again among the items of the
  same cluster already out. Users like what is new: a share of in-taste events
  (``FRESH_SHARE``) goes to a cluster item released in the last ``FRESH_DAYS`` days when there is
  one. Every item then has a ``released`` time (epoch seconds, a numeric attribute; the rest of
  the catalog came out in the two years before the log), so a run can read it as its release
  attribute (``ranking.release_attribute: released``). With ``end_days`` (a log read up to one
  date), the items released late are new at test time: they have test events and no training
  event, the cold slice that text and attributes have to carry.

Everything is a function of the seed.
"""
import dataclasses
from typing import Dict

import numpy as np
import pandas as pd

_THEMES = {
    "Space": "star galaxy orbit rocket planet comet nebula astronaut moon cosmos eclipse meteor",
    "Ocean": "sea tide coral whale harbor storm sailor island reef wave lighthouse pearl",
    "Crime": "detective murder alibi heist gangster witness verdict alley shadow motive jury cop",
    "Romance": "love kiss wedding heart letter summer promise bride waltz rose sweetheart vow",
    "War": "soldier battle front trench general siege medal bunker regiment victory ally raid",
    "Horror": "ghost curse haunting blood crypt witch demon grave scream nightmare zombie fog",
    "Comedy": "wedding mishap roommate prank vacation party neighbor blunder road trip chaos joke",
    "Western": "sheriff outlaw saloon frontier ranch gold canyon horse bandit desert train posse",
    "Fantasy": "dragon wizard kingdom sword quest elf castle prophecy spell throne knight realm",
    "Music": "song band guitar concert melody rhythm singer jazz stage tour piano chorus",
    "Sports": "champion coach team match stadium rookie league trophy boxing race goal season",
    "Family": "puppy grandma holiday school adventure treehouse cousin bicycle garden picnic toy",
    "Science": "laboratory experiment genius virus robot machine code formula quantum signal",
    "History": "empire king queen revolution pharaoh dynasty colony treaty crown rebellion",
    "Mystery": "secret clue manor disappearance riddle locket diary puzzle stranger key",
    "Nature": "forest river mountain wolf eagle wilderness glacier jungle valley bear trail",
    "Politics": "election senator scandal president campaign spy embassy minister protest",
    "Food": "chef kitchen recipe bakery feast restaurant spice dinner wine harvest cake",
    "Art": "painter gallery canvas sculptor poet museum portrait muse studio masterpiece",
    "Tech": "hacker startup network algorithm server virtual drone satellite digital chip",
    "Crime Drama": "prison parole inmate lawyer courtroom confession warden escape trial",
    "Travel": "journey passport train station voyage map city border caravan highway",
    "Animation": "toy bunny robot kitten mouse dinosaur penguin cartoon fairy balloon",
    "Documentary": "truth interview archive footage report investigation climate census",
}
_DAY = 86_400  # Seconds (tfgrec.sources.time_context has it too; this module stays TF-free).
_ADJECTIVES = ("Last Silent Broken Golden Hidden Lost Wild Dark Bright Final Little Great New "
               "Endless Secret Burning Frozen Crimson Quiet Distant").split()


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """Size and shape of a synthetic log.

  Attributes:
    users: number of users.
    items: number of catalog items.
    interactions: number of events.
    seed: random seed; the same config gives the same tables.
    clusters: taste clusters; 0 picks one from the catalog size.
    cold_fraction: share of catalog items that never get an interaction.
    noise: share of events drawn from global popularity instead of the user's taste.
    zipf: popularity exponent inside a cluster.
    start: epoch seconds of the earliest event.
    release_fraction: share of catalog items released during the log (0: the whole catalog is
      out before it starts, and the items table has no ``released`` column).
    end_days: 0: users start within the log's first 300 days, so their timelines are staggered;
      N > 0: a log read up to one date, where each user's last event falls in the log's last N
      days (the per-user time split then holds out every user's recent past, and the items
      released late are new at test time).
  """
  users: int = 1000
  items: int = 2000
  interactions: int = 50_000
  seed: int = 0
  clusters: int = 0
  cold_fraction: float = 0.05
  noise: float = 0.15
  zipf: float = 1.0
  start: int = 1_600_000_000
  release_fraction: float = 0.0
  end_days: int = 0

  def __post_init__(self):
    for name in ("users", "items", "interactions"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    if self.interactions < self.users:
      raise ValueError(f"interactions ({self.interactions}) must be >= users ({self.users}): "
                       "every user has at least one event")
    if not 0 <= self.cold_fraction < 1:
      raise ValueError(f"cold_fraction must be in [0, 1), got {self.cold_fraction}")
    if not 0 <= self.noise <= 1:
      raise ValueError(f"noise must be in [0, 1], got {self.noise}")
    if not 0 <= self.release_fraction < 1:
      raise ValueError(f"release_fraction must be in [0, 1), got {self.release_fraction}")
    if self.end_days < 0:
      raise ValueError(f"end_days must be >= 0, got {self.end_days}")

  @property
  def num_clusters(self) -> int:
    if self.clusters:
      return self.clusters
    return int(np.clip(round(0.75 * np.sqrt(self.items)), 4, 64))


def _themes(num_clusters: int):
  names = list(_THEMES)
  out = []
  for c in range(num_clusters):
    a = names[c % len(names)]
    if c < len(names):
      out.append((a, _THEMES[a].split()))
    else:  # More clusters than themes: pair two themes.
      b = names[(c // len(names) + c) % len(names)]
      out.append((f"{a}/{b}", _THEMES[a].split() + _THEMES[b].split()))
  return out


def generate(config: SyntheticConfig) -> Dict[str, pd.DataFrame]:
  """Returns contract tables {'interactions', 'items', 'users'} (see the module docstring)."""
  rng = np.random.default_rng(config.seed)
  n_users, n_items, n_events = config.users, config.items, config.interactions
  k = config.num_clusters
  themes = _themes(k)
  category_names = [name for name, _ in themes]

  # Items: cluster sizes vary (Dirichlet), popularity is Zipf inside the cluster.
  cluster_share = rng.dirichlet(np.full(k, 2.0))
  item_cluster = rng.choice(k, size=n_items, p=cluster_share)
  cold = rng.random(n_items) < config.cold_fraction
  popularity = np.zeros(n_items)
  for c in range(k):
    members = np.flatnonzero(item_cluster == c)
    ranks = rng.permutation(len(members)) + 1
    popularity[members] = 1.0 / ranks**config.zipf
  popularity[cold] = 0.0
  if popularity.sum() == 0:
    popularity[:] = 1.0
    cold[:] = False

  titles, categories = [], []
  for i in range(n_items):
    name, words = themes[item_cluster[i]]
    w = rng.choice(words, size=2, replace=False)
    title = f"{rng.choice(_ADJECTIVES)} {w[0].title()} of the {w[1].title()}"
    if rng.random() < 0.3:
      title += f" {rng.integers(2, 5)}"
    titles.append(title)
    cats = {name}
    if rng.random() < 0.3:
      cats.add(category_names[rng.integers(k)])
    categories.append(sorted(cats))

  # Users: heavy-tailed activity, at least `floor` events each.
  floor = int(min(5, n_events // n_users))
  activity = np.minimum(rng.pareto(1.5, size=n_users) + 1.0, 100.0)
  extra = rng.multinomial(n_events - floor * n_users, activity / activity.sum())
  per_user = extra + floor
  favourites = np.stack([rng.choice(k, size=3, replace=False, p=cluster_share)
                         for _ in range(n_users)])
  phase_len = rng.integers(5, 30, size=n_users)

  user_of = np.repeat(np.arange(n_users), per_user)
  starts = np.concatenate([[0], np.cumsum(per_user)[:-1]])
  position = np.arange(n_events) - np.repeat(starts, per_user)
  phase = position // phase_len[user_of]
  slot = (phase * 7 + user_of) % 3
  cluster = favourites[user_of, slot]
  noisy = rng.random(n_events) < config.noise

  item_of = np.empty(n_events, dtype=np.int64)
  for c in range(k):
    where = np.flatnonzero((cluster == c) & ~noisy)
    members = np.flatnonzero((item_cluster == c) & ~cold)
    if not len(members):
      noisy[where] = True
      continue
    p = popularity[members] / popularity[members].sum()
    item_of[where] = rng.choice(members, size=len(where), p=p)
  where = np.flatnonzero(noisy)
  item_of[where] = rng.choice(n_items, size=len(where), p=popularity / popularity.sum())

  # Time: each user starts within the first 300 days; gaps are exponential (mean ~1 day).
  user_start = config.start + rng.integers(0, 300 * _DAY, size=n_users)
  gaps = rng.exponential(float(_DAY), size=n_events).astype(np.int64) + 1
  gaps[starts] = 0
  total = np.cumsum(gaps)
  elapsed = total - np.repeat(total[starts], per_user)
  timestamp = user_start[user_of] + elapsed
  if config.end_days:
    # A log read up to one date: each user's last event falls in the log's last `end_days` days.
    span = elapsed[np.cumsum(per_user) - 1]
    end = config.start + int(span.max()) + config.end_days * _DAY
    user_end = end - np.random.default_rng([config.seed, 3]).integers(
        0, config.end_days * _DAY, size=n_users)
    timestamp = (user_end - span)[user_of] + elapsed
  released = None
  if config.release_fraction > 0:
    released = _releases(config, item_cluster, cold, popularity, cluster, noisy, timestamp,
                         item_of)

  liked = (favourites[user_of] == item_cluster[item_of][:, None]).any(axis=1)
  rating = np.clip(np.round((2.6 + 1.4 * liked + rng.normal(0, 0.8, n_events)) * 2) / 2, 0.5, 5)

  width = len(str(max(n_users, n_items)))
  interactions = pd.DataFrame({
      "user_id": np.char.add("u", np.char.zfill(user_of.astype(str), width)),
      "item_id": np.char.add("i", np.char.zfill(item_of.astype(str), width)),
      "timestamp": timestamp.astype(np.int64),
      "event": "rating",
      "value": rating,
  })
  brand, price, age_group = _attributes(config, item_cluster, favourites[:, 0])
  items = pd.DataFrame({
      "item_id": np.char.add("i", np.char.zfill(np.arange(n_items).astype(str), width)),
      "title": titles,
      "categories": categories,
      "brand": brand,
      "price": price,
  })
  if released is not None:
    items["released"] = released.astype(np.int64)
  users = pd.DataFrame({
      "user_id": np.char.add("u", np.char.zfill(np.arange(n_users).astype(str), width)),
      "age_group": age_group,
  })
  return {"interactions": interactions, "items": items, "users": users}


_AGE_GROUPS = ("18-24", "25-34", "35-49", "50+")
# New releases: the share of in-taste events that go to a cluster item released in the last
# FRESH_DAYS days, when the cluster has one; the part of the log's time span (event-time
# quantiles) over which releases are spread.
FRESH_SHARE = 0.1
FRESH_DAYS = 30
RELEASE_SPAN = (0.5, 1.0)


def _releases(config: SyntheticConfig, item_cluster: np.ndarray, cold: np.ndarray,
              popularity: np.ndarray, cluster: np.ndarray, noisy: np.ndarray,
              timestamp: np.ndarray, item_of: np.ndarray) -> np.ndarray:
  """[items] release times; moves events off unreleased items (in place in `item_of`) and
  sends FRESH_SHARE of in-taste events to fresh releases (module docstring)."""
  rng = np.random.default_rng([config.seed, 2])
  n_items = len(item_cluster)
  released = config.start - rng.integers(_DAY, 730 * _DAY, size=n_items)
  candidates = np.flatnonzero(~cold)
  late = rng.choice(candidates, size=int(round(config.release_fraction * len(candidates))),
                    replace=False)
  low, high = np.quantile(timestamp, RELEASE_SPAN)
  released[late] = rng.integers(int(low), int(high) + 1, size=len(late))
  members = {c: np.flatnonzero((item_cluster == c) & ~cold) for c in np.unique(item_cluster)}
  everyone = np.flatnonzero(~cold)

  def draw(pool, t):
    out = pool[released[pool] <= t]
    if not len(out):
      return None
    p = popularity[out]  # > 0: the pools hold no cold item.
    return out[rng.choice(len(out), p=p / p.sum())]

  for e in np.flatnonzero(released[item_of] > timestamp):
    pick = draw(everyone if noisy[e] else members.get(cluster[e], everyone), timestamp[e])
    # A cluster with nothing out yet: any item out (the catalog before the log always is).
    item_of[e] = pick if pick is not None else draw(everyone, timestamp[e])
  fresh = np.flatnonzero(~noisy & (rng.random(len(item_of)) < FRESH_SHARE))
  for e in fresh:
    pool = members.get(cluster[e], everyone)
    pool = pool[(released[pool] <= timestamp[e])
                & (released[pool] > timestamp[e] - FRESH_DAYS * _DAY)]
    if len(pool):
      item_of[e] = rng.choice(pool)
  return released


def _attributes(config: SyntheticConfig, item_cluster: np.ndarray, first_favourite: np.ndarray):
  """Item brands and prices and user age groups, tied to clusters (module docstring)."""
  rng = np.random.default_rng([config.seed, 1])
  k = config.num_clusters
  names = [name.replace(" ", "") for name, _ in _themes(k)]
  brand_index = item_cluster * 3 + rng.integers(0, 3, size=len(item_cluster))
  anywhere = rng.random(len(item_cluster)) < 0.2
  brand_index[anywhere] = rng.integers(0, 3 * k, size=int(anywhere.sum()))
  brand = np.array([f"{names[b // 3]}Co{b % 3 + 1}" for b in brand_index], dtype=object)
  level = rng.uniform(np.log(5.0), np.log(80.0), size=k)
  price = np.round(np.exp(level[item_cluster] + rng.normal(0.0, 0.25, len(item_cluster))), 2)
  group = first_favourite % len(_AGE_GROUPS)
  anyone = rng.random(len(first_favourite)) < 0.3
  group[anyone] = rng.integers(0, len(_AGE_GROUPS), size=int(anyone.sum()))
  return brand, price, np.array([_AGE_GROUPS[g] for g in group], dtype=object)


def item_clusters(config: SyntheticConfig) -> np.ndarray:
  """[items] taste cluster of each item (the ground truth, for tests and analyses)."""
  rng = np.random.default_rng(config.seed)
  share = rng.dirichlet(np.full(config.num_clusters, 2.0))
  return rng.choice(config.num_clusters, size=config.items, p=share)
