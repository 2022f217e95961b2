"""Synthetic logs: deterministic, power-law popularity, planted taste clusters, cold items."""
import numpy as np
import pytest

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
