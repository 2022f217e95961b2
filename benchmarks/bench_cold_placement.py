"""Where a trained tower puts cold items, on a synthetic log with planted clusters.

  python benchmarks/bench_cold_placement.py --synthetic-seed 0 --graph G --run R1 --run R2 ...

A cold item (no training interaction) is placed by what the tower reads of it: its text, its
categories and, with attribute node sets, its attributes. For each run (a `tfgrec train` run
directory over graph G of `tfgrec data synthetic --seed S` with its default size), this prints
the share of each cold item's 10 nearest warm items (cosine of the saved item embeddings) that
belong to its planted cluster, the chance level (a random warm item's share) beside it, and
the same for warm items. Higher is a better placement.

Current figures: BENCHMARKS.md, *Cold-item placement*.
"""
import argparse
import os

import numpy as np


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--graph", required=True, help="graph directory of the synthetic log")
  parser.add_argument("--run", action="append", required=True, help="run directory (repeat)")
  parser.add_argument("--synthetic-seed", type=int, default=0)
  parser.add_argument("--users", type=int, default=1000)
  parser.add_argument("--items", type=int, default=2000)
  parser.add_argument("--interactions", type=int, default=50_000)
  parser.add_argument("--k", type=int, default=10)
  args = parser.parse_args()
  from tfgrec.data import splits, synthetic  # pylint: disable=g-import-not-at-top
  config = synthetic.SyntheticConfig(users=args.users, items=args.items,
                                     interactions=args.interactions, seed=args.synthetic_seed)
  planted = synthetic.item_clusters(config)
  data = splits.load_eval_data(args.graph)
  print(f"{'run':40s} {'cold items':>10s} {'cold share':>11s} {'warm share':>11s} "
        f"{'chance':>7s}")
  for run in args.run:
    saved = np.load(os.path.join(run, "embeddings.npz"))
    ids = saved["item_ids"].astype(str)
    cluster = planted[np.array([int(i[1:]) for i in ids])]
    warm = data.popularity > 0  # items with a training interaction
    items = saved["item"] / np.maximum(np.linalg.norm(saved["item"], axis=1, keepdims=True), 1e-9)
    warm_index = np.flatnonzero(warm)

    def share(rows):
      scores = items[rows] @ items[warm_index].T
      same_row = warm_index[None, :] == np.asarray(rows)[:, None]
      scores[same_row] = -np.inf
      top = np.argsort(-scores, axis=1)[:, :args.k]
      return float(np.mean(cluster[warm_index[top]] == cluster[np.asarray(rows)][:, None]))

    cold = np.flatnonzero(~warm)
    chance = float(np.mean([np.mean(cluster[warm_index] == c) for c in cluster[cold]]))
    print(f"{os.path.basename(run.rstrip('/')):40s} {len(cold):10d} {share(cold):11.3f} "
          f"{share(warm_index[:500]):11.3f} {chance:7.3f}")


if __name__ == "__main__":
  main()
