"""Benchmark: train the full model, then evaluate it against every baseline on the test split.

  .venv/bin/python benchmarks/bench_model.py --graph out/graph --run out/bench_run   # after make demo
  .venv/bin/python benchmarks/bench_model.py --config my.yaml --baselines popularity,als

Prints training figures (seconds per epoch, wall time to the best validation NDCG@20, peak
resident memory of the process) and the test table of `tfgrec evaluate` (all slices are in
<run>/metrics.json and <run>/report.md). The text embedding cache is cleared first unless
--keep-text-cache, so the time includes embedding the catalog with the frozen BERT.

Current figures: BENCHMARKS.md, *Two-stage model*.
"""
import argparse
import os
import resource
import shutil
import time

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec import config as config_lib
from tfgrec.eval import report
from tfgrec.train import evaluate, inputs as inputs_lib, trainer


def _peak_rss_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", default=None, help="run config (default: packaged defaults)")
  parser.add_argument("--graph", default="out/graph")
  parser.add_argument("--run", default="out/bench_run")
  parser.add_argument("--baselines", default=",".join(evaluate.BASELINES))
  parser.add_argument("--keep-text-cache", action="store_true")
  args = parser.parse_args()
  config = config_lib.load_config(args.config, {"graph_dir": args.graph, "run_dir": args.run})
  shutil.rmtree(config.run_dir, ignore_errors=True)
  if not args.keep_text_cache:
    shutil.rmtree(config.text.cache_dir or os.path.join(
        os.path.dirname(os.path.abspath(config.graph_dir)), "text_cache"), ignore_errors=True)
  start = time.time()
  inputs = inputs_lib.load_inputs(config)
  load_s = time.time() - start
  result = trainer.train(config, inputs=inputs)
  train_rss = _peak_rss_gb()
  epochs = result.history
  best = result.best["epoch"]
  to_best = load_s + sum(h["seconds"] for h in epochs[:best])
  per_epoch = sorted(h["seconds"] for h in epochs)[len(epochs) // 2]
  names = [n for n in args.baselines.split(",") if n]
  results = evaluate.evaluate_run(config, baselines=names, inputs=inputs)
  print("\n" + report.headline_table(results, k=20))
  print(f"\ninputs (graph, text embeddings): {load_s:.1f}s; epochs run {len(epochs)}, best "
        f"epoch {best}; median {per_epoch:.1f}s per epoch; wall time to the best validation "
        f"NDCG@20 {to_best:.0f}s (inputs included); whole training {result.seconds:.0f}s; "
        f"peak RSS after training {train_rss:.2f} GB, after evaluation {_peak_rss_gb():.2f} GB")
  full, cold = results[evaluate.FULL_MODEL]["all"]["ndcg@20"], {
      m: r["cold_items"]["ndcg@20"] for m, r in results.items()}
  best_base = max((r["all"]["ndcg@20"], m) for m, r in results.items()
                  if m != evaluate.FULL_MODEL)
  print(f"full model NDCG@20 {full:.4f} = {full / best_base[0]:.3f} x the best baseline "
        f"({best_base[1]}, {best_base[0]:.4f})")
  if "text only" in cold:
    print(f"cold-item NDCG@20: full model {cold[evaluate.FULL_MODEL]:.4f}, text only "
          f"{cold['text only']:.4f}")


if __name__ == "__main__":
  main()
