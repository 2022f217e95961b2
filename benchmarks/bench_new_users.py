"""New users with attributes and no history: what their attributes are worth at serving time.

  python benchmarks/bench_new_users.py --graph G --export out/models/tfgrec/1 [--users 500]

Takes the users of graph G (built with a users table, e.g. `tfgrec data synthetic`) that have
test events, and asks the exported two-stage SavedModel for each as if it did not know them
(a fresh user id, no history), at the model's default reference time:
  * `recommend_at` without attributes (what a new user got before: the sources that read no
    history, trending and fresh, through the ranker),
  * `recommend_at` with the user's attributes (the graph tower places the user from them and
    its source proposes items near that state),
  * `encode_users`'s nearest items alone (the attribute state without the ranker),
  * training popularity, and popularity among the training users who share each of the user's
    attribute values (the summed counts: what the attributes say without a model).
Relevant items: the user's test events (their latest; `--relevant all`: every event, a new
user's whole profile). Prints NDCG@20 and recall@20 per row. The attribute states were
trained with these users in the graph (each value's state aggregates over many users), so this
is an upper bound for users never seen; the ranking of the rows is the point.

Current figures: BENCHMARKS.md, *New users*.
"""
import argparse

import numpy as np


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--graph", required=True, help="graph directory with user attributes")
  parser.add_argument("--export", required=True, help="a two-stage SavedModel version folder")
  parser.add_argument("--users", type=int, default=500, help="users sampled (seed 0)")
  parser.add_argument("--k", type=int, default=20)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--relevant", choices=("test", "all"), default="test",
                      help="which of the user's events count as relevant")
  args = parser.parse_args()
  from tfgrec import saved_models  # pylint: disable=g-import-not-at-top
  from tfgrec.data import splits  # pylint: disable=g-import-not-at-top
  from tfgrec.eval import baselines, metrics  # pylint: disable=g-import-not-at-top
  from tfgrec.graph import schema as gs  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs  # pylint: disable=g-import-not-at-top
  tf = saved_models.tf

  data = splits.load_eval_data(args.graph)
  graph = inputs.read_graph(args.graph)
  if gs.USER_HAS_ATTRIBUTE not in graph.edge_sets:
    raise SystemExit(f"{args.graph} has no user attributes: build it with a users table")
  adjacency = graph.edge_sets[gs.USER_HAS_ATTRIBUTE].adjacency
  names = np.asarray(inputs.read_vocab(args.graph, gs.USER_ATTRIBUTE)).astype(str)
  owners, values = adjacency.source.numpy(), adjacency.target.numpy()
  attributes = [[] for _ in range(data.num_users)]
  for user, value in zip(owners, values):
    attributes[user].append(names[value])
  model = saved_models.load(args.export)
  for name in ("recommend_at", "encode_users"):
    if name not in model.signatures:
      raise SystemExit(f"{args.export} has no {name} signature (a two-stage export of a graph "
                       "with user attributes has both)")
  item_ids = np.asarray(inputs.read_vocab(args.graph, gs.ITEM)).astype(str)
  position = {item: i for i, item in enumerate(item_ids)}
  events = (data.test_events if args.relevant == "test"
            else data.history_events(splits.SERVING))  # Every event.
  relevant = metrics.Interactions.from_pairs(events["user"].to_numpy(),
                                             events["item"].to_numpy(), data.num_users)
  # Training popularity per attribute value: [values, items].
  by_value = np.zeros([len(names), data.num_items], np.float32)
  train_user = data.train_events["user"].to_numpy()
  train_item = data.train_events["item"].to_numpy()
  for user, value in zip(owners, values):
    mine = train_item[train_user == user]
    np.add.at(by_value[value], mine, 1.0)
  value_of = {name: i for i, name in enumerate(names)}

  def group_popularity(batch):
    return np.stack([by_value[[value_of[a] for a in attributes[u]]].sum(0) for u in batch])
  candidates = np.unique(data.test_events["user"].to_numpy())
  rng = np.random.default_rng(0)
  users = np.sort(rng.choice(candidates, size=min(args.users, len(candidates)), replace=False))

  def as_scores(item_rows):
    scores = np.full([len(item_rows), data.num_items], -1e9, np.float32)
    for row, items in enumerate(item_rows):
      for rank, item in enumerate(items):
        if item in position:
          scores[row, position[item]] = len(items) - rank
    return scores

  def request(batch, with_attributes):
    width = max([len(attributes[u]) for u in batch] + [1])
    rows = [(attributes[u] if with_attributes else []) for u in batch]
    n = len(batch)
    return dict(user_id=tf.constant([f"new-user-{u}" for u in batch]),
                history=tf.constant([[""]] * n),
                history_time=tf.fill([n, 1], tf.constant(-1, tf.int64)),
                now=tf.fill([n], tf.constant(-1, tf.int64)),
                user_attributes=tf.constant([r + [""] * (width - len(r)) for r in rows]))

  def served(signature, **make):
    def score(batch):
      if signature == "encode_users":
        width = max([len(attributes[u]) for u in batch] + [1])
        out = model.signatures[signature](attributes=tf.constant(
            [attributes[u] + [""] * (width - len(attributes[u])) for u in batch]))
      else:
        out = model.signatures[signature](**request(batch, **make))
      return as_scores(out["item_ids"].numpy().astype(str).tolist())
    return score

  rows = {
      "two-stage, no attributes (before)": served("recommend_at", with_attributes=False),
      "two-stage + user attributes": served("recommend_at", with_attributes=True),
      "encode_users nearest items alone": served("encode_users"),
      "popularity": baselines.popularity_scorer(data),
      "popularity among users with the same attributes": group_popularity,
  }
  print(f"{len(users)} users as new (no history), relevant: {args.relevant} events; "
        f"K = {args.k}")
  print(f"{'row':40s} {'ndcg@' + str(args.k):>9s} {'recall@' + str(args.k):>10s}")
  for name, score_fn in rows.items():
    result = metrics.evaluate(score_fn, relevant, [], num_items=data.num_items, ks=[args.k],
                              users=users, user_batch=args.batch)
    print(f"{name:40s} {result[f'ndcg@{args.k}']:9.4f} {result[f'recall@{args.k}']:10.4f}",
          flush=True)


if __name__ == "__main__":
  main()
