"""The `tfgrec` command line.

  tfgrec data movielens --out DIR [--source DIR] [--format csv|jsonl|parquet]
  tfgrec data synthetic --users N --items M --interactions K --seed S --out DIR
  tfgrec data contract                      print the raw-log contract (JSON)
  tfgrec build-graph --raw DIR --out DIR    the Beam job (pipelines/build_graph.py)
  tfgrec train [--config FILE] [--graph DIR] [--run DIR]     train the model (model.fit)
  tfgrec evaluate [--config FILE] [--run DIR] [--baselines LIST]   test metrics, baselines, report
  tfgrec export --run DIR --base DIR [--name NAME] [--k K]   SavedModel for TF Serving
  tfgrec demo [--out DIR] [--force]         the main job on the embedded data
"""
import tfgrec  # noqa: F401  # Sets TF_USE_LEGACY_KERAS before TensorFlow loads.

import argparse
import json
import logging
import os
import sys
import time
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _data_movielens(args) -> int:
  from tfgrec.data import movielens, writers  # pylint: disable=g-import-not-at-top
  tables = movielens.load(args.source)
  paths = writers.write_tables(tables, args.out, args.format)
  inter, items = tables["interactions"], tables["items"]
  print(f"[data movielens] {len(inter):,} interactions, {inter['user_id'].nunique():,} users, "
        f"{len(items):,} items ({'embedded ml-latest-small' if args.source is None else args.source})")
  for name, path in paths.items():
    print(f"  {name}: {path}")
  return 0


def _data_synthetic(args) -> int:
  from tfgrec.data import synthetic, writers  # pylint: disable=g-import-not-at-top
  cfg = synthetic.SyntheticConfig(users=args.users, items=args.items,
                                  interactions=args.interactions, seed=args.seed,
                                  clusters=args.clusters, cold_fraction=args.cold_fraction)
  start = time.time()
  tables = synthetic.generate(cfg)
  paths = writers.write_tables(tables, args.out, args.format)
  print(f"[data synthetic] {len(tables['interactions']):,} interactions, {cfg.users:,} users, "
        f"{cfg.items:,} items, {cfg.num_clusters} taste clusters, seed {cfg.seed} "
        f"({time.time() - start:.1f}s)")
  for name, path in paths.items():
    print(f"  {name}: {path}")
  return 0


def _data_contract(args) -> int:
  from tfgrec.data import contract  # pylint: disable=g-import-not-at-top
  del args
  print(json.dumps(contract.contract_dict(), indent=2))
  return 0


def _build_graph(args, extra: List[str]) -> int:
  from pipelines import build_graph  # pylint: disable=g-import-not-at-top
  return build_graph.run_from_args(args, extra)


def _run_config(args):
  """The run config: --config (or the run directory's saved config, or the packaged defaults),
  with --graph / --run / --epochs on top."""
  from tfgrec import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfgrec.train import trainer  # pylint: disable=g-import-not-at-top
  path = args.config
  run_dir = getattr(args, "run", None) or config_lib.load_config().run_dir
  saved = os.path.join(run_dir, trainer.CONFIG_FILE)
  if path is None and getattr(args, "use_saved", False) and os.path.exists(saved):
    path = saved
  overrides = {}
  if getattr(args, "graph", None):
    overrides["graph_dir"] = args.graph
  if getattr(args, "run", None):
    overrides["run_dir"] = args.run
  if getattr(args, "epochs", None):
    overrides["train"] = {"epochs": args.epochs}
  return config_lib.load_config(path, overrides)


def _train(args) -> int:
  from tfgrec.train import trainer  # pylint: disable=g-import-not-at-top
  config = _run_config(args)
  print(f"[train] graph {config.graph_dir} -> run {config.run_dir}", flush=True)
  result = trainer.train(config)
  best = result.best
  print(f"[train] best epoch {best['epoch']} of {len(result.history)}: validation "
        f"NDCG@{config.train.validation_k} {best[f'val_ndcg@{config.train.validation_k}']:.4f}, "
        f"Recall@{config.train.validation_k} "
        f"{best[f'val_recall@{config.train.validation_k}']:.4f} ({result.seconds:.0f}s)")
  print(f"  checkpoint, logs, history: {config.run_dir}/ (tensorboard --logdir "
        f"{os.path.join(config.run_dir, 'logs')})")
  return 0


def _evaluate(args) -> int:
  from tfgrec.eval import report  # pylint: disable=g-import-not-at-top
  from tfgrec.train import evaluate  # pylint: disable=g-import-not-at-top
  config = _run_config(args)
  names = None if args.baselines is None else [n for n in args.baselines.split(",") if n]
  print(f"[evaluate] run {config.run_dir} on the test split of {config.graph_dir}", flush=True)
  results = evaluate.evaluate_run(config, baselines=names)
  print()
  print(report.headline_table(results, k=20))
  return 0


def _export(args) -> int:
  from tfgrec.export import export  # pylint: disable=g-import-not-at-top
  config = _run_config(args)
  path = export.export_run(config, args.base, args.name, args.version, args.k)
  print(f"[export] {config.run_dir} -> {path} (signatures: serving_default = recommend, "
        f"{', '.join(export.SIGNATURES)}; K = {args.k})")
  return 0


def _demo(args) -> int:
  from tfgrec import demo  # pylint: disable=g-import-not-at-top
  return demo.run(out=args.out, force=args.force)


def build_parser() -> argparse.ArgumentParser:
  from tfgrec.data import contract  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(
      prog="tfgrec", description="Graph + language-model recommender on TensorFlow.")
  parser.add_argument("--version", action="version", version=f"tfgrec {tfgrec.__version__}")
  parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
  sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

  data = sub.add_parser("data", help="write raw logs in the contract (MovieLens, synthetic)")
  data_sub = data.add_subparsers(dest="data_command", required=True, metavar="SOURCE")
  ml = data_sub.add_parser("movielens", help="MovieLens: embedded ml-latest-small or a download")
  ml.add_argument("--out", required=True, metavar="DIR")
  ml.add_argument("--source", default=None, metavar="DIR",
                  help="GroupLens download (ratings.csv + movies.csv); default: embedded sample")
  ml.add_argument("--format", choices=contract.FORMATS, default="csv")
  ml.set_defaults(func=_data_movielens)
  syn = data_sub.add_parser("synthetic", help="synthetic logs with planted taste clusters")
  syn.add_argument("--users", type=int, default=1000)
  syn.add_argument("--items", type=int, default=2000)
  syn.add_argument("--interactions", type=int, default=50_000)
  syn.add_argument("--seed", type=int, default=0)
  syn.add_argument("--clusters", type=int, default=0, help="taste clusters (0: by catalog size)")
  syn.add_argument("--cold-fraction", type=float, default=0.05,
                   help="share of items that never get an interaction")
  syn.add_argument("--out", required=True, metavar="DIR")
  syn.add_argument("--format", choices=contract.FORMATS, default="csv")
  syn.set_defaults(func=_data_synthetic)
  con = data_sub.add_parser("contract", help="print the raw-log contract as JSON")
  con.set_defaults(func=_data_contract)

  from pipelines import build_graph  # pylint: disable=g-import-not-at-top
  bg = sub.add_parser(
      "build-graph", help="Beam job: raw logs -> TF-GNN graph directory",
      epilog="Unknown options are passed to Beam, e.g. --runner=DataflowRunner --project=P "
      "--temp_location=gs://B/tmp --setup_file=./setup.py, or --direct_num_workers=2 "
      "--direct_running_mode=multi_processing")
  build_graph.add_arguments(bg)
  bg.set_defaults(func=_build_graph, passes_beam_args=True)

  from tfgrec.train import evaluate as evaluate_lib  # pylint: disable=g-import-not-at-top
  tr = sub.add_parser("train", help="train the model of a run config (Keras model.fit)",
                      epilog="A run killed midway resumes from its last finished epoch when "
                      "started again with the same run directory.")
  tr.add_argument("--config", default=None, metavar="FILE",
                  help="YAML run config (default: the packaged defaults)")
  tr.add_argument("--graph", default=None, metavar="DIR", help="overrides graph_dir")
  tr.add_argument("--run", default=None, metavar="DIR", help="overrides run_dir")
  tr.add_argument("--epochs", type=int, default=None, help="overrides train.epochs")
  tr.set_defaults(func=_train)
  ev = sub.add_parser("evaluate", help="test metrics of a trained run and the baselines, "
                      "metrics.json and a report")
  ev.add_argument("--config", default=None, metavar="FILE",
                  help="YAML run config (default: the run directory's saved config)")
  ev.add_argument("--graph", default=None, metavar="DIR", help="overrides graph_dir")
  ev.add_argument("--run", default=None, metavar="DIR", help="overrides run_dir")
  ev.add_argument("--baselines", default=None, metavar="LIST",
                  help="comma-separated subset of " + ",".join(evaluate_lib.BASELINES) +
                  " ('' for none; default: evaluate.baselines of the config)")
  ev.set_defaults(func=_evaluate, use_saved=True)

  ex = sub.add_parser("export", help="a trained run -> SavedModel in TF Serving's layout "
                      "<base>/<name>/<version>/")
  ex.add_argument("--run", default=None, metavar="DIR", help="the trained run directory")
  ex.add_argument("--config", default=None, metavar="FILE",
                  help="YAML run config (default: the run directory's saved config)")
  ex.add_argument("--base", required=True, metavar="DIR", help="model base path")
  ex.add_argument("--name", default="tfgrec", help="model name (default: tfgrec)")
  ex.add_argument("--version", type=int, default=None,
                  help="integer version (default: one above the highest present)")
  ex.add_argument("--k", type=int, default=20, help="items per answer, fixed at export")
  ex.set_defaults(func=_export, use_saved=True)

  demo = sub.add_parser("demo", help="run the main job on the embedded MovieLens data")
  demo.add_argument("--out", default="out", metavar="DIR")
  demo.add_argument("--force", action="store_true", help="redo stages whose outputs exist")
  demo.set_defaults(func=_demo)
  return parser


class _QuietImportWarnings(logging.Filter):
  """Drops a warning Beam logs at import about optional Google Cloud client libraries."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("apitools not found")


def main(argv: Optional[List[str]] = None) -> int:
  logging.getLogger().addFilter(_QuietImportWarnings())
  parser = build_parser()
  args, extra = parser.parse_known_args(argv)
  if extra and not getattr(args, "passes_beam_args", False):
    parser.error(f"unrecognized arguments: {' '.join(extra)}")
  logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                      format="%(asctime)s %(levelname)s %(message)s")
  if not args.verbose:
    logging.getLogger("tfgrec").setLevel(logging.INFO)
  logging.getLogger("apache_beam").setLevel(logging.WARNING)
  try:
    if getattr(args, "passes_beam_args", False):
      return args.func(args, extra)
    return args.func(args)
  except (ValueError, FileNotFoundError, ImportError, KeyError) as e:
    print(f"tfgrec {args.command}: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
