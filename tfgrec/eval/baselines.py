"""Classic baselines, scored by the same full-ranking harness as the model.

* Popularity: items ranked by the number of training users.
* EASE (Steck, 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): a closed-form
  item-item model, B = I - P / diag(P) with P = (X^T X + lambda I)^-1 and diag(B) = 0; a user's
  scores are their history row times B. A strong classic bar on MovieLens-size catalogs.
* EASE with recency: the same B, but the history row weights each item by how recently the user
  interacted with it, 0.5 ** (rank from the latest / half_life). On temporally split data what a
  user did last says most about what comes next.
* Weighted ALS (Hu, Koren, Volinsky, 2008, "Collaborative Filtering for Implicit Feedback
  Datasets"): user and item factors fitted to the interaction matrix with confidence
  1 + alpha * x, by the `implicit` package (the `bench` extra).
* Text only: cosine between an item's text embedding and the recency-weighted mean of the text
  embeddings of the user's history; no graph and no training, what the text says on its own.
"""
import dataclasses
import os
from typing import Optional

import numpy as np
import pandas as pd

from tfgrec import storage
from tfgrec.graph import recency
from tfgrec.eval import metrics


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
  everything up to now). Models are fit on training events only; user-side models that can take
  a history (EASE, text only, the model's history readout, ALS by folding in) use the known
  history of the split they predict.
  """
  num_users: int
  num_items: int
  train: metrics.Interactions
  validation: metrics.Interactions
  test: metrics.Interactions
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

  def history_events(self, split: str = "test") -> pd.DataFrame:
    """DataFrame[user, item, timestamp]: the events known when predicting `split`."""
    if split == "validation" or self.validation_events is None:
      return self.train_events
    if split != "test":
      raise ValueError(f"split must be 'validation' or 'test', got {split!r}")
    return pd.concat([self.train_events, self.validation_events], ignore_index=True)


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
  csr = {s: metrics.Interactions.from_pairs(f["user"].to_numpy(), f["item"].to_numpy(),
                                            len(users)) for s, f in out.items()}
  popularity = np.bincount(csr["train"].indices, minlength=len(items))
  return EvalData(len(users), len(items), csr["train"], csr["validation"], csr["test"],
                  out["train"], popularity, out["validation"], out["test"])


def popularity_scorer(data: EvalData):
  pop = data.popularity.astype(np.float32)
  return lambda users: np.broadcast_to(pop, (len(users), len(pop)))


def ease_weights(train: metrics.Interactions, num_items: int, l2: float = 200.0) -> np.ndarray:
  """[num_items, num_items] float32 EASE item-item weights with a zero diagonal.

  Only items with a training interaction take part in the inverse (the others would have zero
  rows and columns anyway), which keeps the cubic cost to the active catalog.
  """
  active = np.flatnonzero(np.bincount(train.indices, minlength=num_items) > 0)
  position = np.full(num_items, -1, np.int64)
  position[active] = np.arange(len(active))
  x = np.zeros([train.num_users, len(active)], np.float32)
  x[np.repeat(np.arange(train.num_users), train.sizes()), position[train.indices]] = 1.0
  gram = x.T @ x
  gram[np.diag_indices(len(active))] += l2
  p = np.linalg.inv(gram)
  b_active = -p / np.diag(p)[None, :]
  b_active[np.diag_indices(len(active))] = 0.0
  b = np.zeros([num_items, num_items], np.float32)
  b[np.ix_(active, active)] = b_active
  return b


def history_weights(data: EvalData, half_life: Optional[float], split: str = "test"
                    ) -> metrics.Interactions:
  """Each user's known history (see EvalData) when predicting `split`, with weight 1, or
  0.5 ** (rank from latest / half_life)."""
  events = data.history_events(split).sort_values(["user", "timestamp", "item"])
  events = events.drop_duplicates(["user", "item"], keep="last")
  if half_life:  # Ties in time (and events without one) share a rank, as in the graph.
    weight = recency.recency_weights(events["user"].to_numpy(), events["timestamp"].to_numpy(),
                                     half_life)
  else:
    weight = np.ones(len(events), np.float32)
  order = np.lexsort((events["item"].to_numpy(), events["user"].to_numpy()))
  counts = np.bincount(events["user"].to_numpy(), minlength=data.num_users)
  return metrics.Interactions(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                              events["item"].to_numpy()[order].astype(np.int64),
                              weight[order])


def ease_scorer(data: EvalData, l2: float = 200.0, half_life: Optional[float] = None,
                split: str = "test"):
  """Scores users with EASE fit on training events; the history rows are the users' known
  history for `split`, weighted by recency with half_life."""
  b = ease_weights(data.train, data.num_items, l2)
  history = history_weights(data, half_life, split)
  return lambda users: history.dense(users, data.num_items, weighted=True) @ b


def als_scorer(data: EvalData, *, factors: int = 64, regularization: float = 0.05,
               alpha: float = 10.0, iterations: int = 15, seed: int = 0,
               half_life: Optional[float] = None, split: str = "test"):
  """Scores users with weighted ALS (Hu, Koren, Volinsky 2008) from the `implicit` package.

  The user x item training matrix X holds 1 per interaction, or the recency weight with
  half_life (see `history_weights`); the confidence is C = 1 + alpha * X on the interactions and
  1 elsewhere. A user's scores are their factors times every item's factors; users and items
  without training interactions get zero factors. The model is fit on training events; for the
  test split each user's factors are then solved again from their known history (training and
  validation events) with the item factors fixed ("folding in").

  Args:
    data: evaluation data.
    factors: latent dimensions.
    regularization: L2 weight on the factors.
    alpha: confidence gained per unit of interaction.
    iterations: alternating sweeps.
    seed: seed of the initial factors.
    half_life: recency half-life in events for X; None gives every interaction 1.
    split: the split scored ('validation' or 'test'; see EvalData).

  Returns:
    user indices [B] -> scores [B, num_items] float32.

  Raises:
    ImportError: `implicit` is not installed.
  """
  try:  # implicit brings scipy and threadpoolctl.
    from implicit.cpu import als  # pylint: disable=g-import-not-at-top
    import scipy.sparse  # pylint: disable=g-import-not-at-top
    import threadpoolctl  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "the ALS baseline needs the 'implicit' package: pip install 'tfgrec[bench]'") from e

  def confidence(split):
    history = history_weights(data, half_life, split)
    return scipy.sparse.csr_matrix(
        (1.0 + alpha * history.weights.astype(np.float32), history.indices, history.indptr),
        shape=(data.num_users, data.num_items), dtype=np.float32)

  # implicit reads the stored values as the confidence itself (its own alpha only rescales
  # them), and warns when BLAS runs its own threadpool under its threads: one BLAS thread here.
  with threadpoolctl.threadpool_limits(1, "blas"):
    model = als.AlternatingLeastSquares(factors=factors, regularization=regularization,
                                        alpha=1.0, iterations=iterations, random_state=seed)
    model.fit(confidence("validation"), show_progress=False)
    users_f = np.asarray(model.user_factors, np.float32)
    if split != "validation":
      users_f = np.asarray(model.recalculate_user(np.arange(data.num_users), confidence(split)),
                           np.float32)
  items_f = np.asarray(model.item_factors, np.float32)
  return lambda users: users_f[np.asarray(users)] @ items_f.T


def text_only_scorer(data: EvalData, item_text: np.ndarray, *,
                     half_life: Optional[float] = 20.0, split: str = "test"):
  """Scores users by text alone: no graph, no training.

  An item is its L2-normalized text embedding; a user is the (recency-weighted, see
  `history_weights`) mean of their training items' normalized embeddings; the score is the
  cosine between the two. Users without training items score 0 everywhere.

  Args:
    data: evaluation data.
    item_text: [num_items, D] text embeddings in item index order.
    half_life: recency half-life in events; None weighs the whole history equally.

  Returns:
    user indices [B] -> scores [B, num_items] float32.
  """
  item_text = np.asarray(item_text, np.float32)
  if item_text.ndim != 2 or item_text.shape[0] != data.num_items:
    raise ValueError(f"item_text must be [num_items={data.num_items}, D], got "
                     f"{item_text.shape}")
  norms = np.linalg.norm(item_text, axis=1, keepdims=True)
  items = item_text / np.maximum(norms, 1e-12)
  history = history_weights(data, half_life, split)
  user_of = np.repeat(np.arange(data.num_users), history.sizes())
  users = np.zeros([data.num_users, items.shape[1]], np.float32)
  np.add.at(users, user_of, history.weights[:, None] * items[history.indices])
  norms = np.linalg.norm(users, axis=1, keepdims=True)
  users = users / np.maximum(norms, 1e-12)  # Cosine: the mean's scale does not matter.
  return lambda batch: users[np.asarray(batch)] @ items.T
