"""Benchmark: the graph-tower source's query in the two-stage model, on one trained run.

  .venv/bin/python benchmarks/bench_tower_source.py --run out/run --out /tmp/tower_source

For each arm of `ranking.tower_query` (off: the history readout alone, half-life 5, no prior;
on: the run's picked query, tfgrec/train/query.py) it copies the run (the tower's checkpoints,
query.json; not its ranker) to <out>/tower_query_<arm>, then runs the library's own two stages
on the same trained tower: `tfgrec.train.two_stage.train` (sources fit on training events, rankers
on validation lists) and `run.evaluate` without ablations (sources refit, test lists), with the
run's config otherwise. Every other source is the same in both arms (the sequence source's fit
is seeded). Prints, per arm, test NDCG@20 of the two stages and of each source alone, the cold
slice, candidate recall and the seconds; writes <out>/tower_source.json.
"""
import argparse
import json
import os
import shutil
import time

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec import _entry
from tfgrec import config as config_lib
from tfgrec.eval import slices
from tfgrec.train import layout as layout_lib
from tfgrec.train import trainer
from tfgrec.train import two_stage as ranking_run


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--run", required=True, help="a trained run (`tfgrec train`)")
  parser.add_argument("--out", required=True, help="where the arms' runs go")
  parser.add_argument("--arms", default="false,true", help="ranking.tower_query values")
  args = parser.parse_args()
  _entry.quiet_start(verbose=False)
  _entry.configure_graph_optimizer()
  arms = [a.strip().lower() for a in args.arms.split(",") if a.strip()]
  if not arms or set(arms) - {"false", "true"}:
    raise SystemExit(f"--arms: comma-separated false / true, got {args.arms!r}")
  saved = layout_lib.RunLayout(args.run).config
  if not os.path.exists(saved):
    raise SystemExit(f"--run {args.run}: no config.yaml; train it first")
  model, inputs = trainer.load_trained(config_lib.load_config(saved))
  data = inputs.data
  out = {}
  for arm in arms:
    run_dir = os.path.join(args.out, f"tower_query_{arm}")
    if not os.path.exists(run_dir):
      shutil.copytree(args.run, run_dir, ignore=shutil.ignore_patterns(
          "ranker", "final", "manifest.json", "evaluation", "backup", "*.png"))
    config = config_lib.load_config(saved, {"run_dir": run_dir, "ranking": {
        "enabled": True, "tower_query": arm == "true", "ablations": False}})
    ev = config.evaluate

    def measure(scorer, ev=ev):
      return slices.evaluate_slices(scorer, data, split="test", ks=ev.ks,
                                    long_tail_head_share=ev.long_tail_head_share,
                                    short_history_max=ev.short_history)

    start = time.time()
    info = ranking_run.train(config, inputs, model, progress=False)
    train_s = time.time() - start
    start = time.time()
    results, figures = ranking_run.evaluate(config, inputs, model, measure=measure,
                                            reuse_key="bench_tower_source", progress=False)
    evaluate_s = time.time() - start
    out[arm] = {"ndcg@20": {k: v["all"]["ndcg@20"] for k, v in results.items()},
                "cold_items_ndcg@20": results["two-stage"]["cold_items"]["ndcg@20"],
                "candidate_recall": figures["candidate_recall"],
                # The boost evaluate added (priced for the test lists; ranking/README.md).
                "new_item_boost": figures["new_item_boost"]["boost"],
                "new_item_boost_training": info["new_item_boost"],
                "seconds": {"train": train_s, "evaluate": evaluate_s}}
    row = out[arm]
    print(f"\nranking.tower_query: {arm}  (train {train_s:.0f} s, evaluate {evaluate_s:.0f} s, "
          f"new-item boost {row['new_item_boost']:g})")
    for name, value in row["ndcg@20"].items():
      recall = row["candidate_recall"].get(name.replace("source: ", ""))
      print(f"  {name:<32} ndcg@20 {value:.4f}" + (
          f"   candidate recall {recall:.4f}" if recall is not None else ""))
    print(f"  {'two-stage, cold items':<32} ndcg@20 {row['cold_items_ndcg@20']:.4f}", flush=True)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "tower_source.json"), "w") as f:
    json.dump(out, f, indent=1)


if __name__ == "__main__":
  main()
