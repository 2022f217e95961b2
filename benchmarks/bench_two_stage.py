"""Benchmark: the two stages (sources → DCN-v2 listwise rankers) against each source alone,
EASE + recency and drop-one ablations, without the graph tower (its source is left out).

  .venv/bin/python benchmarks/bench_two_stage.py --graph out/graph     # after `make demo`

It runs the library's own path, `tfgrec.train.two_stage.train` then `two_stage.evaluate` (the protocol
of tfgrec/ranking/README.md): the sources are fit on training events; the rankers on validation
lists (history = training events, now = the user's first validation event); the closed-form
and event sources are refit on training + validation events (the sequence source keeps its
training fit and reads the longer histories), and the kept rankers order the test lists (now =
the user's first test event). Metrics: full ranking over the catalog, known items excluded
(tfgrec/eval/metrics.py). The rankers' training lists stay in `<run-dir>/ranker/`.
"""
import argparse
import dataclasses
import json
import tempfile
import time

import numpy as np

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec import config as config_lib
from tfgrec.eval import baselines, metrics
from tfgrec.train import inputs as inputs_lib
from tfgrec.train import two_stage

KS = (20, 50, 100, 200)
SOURCES = tuple(f.name for f in dataclasses.fields(config_lib.CandidatesConfig))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--graph", default="out/graph")
  parser.add_argument("--text-cache", default=None, help="text embedding cache folder")
  parser.add_argument("--run-dir", default=None, help="where the rankers go (default: a temp dir)")
  parser.add_argument("--sources", default="ease,graph_filter,sequence,text,trending,fresh",
                      help=f"comma-separated, of {', '.join(SOURCES)} (graph_tower needs a "
                      "trained tower: use `tfgrec train` for it)")
  parser.add_argument("--ablations", action="store_true", help="drop-one ablations")
  parser.add_argument("--ensemble", type=int, default=None, help="rankers in the ensemble")
  parser.add_argument("--new-user-lists", type=float, default=None,
                      help="ranking.new_user_lists (default: the packaged default)")
  parser.add_argument("--json", default=None, help="write the results here")
  args = parser.parse_args()

  names = [s for s in args.sources.split(",") if s]
  unknown = sorted(set(names) - set(SOURCES) | ({"graph_tower"} & set(names)))
  if unknown:
    raise SystemExit(f"--sources: unknown or unavailable here {unknown}; known: "
                     f"{[s for s in SOURCES if s != 'graph_tower']}")
  defaults = config_lib.CandidatesConfig()
  ranking = {"candidates": {s: (getattr(defaults, s) if s in names else 0) for s in SOURCES},
             "ablations": bool(args.ablations)}
  if args.ensemble:
    ranking["ranker"] = {"ensemble": args.ensemble}
  if args.new_user_lists is not None:
    ranking["new_user_lists"] = args.new_user_lists
  run_dir = args.run_dir or tempfile.mkdtemp(prefix="bench_two_stage_")
  config = config_lib.config_from_dict({
      "graph_dir": args.graph, "run_dir": run_dir, "ranking": ranking,
      "text": {"cache_dir": args.text_cache}})
  inputs = inputs_lib.load_inputs(config)
  data = inputs.data
  exclude = [data.train, data.validation]
  ks = tuple(k for k in KS if k <= data.num_items) or (data.num_items,)

  def evaluate(score_fn):
    return metrics.evaluate(score_fn, data.test, exclude, num_items=data.num_items, ks=ks,
                            user_batch=128)

  start = time.time()
  info = two_stage.train(config, inputs, None)
  train_s = time.time() - start
  start = time.time()
  results, extra = two_stage.evaluate(config, inputs, None, measure=evaluate)
  evaluate_s = time.time() - start
  b = baselines.ease_weights(data.train, data.num_items, 200.0)
  history = baselines.history_weights(data, 20.0, "test")
  results["EASE + recency"] = evaluate(
      lambda users: history.dense(users, data.num_items, weighted=True) @ b)

  print()
  head = f"ndcg@{ks[0]}"
  print(f"{'model':<34} {head:>8} " + " ".join(f"{f'rec@{k}':>7}" for k in ks))
  for name, r in results.items():
    print(f"{name:<34} {r[head]:>8.4f} " + " ".join(f"{r[f'recall@{k}']:>7.4f}" for k in ks))
  print("\ncandidate recall on test: " + ", ".join(
      f"{k} {v:.4f}" for k, v in extra["candidate_recall"].items()))
  print(f"train (sources, lists, rankers) {train_s:.1f} s: " + ", ".join(
      f"{k} {v:.1f}" for k, v in info["seconds"].items()))
  print(f"evaluate (refit, test lists, each source, ablations) {evaluate_s:.1f} s")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"results": results, "candidate_recall": extra["candidate_recall"],
                 "permutation_importance": extra["permutation_importance"],
                 "seconds": {"train": train_s, "evaluate": evaluate_s, **info["seconds"]},
                 "holdout_ndcg": info["holdout_ndcg"]}, f, indent=1)


if __name__ == "__main__":
  np.set_printoptions(precision=4)
  main()
