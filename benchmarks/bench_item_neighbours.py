"""Benchmark: the EASE and graph-filter sources dense against top-M neighbours
(`ranking.item_neighbours`): test NDCG@20 and Recall@100 alone, and one request's scores.

  .venv/bin/python benchmarks/bench_item_neighbours.py --graph out/graph     # after `make demo`

Each source is fit on training + validation events and ranks the whole catalog for the test
users (known items excluded, tfgrec/eval/metrics.py); the latency is the mean of 20 calls of its
`scores` (one user, batch 1, traced once first), in process.

Current figures: BENCHMARKS.md, *Item–item neighbours*.
"""
import argparse
import time

import numpy as np

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec.data import splits
from tfgrec.eval import metrics
from tfgrec.sources import base, graph_filter


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--graph", default="out/graph")
  parser.add_argument("--neighbours", default="200,500", help="comma-separated M values")
  args = parser.parse_args()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  data = splits.load_eval_data(args.graph)
  e = data.known_events("test")
  hist = base.UserHistories(e["user"], e["item"], e["timestamp"], num_users=data.num_users)
  now = np.maximum(data.first_times("test"), hist.latest)
  ms = [int(m) for m in args.neighbours.split(",") if m]
  makers = [("EASE, dense", graph_filter.Ease)]
  makers += [(f"EASE, M = {m}", lambda m=m: graph_filter.Ease(neighbours=m)) for m in ms]
  makers += [("graph filter, dense", lambda: graph_filter.GraphFilter(dense_max_items=1 << 40))]
  makers += [(f"graph filter, M = {m}",
              lambda m=m: graph_filter.GraphFilter(dense_max_items=0, neighbours=m)) for m in ms]
  print("| source | NDCG@20 | Recall@100 | fit s | one request's scores ms |\n"
        "|---|---:|---:|---:|---:|")
  history, history_time = hist.batch(np.arange(1))
  wide = min(100, data.num_items)
  for name, make in makers:
    start = time.time()
    source = make().fit(e["user"], e["item"], e["timestamp"], num_items=data.num_items)
    fit_s = time.time() - start
    r = metrics.evaluate(base.user_scorer(source, hist, now, use_tf=True), data.test,
                         [data.train, data.validation], num_items=data.num_items,
                         ks=(min(20, data.num_items), wide), user_batch=128)
    call = tf.function(source.scores)
    inputs = (tf.constant(history), tf.constant(history_time), tf.constant(now[:1]))
    call(*inputs)
    start = time.time()
    for _ in range(20):
      call(*inputs)
    ms_call = (time.time() - start) / 20 * 1000
    print(f"| {name} | {r[f'ndcg@{min(20, data.num_items)}']:.4f} | {r[f'recall@{wide}']:.4f} | {fit_s:.1f} | "
          f"{ms_call:.1f} |", flush=True)


if __name__ == "__main__":
  main()
