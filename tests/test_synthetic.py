"""Synthetic logs: deterministic, power-law popularity, planted taste clusters, cold items."""
import dataclasses

import numpy as np
import pytest

from tfgrec.data import prepare
from tfgrec.data import synthetic

CFG = synthetic.SyntheticConfig(users=300, items=600, interactions=15_000, seed=3)


@pytest.fixture(scope="module")
def tables():
  return synthetic.generate(CFG)


def test_sizes_and_determinism(tables):
  inter, items = tables["interactions"], tables["items"]
  assert len(inter) == CFG.interactions and len(items) == CFG.items
  assert inter["user_id"].nunique() == CFG.users
  again = synthetic.generate(CFG)
  assert again["interactions"].equals(inter) and again["items"].equals(items)
  other = synthetic.generate(synthetic.SyntheticConfig(users=300, items=600,
                                                       interactions=15_000, seed=4))
  assert not other["interactions"].equals(inter)


def test_popularity_is_heavy_tailed(tables):
  counts = tables["interactions"]["item_id"].value_counts().to_numpy()
  top = counts[: len(counts) // 10].sum() / counts.sum()
  assert top > 0.35  # The top 10% of items get well over 10% of the events.


def test_users_stay_within_their_taste_clusters(tables):
  clusters = synthetic.item_clusters(CFG)
  inter = tables["interactions"]
  item_cluster = clusters[inter["item_id"].str[1:].astype(int).to_numpy()]
  frame = inter.assign(cluster=item_cluster)
  share = (frame.groupby("user_id")["cluster"]
           .agg(lambda c: np.sort(np.bincount(c))[-3:].sum() / len(c)))
  # With 3 favourite clusters and 15% noise, a user's top-3 clusters hold most events; a user
  # drawing at random from ~8 clusters would have far less.
  assert share.median() > 0.75


def test_titles_and_categories_reflect_clusters(tables):
  clusters = synthetic.item_clusters(CFG)
  items = tables["items"]
  main = items["categories"].map(lambda c: c[0])
  # Items of one cluster share a category name.
  agree = items.assign(cluster=clusters).groupby("cluster")["categories"].agg(
      lambda cs: max(sum(name in c for c in cs) for name in {n for c in cs for n in c}) / len(cs))
  assert (agree == 1.0).all()
  assert main.nunique() > 1 and items["title"].str.len().min() > 5


def test_cold_items_have_no_interactions(tables):
  seen = set(tables["interactions"]["item_id"])
  cold = set(tables["items"]["item_id"]) - seen
  assert 0.02 * CFG.items < len(cold) < 0.15 * CFG.items


def test_timestamps_increase_per_user(tables):
  inter = tables["interactions"]
  assert inter.groupby("user_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()


def test_bad_config_is_refused():
  with pytest.raises(ValueError, match="interactions .* must be >= users"):
    synthetic.SyntheticConfig(users=10, items=5, interactions=3)


RELEASES = synthetic.SyntheticConfig(users=300, items=600, interactions=15_000, seed=3,
                                     release_fraction=0.2, end_days=7)


def test_releases_off_leave_the_log_as_it_was(tables):
  assert "released" not in tables["items"].columns
  # Releases draw from their own random stream: with end_days 0, the users' times are the
  # log's without releases, and only the events that drew an unreleased item changed item.
  staggered = synthetic.generate(dataclasses.replace(RELEASES, end_days=0))
  inter = staggered["interactions"]
  assert inter["timestamp"].equals(tables["interactions"]["timestamp"])
  assert inter["user_id"].equals(tables["interactions"]["user_id"])
  changed = (inter["item_id"] != tables["interactions"]["item_id"]).mean()
  assert 0.0 < changed < 0.25


def test_no_event_before_its_items_release():
  out = synthetic.generate(RELEASES)
  inter, items = out["interactions"], out["items"]
  released = items.set_index("item_id")["released"]
  assert (inter["timestamp"].to_numpy() >= released[inter["item_id"]].to_numpy()).all()
  # The rest of the catalog came out before the log: 20% of the items not cold are released
  # during it.
  during = (released >= RELEASES.start).sum()
  assert 0.15 * RELEASES.items < during <= 0.2 * RELEASES.items
  # Fresh releases are picked: some items get their events within FRESH_DAYS of release.
  first = inter.groupby("item_id")["timestamp"].min()
  late = released[released > inter["timestamp"].min()]
  soon = (first.reindex(late.index) - late) < synthetic.FRESH_DAYS * 86400
  assert soon.mean() > 0.5


def test_users_end_together_and_late_releases_are_new_at_test():
  out = synthetic.generate(RELEASES)
  inter = out["interactions"]
  assert inter.groupby("user_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()
  last = inter.groupby("user_id")["timestamp"].max()
  assert last.max() - last.min() < RELEASES.end_days * 86400
  split = prepare.temporal_split(inter.assign(event="rating"), prepare.SplitConfig())
  train_items = set(split.loc[split["split"] == "train", "item_id"])
  test = split[split["split"] == "test"]
  new_at_test = test[~test["item_id"].isin(train_items)]
  # Test events on items without a training event: the cold slice of an evaluation. The
  # staggered log of the same seed has almost none.
  assert new_at_test["user_id"].nunique() >= 15
  staggered = synthetic.generate(dataclasses.replace(RELEASES, release_fraction=0.0))
  split = prepare.temporal_split(staggered["interactions"].assign(event="rating"),
                                 prepare.SplitConfig())
  train_items = set(split.loc[split["split"] == "train", "item_id"])
  test = split[split["split"] == "test"]
  assert test["item_id"].isin(train_items).mean() > 0.99


def test_bad_release_config_is_refused():
  with pytest.raises(ValueError, match="release_fraction"):
    synthetic.SyntheticConfig(release_fraction=1.0)
  with pytest.raises(ValueError, match="end_days"):
    synthetic.SyntheticConfig(end_days=-1)
