"""The `tfgrec` command line.

  tfgrec data movielens --out DIR [--source DIR] [--format csv|jsonl|parquet]
  tfgrec data synthetic --users N --items M --interactions K --seed S --out DIR
                        [--release-fraction F --end-days N]
  tfgrec data contract                      print the raw-log contract (JSON)
  tfgrec build-graph --raw DIR --out DIR    the Beam job (python -m tfgrec.jobs.build_graph)
  tfgrec train [--config FILE] [--graph DIR] [--run DIR] [--no-final-fit]
                                            train the model (model.fit), then
                                            the final fit: every artifact the served model holds
  tfgrec final-fit [--config FILE] [--run DIR]   redo the final fit of a trained run alone
  tfgrec evaluate [--config FILE] [--run DIR] [--baselines LIST]   test metrics, baselines, report
  tfgrec export [--config FILE] [--run DIR] [--base DIR] [--name NAME] [--k K]
                                            package the run's artifacts: SavedModel for TF Serving
  tfgrec serve [--config FILE] [--models-config FILE] [--host H] [--port P]
                                            local stand-in for TF Serving (same gRPC protos)
  tfgrec query [--config FILE] [--target HOST:PORT] --user ID [--history ITEM ...]
               [--label L | --version N] [--json]                ask a served model
  tfgrec recommend [--config FILE] [--model DIR] --users FILE --output FILE [--k K] [--explain]
                                            batch recommendations -> JSON lines
  tfgrec demo [--config FILE] [--out DIR] [--force]   the main job end to end

Every command that reads a config takes the same YAML file (--config; the packaged default is
tfgrec/configs/default.yaml, the demo). `tfgrec -v COMMAND` (or `COMMAND -v`) shows TensorFlow's
start-up logs, which are silenced otherwise (tfgrec/_entry.py). Building the parser imports
neither TensorFlow nor Beam, so `--help` is quick.
"""
import tfgrec  # noqa: F401  # Sets TF_USE_LEGACY_KERAS before TensorFlow loads.

import argparse
import json
import os
import sys
import time
from typing import List, Optional

from tfgrec import _cli_constants as constants
from tfgrec import _entry


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
                                  clusters=args.clusters, cold_fraction=args.cold_fraction,
                                  release_fraction=args.release_fraction,
                                  end_days=args.end_days)
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
  from tfgrec.jobs import build_graph  # pylint: disable=g-import-not-at-top
  return build_graph.run_from_args(args, extra)


def _run_config(args):
  """The run config: --config (or the run directory's saved config, or the packaged defaults),
  with --graph / --run / --epochs on top."""
  from tfgrec import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfgrec import storage  # pylint: disable=g-import-not-at-top
  from tfgrec.train import layout  # pylint: disable=g-import-not-at-top
  path = args.config
  run_dir = getattr(args, "run", None) or config_lib.load_config().run_dir
  saved = layout.RunLayout(run_dir).config
  if path is None and getattr(args, "use_saved", False) and storage.exists(saved):
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
  result = trainer.train(config, final_fit=not args.no_final_fit)
  best = result.best
  print(f"[train] best epoch {best['epoch']} of {len(result.history)}: validation "
        f"NDCG@{config.train.validation_k} {best[f'val_ndcg@{config.train.validation_k}']:.4f}, "
        f"Recall@{config.train.validation_k} "
        f"{best[f'val_recall@{config.train.validation_k}']:.4f} ({result.seconds:.0f}s)")
  print(f"  checkpoint, logs, history: {config.run_dir}/ (tensorboard --logdir "
        f"{os.path.join(config.run_dir, 'logs')})")
  return 0


def _final_fit(args) -> int:
  from tfgrec.train import trainer  # pylint: disable=g-import-not-at-top
  config = _run_config(args)
  print(f"[final-fit] run {config.run_dir}: every artifact of the served model, from every "
        "known event", flush=True)
  manifest = trainer.final_fit(config)
  print(f"[final-fit] {len(manifest.artifacts)} artifacts, {manifest.events['count']} events; "
        f"manifest {config.run_dir}/manifest.json")
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
  from tfgrec import storage  # pylint: disable=g-import-not-at-top
  from tfgrec.export import export  # pylint: disable=g-import-not-at-top
  from tfgrec.serving import model_config  # pylint: disable=g-import-not-at-top
  from tfgrec.train import exporter  # pylint: disable=g-import-not-at-top
  config = _run_config(args)
  k = args.k or config.export.k
  base, name = args.base or config.export.base, args.name or config.export.name
  path = exporter.export_run(config, base, name, args.version, k)
  print(f"[export] {config.run_dir} -> {path} (signatures: "
        f"{export.signatures_line(path)}; serving_default = recommend; K = {k})")
  # The models.config `tfgrec serve` and TF Serving read, on the new version (a file tfgrec
  # did not write is the user's: left alone).
  version = int(os.path.basename(path.rstrip("/")))
  written = model_config.write_models_config(base, name, version, keep_foreign=True)
  if written:
    print(f"[export] {written} serves {name} version {version} (labels stable, canary)")
  else:
    print(f"[export] {storage.join(base, model_config.MODELS_CONFIG)} was not written by "
          f"tfgrec: left as it is (add version {version} of {name} to it to serve it)")
  return 0


def _serve(args) -> int:
  import signal  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  from tfgrec.serving import server as server_lib  # pylint: disable=g-import-not-at-top
  config = _file_config(args)
  models_config = args.models_config
  if models_config is None:  # The config's exported model, all at its latest version.
    from tfgrec import saved_models  # pylint: disable=g-import-not-at-top
    from tfgrec.serving import model_config  # pylint: disable=g-import-not-at-top
    latest = saved_models.next_version(os.path.join(config.export.base, config.export.name)) - 1
    if latest < 1:
      raise FileNotFoundError(f"no exported model in {config.export.base}/"
                              f"{config.export.name}/: run `tfgrec export` (or pass "
                              "--models-config)")
    models_config = model_config.write_models_config(config.export.base, config.export.name,
                                                     latest, keep_foreign=True)
    if models_config is None:  # The user's own file in the base: served as written.
      models_config = os.path.join(config.export.base, model_config.MODELS_CONFIG)
      print(f"[serve] {models_config} was not written by tfgrec: serving it as written",
            flush=True)
  server = server_lib.LocalModelServer(
      models_config, host=args.host or config.serve.host,
      port=config.serve.port if args.port is None else args.port,
      batching_parameters_path=args.batching_parameters)
  try:
    server.start()
  except server_lib.ServerError as e:
    print(f"tfgrec serve: error: {e}", file=sys.stderr)
    return 2
  print(f"[serve] gRPC on {server.address} (TF Serving's PredictionService and ModelService, "
        "grpc.health.v1.Health); Ctrl-C or SIGTERM stops it")
  for model in server.models:
    labels = ", ".join(f"{k} -> {v}" for k, v in model.labels.items()) or "none"
    print(f"  {model.name}: versions {', '.join(map(str, model.versions))} (labels: {labels}) "
          f"from {model.base_path}")
  if server.max_batch_size:
    print(f"  max batch size {server.max_batch_size}")
  sys.stdout.flush()
  stop = threading.Event()
  previous = {}
  if threading.current_thread() is threading.main_thread():
    for signum in (signal.SIGINT, signal.SIGTERM):
      previous[signum] = signal.signal(signum, lambda *_: stop.set())
  try:
    while not stop.wait(0.5):
      pass
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)
    print(f"[serve] stopping (in-flight requests get {args.grace:g} s)", flush=True)
    server.stop(args.grace)
  return 0


def _query(args) -> int:
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfgrec.serving import client as client_lib  # pylint: disable=g-import-not-at-top
  if args.label is not None and args.version is not None:
    raise ValueError("pass --label or --version, not both")
  config = _file_config(args)
  target = args.target or f"{config.serve.host}:{config.serve.port}"
  try:
    with client_lib.Client(target, args.model or config.export.name,
                           timeout=args.timeout or config.serve.timeout) as client:
      inputs = {"user_id": np.array([args.user], dtype=object),
                "history": np.array([args.history], dtype=object).reshape([1, -1])}
      signature = args.signature
      if args.attribute or args.now is not None:  # The two-stage model's full request.
        signature = "recommend_at" if signature == "recommend" else signature
        inputs.update(history_time=np.full(inputs["history"].shape, -1, np.int64),
                      now=np.array([-1 if args.now is None else args.now], np.int64),
                      user_attributes=np.array([args.attribute or [""]], dtype=object))
      response = client.predict_response(inputs, signature=signature, version=args.version,
                                         label=args.label)
  except client_lib.ServingError as e:
    print(f"error: {e.code.name}: {e.details}", file=sys.stderr)
    return 1
  outputs = client_lib.decode_outputs(response)
  items = [i.decode("utf-8") for i in outputs["item_ids"][0]]
  scores = [float(s) for s in outputs["scores"][0]]
  spec = response.model_spec
  if args.json:
    print(json.dumps({"model": spec.name, "version": spec.version.value,
                      "signature": spec.signature_name, "user_id": args.user,
                      "items": items, "scores": scores}, indent=2))
    return 0
  print(f"{spec.name} version {spec.version.value}"
        f"{f' (label {args.label})' if args.label else ''}, signature {spec.signature_name}, "
        f"user {args.user}" + (f", history {' '.join(args.history)}" if args.history else ""))
  width = max([len("item_id")] + [len(i) for i in items])
  print(f"{'rank':>4}  {'item_id':<{width}}  score")
  for rank, (item, score) in enumerate(zip(items, scores), start=1):
    print(f"{rank:>4}  {item:<{width}}  {score:.4f}")
  return 0


def _recommend(args) -> int:
  from tfgrec import batch  # pylint: disable=g-import-not-at-top
  start = time.time()
  config = _file_config(args)
  model = args.model or os.path.join(config.export.base, config.export.name)
  counts = batch.recommend_file(model, args.users, args.output, k=args.k or config.export.k,
                                explain=args.explain, batch_size=args.batch_size,
                                max_history=args.max_history, progress=sys.stderr.isatty())
  print(f"[recommend] {counts['model']}: {counts['written']:,} users -> {args.output} "
        f"(rows in {counts['rows_in']:,}, dead-lettered {counts['dead_letters']:,}; "
        f"{time.time() - start:.1f}s)")
  return 0


def _file_config(args):
  """--config (or the packaged defaults), for the commands that read only its paths."""
  from tfgrec import config as config_lib  # pylint: disable=g-import-not-at-top
  return config_lib.load_config(getattr(args, "config", None))


def _demo(args) -> int:
  from tfgrec import demo  # pylint: disable=g-import-not-at-top
  config = _file_config(args)
  if args.out:
    config = demo.with_out_dir(config, args.out)
  return demo.run(config, force=args.force)


def _trained_run_arguments(parser: argparse.ArgumentParser) -> None:
  """--config, --graph and --run of a command that reads a trained run."""
  parser.add_argument("--config", default=None, metavar="FILE",
                      help="YAML run config (default: the run directory's saved config)")
  parser.add_argument("--graph", default=None, metavar="DIR", help="overrides graph_dir")
  parser.add_argument("--run", default=None, metavar="DIR", help="overrides run_dir")


def build_parser() -> argparse.ArgumentParser:
  """The `tfgrec` parser; imports neither TensorFlow nor Beam (help texts stay quick)."""
  parser = argparse.ArgumentParser(
      prog="tfgrec", description="Graph + language-model recommender on TensorFlow.")
  parser.add_argument("--version", action="version", version=f"tfgrec {tfgrec.__version__}")
  _entry.add_verbose_flag(parser)
  sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

  data = sub.add_parser("data", help="write raw logs in the contract (MovieLens, synthetic)")
  data_sub = data.add_subparsers(dest="data_command", required=True, metavar="SOURCE")
  ml = data_sub.add_parser("movielens", help="MovieLens: embedded ml-latest-small or a download")
  ml.add_argument("--out", required=True, metavar="DIR")
  ml.add_argument("--source", default=None, metavar="DIR",
                  help="GroupLens download (ratings.csv + movies.csv); default: embedded sample")
  ml.add_argument("--format", choices=constants.FORMATS, default="csv")
  ml.set_defaults(func=_data_movielens, needs_tensorflow=False)
  syn = data_sub.add_parser("synthetic", help="synthetic logs with planted taste clusters")
  syn.add_argument("--users", type=int, default=1000)
  syn.add_argument("--items", type=int, default=2000)
  syn.add_argument("--interactions", type=int, default=50_000)
  syn.add_argument("--seed", type=int, default=0)
  syn.add_argument("--clusters", type=int, default=0, help="taste clusters (0: by catalog size)")
  syn.add_argument("--cold-fraction", type=float, default=0.05,
                   help="share of items that never get an interaction")
  syn.add_argument("--release-fraction", type=float, default=0.0,
                   help="share of items released while the log runs (new at test time when "
                   "late; the items table gets a 'released' time)")
  syn.add_argument("--end-days", type=int, default=0,
                   help="every user's last event falls in the log's last N days, a log read up "
                   "to one date (0: users start within the first 300 days)")
  syn.add_argument("--out", required=True, metavar="DIR")
  syn.add_argument("--format", choices=constants.FORMATS, default="csv")
  syn.set_defaults(func=_data_synthetic, needs_tensorflow=False)
  con = data_sub.add_parser("contract", help="print the raw-log contract as JSON")
  con.set_defaults(func=_data_contract, needs_tensorflow=False)

  from tfgrec.jobs import build_graph  # pylint: disable=g-import-not-at-top  # Light.
  bg = sub.add_parser(
      "build-graph", help="Beam job: raw logs -> TF-GNN graph directory",
      epilog="Unknown options are passed to Beam, e.g. --runner=DataflowRunner --project=P "
      "--temp_location=gs://B/tmp --setup_file=./setup.py, or --direct_num_workers=2 "
      "--direct_running_mode=multi_processing")
  build_graph.add_arguments(bg)
  bg.set_defaults(func=_build_graph, passes_beam_args=True)

  tr = sub.add_parser("train", help="train the model of a run config (Keras model.fit)",
                      epilog="A run killed midway resumes from its last finished epoch when "
                      "started again with the same run directory.")
  tr.add_argument("--config", default=None, metavar="FILE",
                  help="YAML run config (default: the packaged defaults)")
  tr.add_argument("--graph", default=None, metavar="DIR", help="overrides graph_dir")
  tr.add_argument("--run", default=None, metavar="DIR", help="overrides run_dir")
  tr.add_argument("--epochs", type=int, default=None, help="overrides train.epochs")
  tr.add_argument("--no-final-fit", action="store_true",
                  help="stop before the final fit, for a run that will not be exported (an "
                  "experiment); `tfgrec final-fit` makes its artifacts later")
  tr.set_defaults(func=_train)
  ff = sub.add_parser("final-fit", help="redo a trained run's final fit alone: the sources on "
                      "every known event, the tower's served tables, the manifest")
  _trained_run_arguments(ff)
  ff.set_defaults(func=_final_fit, use_saved=True)
  ev = sub.add_parser("evaluate", help="test metrics of a trained run and the baselines, "
                      "metrics.json and a report")
  _trained_run_arguments(ev)
  ev.add_argument("--baselines", default=None, metavar="LIST",
                  help="comma-separated subset of " + ",".join(constants.BASELINES) +
                  " ('' for none; default: evaluate.baselines of the config)")
  ev.set_defaults(func=_evaluate, use_saved=True)

  ex = sub.add_parser("export", help="a trained run -> SavedModel in TF Serving's layout "
                      "<base>/<name>/<version>/")
  ex.add_argument("--run", default=None, metavar="DIR", help="the trained run directory")
  ex.add_argument("--config", default=None, metavar="FILE",
                  help="YAML run config (default: the run directory's saved config)")
  ex.add_argument("--base", default=None, metavar="DIR",
                  help="model base path (default: export.base of the config)")
  ex.add_argument("--name", default=None, help="model name (default: export.name, tfgrec)")
  ex.add_argument("--version", type=int, default=None,
                  help="integer version (default: one above the highest present)")
  ex.add_argument("--k", type=int, default=None,
                  help="items per answer, fixed at export (default: export.k, 20)")
  ex.set_defaults(func=_export, use_saved=True)

  se = sub.add_parser("serve", help="serve exported models over gRPC with TF Serving's protos "
                      "(a local stand-in for TF Serving)",
                      epilog="Clients (tfgrec query, tfgrec.serving.Client, any TF Serving "
                      "client) work unchanged against real TF Serving.")
  se.add_argument("--models-config", default=None, metavar="FILE",
                  help="TF Serving models.config (ModelServerConfig text proto); relative "
                  "base_paths are taken from the file's folder (default: the config's "
                  "exported model, <export.base>/models.config)")
  se.add_argument("--config", default=None, metavar="FILE",
                  help="YAML config: export.base/name, serve.host/port (default: packaged)")
  se.add_argument("--host", default=None,
                  help="address to bind (default: serve.host, 127.0.0.1)")
  se.add_argument("--port", type=int, default=None,
                  help="gRPC port (default: serve.port, 8500; 0: any)")
  se.add_argument("--batching-parameters", default=None, metavar="FILE",
                  help="TF Serving batching parameters; its max_batch_size is enforced")
  se.add_argument("--grace", type=float, default=5.0,
                  help="seconds in-flight requests get at shutdown (default: 5)")
  se.set_defaults(func=_serve)

  qu = sub.add_parser("query", help="recommendations for one user from a served model "
                      "(TF Serving or tfgrec serve)")
  qu.add_argument("--target", default=None, metavar="HOST:PORT",
                  help="the server's gRPC address (default: serve.host:serve.port of the "
                  "config, 127.0.0.1:8500)")
  qu.add_argument("--config", default=None, metavar="FILE",
                  help="YAML config: serve.*, export.name (default: packaged)")
  qu.add_argument("--user", required=True, metavar="ID", help="the user id")
  qu.add_argument("--history", nargs="*", default=[], metavar="ITEM",
                  help="recent item ids, most recent first (for users the model does not know)")
  qu.add_argument("--attribute", action="append", default=[], metavar="COLUMN=VALUE",
                  help="an attribute of a user the model does not know, e.g. age_group=25-34 "
                  "(repeatable; asks recommend_at; read when the graph has user attributes)")
  qu.add_argument("--now", type=int, default=None, metavar="SECONDS",
                  help="reference time in epoch seconds (asks recommend_at; default: the "
                  "user's latest known event)")
  qu.add_argument("--label", default=None, help="version label, e.g. stable or canary")
  qu.add_argument("--version", type=int, default=None, help="model version (default: latest)")
  qu.add_argument("--model", default=None, help="model name (default: export.name, tfgrec)")
  qu.add_argument("--signature", default="recommend",
                  help="signature taking user_id and history (default: recommend; recommend_at "
                  "with --attribute or --now)")
  qu.add_argument("--timeout", type=float, default=None,
                  help="deadline in seconds (default: serve.timeout, 10)")
  qu.add_argument("--json", action="store_true", help="print JSON instead of a table")
  qu.set_defaults(func=_query)

  rc = sub.add_parser("recommend", help="batch recommendations from an exported model -> "
                      "JSON lines (python -m tfgrec.jobs.batch_recommend is the Beam version)")
  rc.add_argument("--model", default=None, metavar="DIR",
                  help="exported model: <base>/<name> (its highest version) or a version dir "
                  "(default: export.base/export.name of the config)")
  rc.add_argument("--config", default=None, metavar="FILE",
                  help="YAML config: export.* (default: packaged)")
  rc.add_argument("--users", required=True, metavar="FILE",
                  help="one user id per line, or an interactions file (csv/jsonl/parquet, the "
                  "raw-log contract) to take each user's history from")
  rc.add_argument("--output", required=True, metavar="FILE", help="recs.jsonl to write")
  rc.add_argument("--k", type=int, default=None,
                  help="items per user, <= the K of the export (default: export.k, 20)")
  rc.add_argument("--explain", action="store_true",
                  help="add, per item, the user's history item that contributed most")
  rc.add_argument("--batch-size", type=int, default=256, help="users per model call")
  rc.add_argument("--max-history", type=int, default=50,
                  help="latest items per user taken from an interactions file")
  rc.set_defaults(func=_recommend)

  demo = sub.add_parser(
      "demo", help="the main job end to end: data -> Beam graph -> train -> evaluate -> "
      "export -> serve + query (embedded MovieLens and BERT by default)",
      epilog="Stages whose outputs are up to date are skipped; --force redoes them.")
  demo.add_argument("--config", default=None, metavar="FILE",
                    help="YAML config driving every stage (default: the packaged demo, "
                    "tfgrec/configs/default.yaml)")
  demo.add_argument("--out", default=None, metavar="DIR",
                    help="put every output under DIR (default: the config's paths, out/...)")
  demo.add_argument("--force", action="store_true", help="redo every stage")
  demo.set_defaults(func=_demo)
  for command in (ml, syn, con, bg, tr, ff, ev, ex, se, qu, rc, demo):
    _entry.add_verbose_flag(command, suppress_default=True)
  return parser


# Commands that train, evaluate or export: Grappler off (`_entry.configure_graph_optimizer`). The
# serving commands keep TensorFlow's defaults, as TF Serving does.
_GRAPH_OPTIMIZER_OFF = ("train", "final-fit", "evaluate", "export", "demo")


def main(argv: Optional[List[str]] = None) -> int:
  """Runs `tfgrec` with `argv` (default: the command line); returns the exit code."""
  _entry.filter_import_warnings()
  parser = build_parser()
  args, extra = parser.parse_known_args(argv)
  if extra and not getattr(args, "passes_beam_args", False):
    parser.error(f"unrecognized arguments: {' '.join(extra)}")
  # Before anything imports TensorFlow: its C++ start-up logs read like failures on a CPU.
  _entry.quiet_start(args.verbose, import_tensorflow=getattr(args, "needs_tensorflow", True))
  _entry.configure_logging(args.verbose)
  if args.command in _GRAPH_OPTIMIZER_OFF:
    _entry.configure_graph_optimizer()
  if getattr(args, "passes_beam_args", False):
    return _entry.run_reporting_errors(f"tfgrec {args.command}", lambda: args.func(args, extra))
  return _entry.run_reporting_errors(f"tfgrec {args.command}", lambda: args.func(args))


if __name__ == "__main__":
  sys.exit(main())
