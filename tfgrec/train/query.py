"""The graph tower's user query at inference, picked on validation after training.

Training scores a pair with the query l2norm(user state) + readout_h(user), h =
tasks.user_history_half_life (tfgrec.models.recommender). The query a run predicts with has the
same parts, weighed again:

  q_u = a * l2norm(user state) + readout_h(u)
  readout_h(u) = sum_j w_j e_j / sum_j w_j,  w_j = 0.5 ** (r_j / h)

e_j the normalized state of the user's item j, r_j how many of the user's events are more recent
(0 for the latest). A temporal split asks for the user's next items, which resemble their last
few more than their whole past: the ID state summarizes every training event alike, and a half-life
of 10 events averages further back than the next items reach. After the best epoch is restored,
`tfgrec train` scores every (a, h) of tasks.query_user_weights x tasks.query_half_lives on the
validation split (the early-stopping metric, NDCG@train.validation_k), starting from the training
query, and keeps the best (a later pair must beat it strictly). Only validation events pick it:
the test split is never read.

  query = fit_query(model, config, inputs)       # writes <run_dir>/query.json
  query = read_query(config)                     # the training query for older runs
  emb = embeddings(model, config, inputs, "test", query)

evaluate (the "full model" row), the export (known users' stored queries, and the half-life of an
unknown user's readout) and embeddings.npz use it. A model without the readout
(user_history_half_life 0) keeps its training query.
"""
import dataclasses
import itertools
import os
from typing import Dict, List, Optional

import numpy as np

from tfgrec import config as config_lib
from tfgrec import storage
from tfgrec.train import callbacks
from tfgrec.train import inputs as inputs_lib

QUERY_FILE = "query.json"


@dataclasses.dataclass(frozen=True)
class Query:
  """q_u = user_weight * l2norm(user state) + readout with this half-life (module docstring).

  half_life 0: no readout (a model trained without it)."""
  user_weight: float
  half_life: float


def training_query(config: config_lib.RunConfig) -> Query:
  """The query the model trains with."""
  return Query(1.0, float(config.tasks.user_history_half_life))


def read_query(config: config_lib.RunConfig) -> Query:
  """The run's picked query (query.json), or its training query when it has none."""
  saved = storage.read_json(os.path.join(config.run_dir, QUERY_FILE), {})
  if not saved:
    return training_query(config)
  return Query(float(saved["user_weight"]), float(saved["half_life"]))


def embeddings(model, config: config_lib.RunConfig, inputs: inputs_lib.RunInputs, split: str,
               query: Query, states: Optional[Dict] = None) -> Dict[str, np.ndarray]:
  """{'user': [U, D], 'item': [I, D]} normalized embeddings predicting `split` with `query`.

  split: 'validation' (the training graph and history) or 'test' (plus the validation events,
  tfgrec.train.inputs.known_graph / known_history). states: the tower's states of that split's
  graph, when already computed.
  """
  history = None
  if query.half_life:
    history = inputs_lib.known_history(config, inputs, split, half_life=query.half_life)
  graph = None
  if states is None and split != "validation":
    graph = inputs_lib.known_graph(config, inputs, split)
  return model.embeddings(history=history, graph=graph, user_weight=query.user_weight,
                          states=states)


def fit_query(model, config: config_lib.RunConfig, inputs: inputs_lib.RunInputs,
              progress: bool = False) -> Query:
  """Picks the query on validation (module docstring), writes query.json, returns it."""
  start = training_query(config)
  k = config.train.validation_k
  tasks = config.tasks
  grid: List[Query] = [start]
  if start.half_life:  # Without the readout in the model there is nothing to weigh.
    grid += [Query(float(a), float(h)) for a, h in
             itertools.product(tasks.query_user_weights, tasks.query_half_lives)]
  states = model.states()
  scores = []
  for query in dict.fromkeys(grid):  # Distinct, in grid order.
    emb = embeddings(model, config, inputs, "validation", query, states=states)
    scores.append((query, callbacks.validation_metrics(emb, inputs.data, k)[f"val_ndcg@{k}"]))
  best, best_score = scores[0]
  for query, score in scores[1:]:
    if score > best_score:
      best, best_score = query, score
  storage.write_json(os.path.join(config.run_dir, QUERY_FILE), {
      **dataclasses.asdict(best), f"val_ndcg@{k}": best_score,
      f"training_query_val_ndcg@{k}": scores[0][1],
      "grid": [{**dataclasses.asdict(q), f"val_ndcg@{k}": s} for q, s in scores]})
  if progress:
    print(f"  query: user weight {best.user_weight:g}, history half-life {best.half_life:g} "
          f"(validation NDCG@{k} {best_score:.4f}; training query {scores[0][1]:.4f})",
          flush=True)
  return best
