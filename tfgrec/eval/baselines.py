"""Classic baselines, scored by the same full-ranking harness as the model.

* Popularity: items ranked by the number of training users.
* EASE (Steck, 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): a closed-form
  item-item model, B = I - P / diag(P) with P = (X^T X + lambda I)^-1 and diag(B) = 0; a user's
  scores are their history row times B. A strong classic bar on MovieLens-size catalogs. B is
  the EASE source's (`tfgrec.sources.graph_filter.ease_weights`).
* EASE with recency: the same B, but the history row weights each item by how recently the user
  interacted with it, 0.5 ** (rank from the latest / half_life). On temporally split data what a
  user did last says most about what comes next.
* Weighted ALS (Hu, Koren, Volinsky, 2008, "Collaborative Filtering for Implicit Feedback
  Datasets"): user and item factors fitted to the interaction matrix with confidence
  1 + alpha * x, by the `implicit` package (the `bench` extra).
* Text only: cosine between an item's text embedding and the recency-weighted mean of the text
  embeddings of the user's history; no graph and no training, what the text says on its own.
"""
from typing import Optional

import numpy as np

from tfgrec.data import histories
from tfgrec.data import splits
from tfgrec.graph import recency
from tfgrec.sources import graph_filter


def popularity_scorer(data: splits.EvalData):
  pop = data.popularity.astype(np.float32)
  return lambda users: np.broadcast_to(pop, (len(users), len(pop)))


def ease_weights(train: histories.Interactions, num_items: int, l2: float = 200.0) -> np.ndarray:
  """[num_items, num_items] float32 EASE weights of a split's interactions, zero diagonal: the
  maths of the EASE source, `tfgrec.sources.graph_filter.ease_weights`, on its (user, item)
  pairs."""
  return graph_filter.ease_weights(np.repeat(np.arange(train.num_users), train.sizes()),
                                   train.indices, num_items=num_items, l2=l2)


def history_weights(data: splits.EvalData, half_life: Optional[float], split: str = "test"
                    ) -> histories.Interactions:
  """Each user's known history (`EvalData.known_events(split)`), an item once at its latest
  event, with weight 1, or 0.5 ** (rank from latest / half_life); each user's items in
  increasing order."""
  events = data.known_events(split)
  _, latest = histories.user_csr(events["user"], num_users=data.num_users,
                                 by=(-events["timestamp"],), item=events["item"])
  user, item, stamp = (events[k][latest] for k in ("user", "item", "timestamp"))
  if half_life:  # Ties in time (and events without one) share a rank, as in the graph.
    weight = recency.recency_weights(user, stamp, half_life)
  else:
    weight = np.ones(len(user), np.float32)
  indptr, order = histories.user_csr(user, num_users=data.num_users, by=(item,))
  return histories.Interactions(indptr, item[order], weight[order])


def ease_scorer(data: splits.EvalData, l2: float = 200.0, half_life: Optional[float] = None,
                split: str = "test"):
  """Scores users with EASE fit on training events; the history rows are the users' known
  history for `split`, weighted by recency with half_life."""
  b = ease_weights(data.train, data.num_items, l2)
  history = history_weights(data, half_life, split)
  return lambda users: history.dense(users, data.num_items, weighted=True) @ b


def als_scorer(data: splits.EvalData, *, factors: int = 64, regularization: float = 0.05,
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


def text_only_scorer(data: splits.EvalData, item_text: np.ndarray, *,
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
