"""The graph tower alone, trained and evaluated once per variant: its drop-one ablations.

  python benchmarks/bench_tower_variants.py --config my.yaml --out /tmp/variants \
      --variant default --variant model.use_attributes=false \
      --variant experimental.model.branches=conv

Each variant (`default`, or comma-separated `section.key=value` overrides in YAML, as in
bench_tower_step.py) runs `tfgrec train` then `tfgrec evaluate --baselines ''` in fresh
processes, with the two-stage ranker off (`ranking.enabled: false`) so the figures are the
tower's own retrieval. The graph and the text cache are the config's (build them once, e.g. with
`tfgrec demo` or `tfgrec build-graph` + `tfgrec train`). Prints, per variant: epochs (best),
training seconds, validation NDCG@20 at the best epoch (the training query), the query picked on
validation (user weight / half-life / popularity weight, tfgrec.train.query) and its validation
NDCG@20, test NDCG@20 (with that query) of all users and of the cold-item slice; writes
<out>/variants.json.

With --two-stage the ranker stays on (its drop-one ablations off, `ranking.ablations: false`,
unless a variant turns them on) and each row adds the two-stage model's test NDCG@20 and its
cold-item slice: whole-run ablations, e.g. `--variant model.use_text=false,ranking.candidates.text=0,
ranking.drop_features=[text]` (no text anywhere). The median epoch's seconds come from the
run's history.json (the first epoch, which traces the step, left out).

With --report-run RUN the rows also go to RUN/tower_parts.json; RUN's next `tfgrec evaluate`
shows them in its report as the table of the tower's parts (tfgrec/eval/report.py).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import yaml

from bench_tower_step import overrides_of  # benchmarks/, beside this script

VARIANT_NAMES = {
    "default": "tower (defaults)",
    "experimental.model.branches=conv": "− attention",
    "experimental.model.branches=attention": "− convolution",
    "model.use_text=false": "− text",
    "tasks.alignment_weight=0": "− alignment",
    "model.use_attributes=false": "− attributes",
    "experimental.model.branches=conv,model.use_text=false,model.use_categories=false,"
    "model.use_attributes=false,tasks.alignment_weight=0,tasks.ranking_weight=0":
        "LightGCN-style (convolution only, IDs only, same retrieval loss)",
}


def merged(base: dict, overrides: dict) -> dict:
  """`base` with `overrides` merged in, nested sections key by key."""
  out = dict(base)
  for key, value in overrides.items():
    out[key] = (merged(out.get(key) or {}, value) if isinstance(value, dict) else value)
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="run config with graph_dir (and text)")
  parser.add_argument("--out", required=True, help="directory for the variants' run dirs")
  parser.add_argument("--variant", action="append", default=None,
                      help="'default' or section.key=value[,...] (repeatable; default: the "
                      "drop-one set and the LightGCN-style tower)")
  parser.add_argument("--two-stage", action="store_true",
                      help="keep the ranker on and report the two-stage model too")
  parser.add_argument("--report-run", default=None, metavar="RUN",
                      help="also write the rows to RUN/tower_parts.json for RUN's report")
  args = parser.parse_args()
  with open(args.config) as f:
    base = yaml.safe_load(f) or {}
  base = merged(base, {"ranking": {"ablations": False} if args.two_stage else {"enabled": False}})
  os.makedirs(args.out, exist_ok=True)
  tfgrec = [sys.executable, "-m", "tfgrec.cli"]
  rows = []
  print(f"{'variant':62s} {'epochs':>8s} {'s/ep':>5s} {'train s':>8s} {'val':>7s} "
        f"{'query':>14s} {'q val':>7s} {'test':>7s} {'cold':>7s}"
        + (f" {'2-stage':>7s} {'cold':>7s}" if args.two_stage else ""), flush=True)
  for index, variant in enumerate(args.variant or list(VARIANT_NAMES)):
    run_dir = os.path.join(args.out, f"variant_{index}")
    config = merged(base, overrides_of(variant))
    config["run_dir"] = run_dir
    path = os.path.join(args.out, f"variant_{index}.yaml")
    with open(path, "w") as f:
      yaml.safe_dump(config, f)
    start = time.time()
    for command in (["train", "--config", path, "--no-final-fit"],  # Never exported.
                    ["evaluate", "--config", path, "--baselines", ""]):
      with open(os.path.join(args.out, f"variant_{index}.{command[0]}.log"), "w") as log:
        subprocess.run(tfgrec + command, stdout=log, stderr=subprocess.STDOUT, check=True)
      if command[0] == "train":
        seconds = time.time() - start
    with open(os.path.join(run_dir, "best.json")) as f:
      best = json.load(f)
    with open(os.path.join(run_dir, "history.json")) as f:
      history = json.load(f)
    epochs = len(history)
    epoch_seconds = statistics.median(
        [h["seconds"] for h in history[1:]] or [h["seconds"] for h in history])
    with open(os.path.join(run_dir, "metrics.json")) as f:
      all_metrics = json.load(f)
    metrics = all_metrics["full model"]
    with open(os.path.join(run_dir, "query.json")) as f:
      query = json.load(f)
    row = {"variant": variant, "name": VARIANT_NAMES.get(variant, variant), "epochs": epochs,
           "best_epoch": best["epoch"], "train_seconds": round(seconds, 1),
           "epoch_seconds": round(epoch_seconds, 2),
           "validation_ndcg@20": best["val_ndcg@20"],
           "query": (f"{query['user_weight']:g} / {query['half_life']:g} / "
                     f"{query.get('popularity_weight', 0.0):g}"),
           "query_validation_ndcg@20": query["val_ndcg@20"],
           "test_ndcg@20": metrics["all"]["ndcg@20"],
           "cold_ndcg@20": metrics.get("cold_items", {}).get("ndcg@20", float("nan"))}
    if args.two_stage:
      two_stage = all_metrics["two-stage"]
      row["two_stage_ndcg@20"] = two_stage["all"]["ndcg@20"]
      row["two_stage_cold_ndcg@20"] = two_stage.get("cold_items", {}).get("ndcg@20",
                                                                           float("nan"))
    rows.append(row)
    print(f"{row['name'][:62]:62s} {epochs:>4d} ({best['epoch']:>2d}) {epoch_seconds:5.1f} "
          f"{seconds:8.0f} {row['validation_ndcg@20']:7.4f} {row['query']:>14s} "
          f"{row['query_validation_ndcg@20']:7.4f} {row['test_ndcg@20']:7.4f} "
          f"{row['cold_ndcg@20']:7.4f}"
          + (f" {row['two_stage_ndcg@20']:7.4f} {row['two_stage_cold_ndcg@20']:7.4f}"
             if args.two_stage else ""), flush=True)
    with open(os.path.join(args.out, "variants.json"), "w") as f:
      json.dump(rows, f, indent=1)
  if args.report_run:
    from tfgrec import _entry  # pylint: disable=g-import-not-at-top
    _entry.quiet_start(verbose=False)  # The report module loads TensorFlow: no start-up lines.
    from tfgrec.eval import report  # pylint: disable=g-import-not-at-top
    path = report.write_tower_parts(args.report_run, base.get("graph_dir"), rows)
    print(f"{path}: `tfgrec evaluate --run {args.report_run}` puts them in its report")


if __name__ == "__main__":
  main()
