"""The graph tower's user query at inference, picked on validation after training.

Training scores a pair with the query l2norm(user state) + readout_h(user), h =
tasks.user_history_half_life (tfgrec.models.recommender). The query a run predicts with has the
same parts, weighed again, and a popularity prior on the items:

  q_u = a * l2norm(user state) + readout_h(u)
  readout_h(u) = sum_j w_j e_j / sum_j w_j,  w_j = 0.5 ** (r_j / h)
  score(u, i) = l2norm(q_u) . l2norm(e_i) + bias_i
  bias_i = g * T * (log p_i - max_j log p_j),  p_i = (n_i + 1) / (N + I)

e_j the normalized state of the user's item j, r_j how many of the user's events are more recent
(0 for the latest); n_i the known events of item i (N in all, I items), T the retrieval
temperature. A temporal split asks for the user's next items, which resemble their last few more
than their whole past: the ID state summarizes every training event alike, and a half-life of 10
events averages further back than the next items reach. Training subtracts log p_i from its
in-batch logits (tasks.logq_strength; in-batch negatives are drawn by popularity), so the trained
cosine ranks an item by how much more the user likes it than the crowd does; the next item a user
picks also depends on how popular it is, which g gives back (g = 1: the whole log p_i of the
softmax over all items).

After the best epoch is restored, `tfgrec train` scores every (a, h) of
tasks.query_user_weights x tasks.query_half_lives on the validation split (the early-stopping
metric, NDCG@train.validation_k), starting from the training query (a = 1, h, g = 0), then every g
of tasks.query_popularity_weights with the best (a, h); a later candidate must beat the pick
strictly. Only validation events pick it: the test split is never read.

  query = fit_query(model, config, inputs)       # writes <run_dir>/query.json
  query = read_query(config)                     # the training query for older runs
  emb = embeddings(model, config, inputs, "test", query)   # {'user', 'item', 'item_bias'}

evaluate (the "full model" row), the export (known users' stored queries, the half-life of an
unknown user's readout, the items' prior) and embeddings.npz use it. A model without the readout
(user_history_half_life 0) keeps its training query, and picks only g.
"""
import dataclasses
import itertools
from typing import Dict, List, Optional

import numpy as np

from tfgrec import config as config_lib
from tfgrec import storage
from tfgrec.sources import base
from tfgrec.train import callbacks
from tfgrec.train import inputs as inputs_lib
from tfgrec.train import layout as layout_lib



@dataclasses.dataclass(frozen=True)
class Query:
  """score = l2norm(user_weight * l2norm(user state) + readout(half_life)) . item + the item's
  popularity prior with popularity_weight (module docstring).

  half_life 0: no readout (a model trained without it); popularity_weight 0: no prior."""
  user_weight: float
  half_life: float
  popularity_weight: float


def training_query(config: config_lib.RunConfig) -> Query:
  """The query the model trains with."""
  return Query(1.0, float(config.tasks.user_history_half_life), 0.0)


def read_query(config: config_lib.RunConfig) -> Query:
  """The run's picked query (query.json), or its training query when it has none."""
  saved = storage.read_json(layout_lib.RunLayout(config.run_dir).query, {})
  if not saved:
    return training_query(config)
  return Query(float(saved["user_weight"]), float(saved["half_life"]),
               float(saved.get("popularity_weight", 0.0)))


def embeddings(model, config: config_lib.RunConfig, inputs: inputs_lib.RunInputs, split: str,
               query: Query, states: Optional[Dict] = None) -> Dict[str, np.ndarray]:
  """{'user': [U, D], 'item': [I, D]} normalized embeddings predicting `split` with `query`,
  and 'item_bias' [I] when the query has a popularity prior (scores:
  callbacks.embedding_scorer).

  split: 'validation' (the training graph and history) or 'test' (plus the validation events,
  tfgrec.train.inputs.known_graph / known_history / known_events). states: the tower's states
  of that split's graph, when already computed.
  """
  history = None
  if query.half_life:
    history = inputs_lib.known_history(config, inputs, split, half_life=query.half_life)
  graph = None
  if states is None and split != "validation":
    graph = inputs_lib.known_graph(config, inputs, split)
  emb = model.embeddings(history=history, graph=graph, user_weight=query.user_weight,
                         states=states)
  if query.popularity_weight:
    emb["item_bias"] = base.popularity_prior(
        inputs_lib.known_events(inputs, split)["item"], inputs.data.num_items,
        query.popularity_weight, config.tasks.temperature)
  return emb


def fit_query(model, config: config_lib.RunConfig, inputs: inputs_lib.RunInputs,
              progress: bool = False) -> Query:
  """Picks the query on validation (module docstring), writes query.json, returns it."""
  start = training_query(config)
  k = config.train.validation_k
  tasks = config.tasks
  states = model.states()
  scored: Dict[Query, float] = {}  # Every candidate's validation NDCG@k, in the order scored.

  def best_of(grid: List[Query]) -> Query:
    for query in grid:
      if query not in scored:
        emb = embeddings(model, config, inputs, "validation", query, states=states)
        scored[query] = callbacks.validation_metrics(emb, inputs.data, k)[f"val_ndcg@{k}"]
    best = grid[0]
    for query in grid[1:]:  # A later candidate must beat the pick strictly.
      if scored[query] > scored[best]:
        best = query
    return best

  grid: List[Query] = [start]
  if start.half_life:  # Without the readout in the model there is nothing to weigh.
    grid += [Query(float(a), float(h), 0.0) for a, h in
             itertools.product(tasks.query_user_weights, tasks.query_half_lives)]
  best = best_of(grid)
  best = best_of([best] + [dataclasses.replace(best, popularity_weight=float(g))
                           for g in tasks.query_popularity_weights])
  best_score = scored[best]
  scores = list(scored.items())
  storage.write_json(layout_lib.RunLayout(config.run_dir).query, {
      **dataclasses.asdict(best), f"val_ndcg@{k}": best_score,
      f"training_query_val_ndcg@{k}": scores[0][1],
      "grid": [{**dataclasses.asdict(q), f"val_ndcg@{k}": s} for q, s in scores]})
  if progress:
    print(f"  query: user weight {best.user_weight:g}, history half-life {best.half_life:g}, "
          f"popularity weight {best.popularity_weight:g} (validation NDCG@{k} "
          f"{best_score:.4f}; training query {scores[0][1]:.4f})", flush=True)
  return best
