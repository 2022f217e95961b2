"""Where a two-stage `recommend` spends its time: each stage-1 source's `scores` alone, then the
whole signature, in process, on known users with their stored histories.

  python benchmarks/bench_serving_parts.py --model out/models/tfgrec/1 --run out/run

Prints milliseconds per call at batch 1 and batch 32 (median of --repeats calls, each on another
batch of users drawn from the graph's training + validation events).

Current figures: BENCHMARKS.md, *Serving parts*.
"""
import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.

import argparse
import dataclasses
import os
import time

import numpy as np

from tfgrec import config as config_lib
from tfgrec.data import histories, splits


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--model", required=True, help="an exported version directory")
  parser.add_argument("--run", required=True, help="its run directory (config.yaml)")
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import

  config = config_lib.load_config(os.path.join(args.run, "config.yaml"))
  candidates = config.ranking.candidates
  names = [f.name for f in dataclasses.fields(candidates) if getattr(candidates, f.name)]
  model = tf.saved_model.load(args.model)
  sources = list(model.features.sources)
  if len(sources) != len(names):
    raise ValueError(f"the export has {len(sources)} sources, {args.run}'s config {names}")
  events = splits.load_eval_data(config.graph_dir).known_events("test")
  indptr, order = histories.user_csr(events["user"], num_users=int(events["user"].max()) + 1,
                                     by=(-events["timestamp"],))  # Most recent first.
  counts = np.diff(indptr)
  items, times = events["item"][order], events["timestamp"][order]
  user_ids = np.array(open(os.path.join(config.graph_dir, "vocab", "user.txt"),
                           encoding="utf-8").read().split(), dtype=object)
  rng = np.random.default_rng(args.seed)

  def batch(size):
    users = rng.integers(0, len(counts), size)
    width = max(int(counts[u]) for u in users)
    h = np.full([size, width], -1, np.int32)
    t = np.full([size, width], -1, np.int64)
    for row, u in enumerate(users):
      n = counts[u]
      h[row, :n], t[row, :n] = items[indptr[u]:indptr[u + 1]], times[indptr[u]:indptr[u + 1]]
    now = t.max(axis=1)
    return (tf.constant(h), tf.constant(t), tf.constant(now)), users

  def timed(call, inputs):
    call(*inputs[0])  # Warm up.
    seconds = []
    for x in inputs:
      start = time.perf_counter()
      call(*x)
      seconds.append(time.perf_counter() - start)
    return 1000 * float(np.median(seconds))

  print("| part | batch 1 ms | batch 32 ms |\n|---|---:|---:|")
  batches = {size: [batch(size) for _ in range(args.repeats)] for size in (1, 32)}
  for name, source in zip(names, sources):
    row = [timed(source.scores, [b for b, _ in batches[s]]) for s in (1, 32)]
    print(f"| {name} | {row[0]:.1f} | {row[1]:.1f} |")
  recommend = model.signatures["serving_default"]
  row = []
  for size in (1, 32):
    requests = [(tf.constant(user_ids[u]), tf.constant(np.full([len(u), 1], "", object)))
                for _, u in batches[size]]
    row.append(timed(lambda u, h: recommend(user_id=u, history=h), requests))
  print(f"| recommend (both stages) | {row[0]:.1f} | {row[1]:.1f} |")


if __name__ == "__main__":
  main()
