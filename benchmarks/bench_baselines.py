"""Benchmark: classic baselines on a graph directory, full ranking over the catalog.

  .venv/bin/python benchmarks/bench_baselines.py --graph out/graph     # after `make demo`

Evaluates on the test split, excluding each user's train and validation items (models fit on
training events; histories include the validation events), and prints
Recall / NDCG / HR / MRR / coverage / novelty at 20, with fit and evaluation times. These rows
are the bar the model has to clear (BENCHMARKS.md, *Baselines*).
"""
import argparse
import time

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec.data import splits
from tfgrec.eval import baselines, metrics


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--graph", default="out/graph", help="graph directory (tfgrec build-graph)")
  parser.add_argument("--ease-l2", type=float, default=200.0)
  parser.add_argument("--half-life", type=float, default=20.0,
                      help="recency half-life in events for EASE + recency")
  args = parser.parse_args()
  data = splits.load_eval_data(args.graph)
  print(f"graph: {args.graph}: {data.num_users:,} users, {data.num_items:,} items, "
        f"{data.test.sizes().sum():,} test events")
  print(f"{'model':<24} {'recall@20':>9} {'ndcg@20':>8} {'hr@20':>7} {'mrr@20':>7} "
        f"{'cov@20':>7} {'nov@20':>7} {'fit s':>6} {'eval s':>6}")
  models = [
      ("popularity", lambda: baselines.popularity_scorer(data)),
      (f"EASE (l2={args.ease_l2:g})", lambda: baselines.ease_scorer(data, l2=args.ease_l2)),
      (f"EASE + recency (hl={args.half_life:g})",
       lambda: baselines.ease_scorer(data, l2=args.ease_l2, half_life=args.half_life)),
  ]
  for name, make in models:
    start = time.time()
    scorer = make()
    fit = time.time() - start
    start = time.time()
    r = metrics.evaluate(scorer, data.test, [data.train, data.validation],
                         num_items=data.num_items, ks=[20], train_popularity=data.popularity,
                         num_train_users=data.num_users)
    print(f"{name:<24} {r['recall@20']:>9.4f} {r['ndcg@20']:>8.4f} {r['hr@20']:>7.4f} "
          f"{r['mrr@20']:>7.4f} {r['coverage@20']:>7.3f} {r['novelty@20']:>7.2f} "
          f"{fit:>6.1f} {time.time() - start:>6.1f}", flush=True)


if __name__ == "__main__":
  main()
