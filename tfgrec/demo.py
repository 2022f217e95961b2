"""`tfgrec demo`: the main job end to end, as a new user first runs it.

  1. data      the embedded MovieLens (or a synthetic log, or your logs) as raw logs
  2. graph     the Beam job (DirectRunner): raw logs -> GraphTensor, splits, vocabularies
  3. train     the graph tower (graph convolution + attention + BERT text, TFRS tasks), then
               the stage-1 candidate sources and the stage-2 ranker over their union
  4. evaluate  the two stages, each source alone, drop-one ablations, the graph tower and the
               baselines on the test split -> metrics.json, report.md
  5. export    the SavedModel for TF Serving -> <export.base>/<export.name>/<version>/
  6. serve     the local model server on loopback, queried over gRPC: a heavy user, a light
               user, a brand-new user from three titles, a new item from its text; then stopped

One config drives it (`--config`; the packaged default is the demo). Before anything runs, the
inputs, the text encoder, the disk and the port are checked, so a mistake fails in seconds, not
after training. A stage whose outputs are there and up to date (the same config it reads,
`stage_reads`; inputs not newer) is skipped and says so; `force` redoes everything. Each stage
ends with where its outputs are.
"""
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from tfgrec import _ports
from tfgrec import config as config_lib

STAGES = ("data", "graph", "train", "evaluate", "export", "serve")
# Free space the demo asks for before it starts (MovieLens: ~0.3 GB of data and graph, ~0.3 GB
# per exported version, checkpoints and the text cache).
MIN_FREE_BYTES = {"movielens": 2 << 30, "raw": 2 << 30, "synthetic": 256 << 20}


class DemoError(ValueError):
  """A problem the user must fix before the demo can run (the message says what)."""


def with_out_dir(config: config_lib.RunConfig, out: str) -> config_lib.RunConfig:
  """`config` with every output under `out` (raw logs too, unless they are the user's own)."""
  data = config.data
  if data.source != "raw":
    data = dataclasses.replace(data, raw_dir=os.path.join(out, "data"))
  return dataclasses.replace(
      config, data=data, graph_dir=os.path.join(out, "graph"), run_dir=os.path.join(out, "run"),
      export=dataclasses.replace(config.export, base=os.path.join(out, "models")))


def stage_reads(config: config_lib.RunConfig, stage: str) -> Dict[str, Any]:
  """The config `stage` reads, by key path: its fingerprint hashes every one of them.

  Found by reading each stage's code path: data (tfgrec.data), graph (tfgrec.beam.build_graph),
  train (tfgrec.train.trainer: inputs, the tower, the query, the two stages' sources and
  ranker, the final fit), evaluate (tfgrec.train.evaluate: the run, the two stages refit, and
  the baselines it trains: graph_only and mf train towers of their own), export
  (tfgrec.train.exporter: the run's artifacts; its fingerprint also hashes the run's manifest).
  Whole sections, so a key added to one is covered.
  """
  data = config.data
  if stage == "data":
    return {"data.source": data.source,
            "data.synthetic": data.synthetic if data.source == "synthetic" else None}
  if stage == "graph":
    return {"data.raw_dir": data.raw_dir, "data.split": data.split,
            "data.attributes": data.attributes}
  trained = {"graph_dir": config.graph_dir, "text": config.text, "model": config.model,
             "tasks": config.tasks, "train": config.train, "ranking": config.ranking,
             "experimental": config.experimental}
  if stage == "train":
    return trained
  if stage == "evaluate":
    return {**trained, "evaluate": config.evaluate}
  if stage == "export":
    return {**trained, "run_dir": config.run_dir, "export": config.export}
  raise ValueError(f"stage must be one of {STAGES[:-1]}, got {stage!r}")


def _fingerprint(config: config_lib.RunConfig, stage: str, *files: str) -> str:
  """A hash of the config `stage` reads and of the bytes of `files` (those that exist)."""
  reads = {k: config_lib.to_dict(v) if dataclasses.is_dataclass(v) else v
           for k, v in stage_reads(config, stage).items()}
  digest = hashlib.sha1(json.dumps(reads, sort_keys=True).encode("utf-8"))
  for path in files:
    if os.path.exists(path):
      with open(path, "rb") as f:
        digest.update(hashlib.sha1(f.read()).digest())
    else:
      digest.update(b"absent")
  return digest.hexdigest()[:16]


def _newest_mtime(paths: Sequence[str]) -> float:
  times = []
  for path in paths:
    if os.path.isdir(path):
      for root, _, files in os.walk(path):
        times.extend(os.path.getmtime(os.path.join(root, f)) for f in files)
    elif os.path.exists(path):
      times.append(os.path.getmtime(path))
  return max(times, default=0.0)


def _stamp_path(directory: str, stage: str) -> str:
  return os.path.join(directory, f".tfgrec-stage-{stage}.json")


def _read_stamp(directory: str, stage: str) -> Optional[dict]:
  path = _stamp_path(directory, stage)
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _elapsed(seconds: float) -> str:
  return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f} min"


class _Flow:
  """Runs stages with the skip-if-up-to-date rule and prints their progress."""

  def __init__(self, force: bool):
    self.force = force
    self.start = time.time()

  def stage(self, index: int, name: str, *, out_dir: str, fingerprint: str,
            inputs: Sequence[str], body: Callable[[], Dict]) -> Dict:
    """Runs `body` (returns facts to remember, e.g. output paths) unless up to date."""
    print(f"\n== [{index}/{len(STAGES)}] {name}", flush=True)
    stamp = _read_stamp(out_dir, name)
    if (not self.force and stamp and stamp.get("fingerprint") == fingerprint
        and os.path.getmtime(_stamp_path(out_dir, name)) >= _newest_mtime(inputs)):
      print(f"   up to date, skipped (outputs in {stamp.get('outputs', out_dir)}; --force "
            "redoes it)", flush=True)
      return stamp
    start = time.time()
    facts = body() or {}
    os.makedirs(out_dir, exist_ok=True)
    stamp = {"stage": name, "fingerprint": fingerprint, "seconds": time.time() - start,
             "outputs": out_dir, **facts}
    with open(_stamp_path(out_dir, name), "w", encoding="utf-8") as f:
      json.dump(stamp, f, indent=1)
    total = _elapsed(time.time() - self.start)
    print(f"   {name} done in {_elapsed(stamp['seconds'])} (total {total}); "
          f"outputs: {stamp['outputs']}", flush=True)
    return stamp


def preflight(config: config_lib.RunConfig, serve: bool = True) -> None:
  """Fails early, with what to fix, on: missing raw logs, a text encoder without weights, too
  little free disk, a port in use."""
  data = config.data
  if data.source == "raw":
    from tfgrec.jobs import build_graph  # pylint: disable=g-import-not-at-top
    if not os.path.isdir(data.raw_dir):
      raise FileNotFoundError(f"data.raw_dir {data.raw_dir!r} does not exist (data.source: raw "
                              "reads your logs from it; the contract: `tfgrec data contract`)")
    build_graph.find_tables(data.raw_dir)
  elif data.source == "movielens":
    from tfgrec.data import movielens  # pylint: disable=g-import-not-at-top
    movielens.embedded_path()
  needs_text = config.model.use_text or config.tasks.alignment_weight > 0
  if needs_text:
    from tfgrec.text import checkpoint  # pylint: disable=g-import-not-at-top
    checkpoint.resolve(config.text.checkpoint)
  outputs = [config.graph_dir, config.run_dir, config.export.base]
  if data.source != "raw":
    outputs.append(data.raw_dir)
  check_free_space(outputs, MIN_FREE_BYTES[data.source])
  if serve:
    check_port(config.serve.host, config.serve.port)


def check_free_space(paths: Sequence[str], need: int) -> None:
  """Raises OSError(ENOSPC) when the disk of any of `paths` has less than `need` bytes free."""
  for path in paths:
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
      existing = os.path.dirname(existing)
    free = shutil.disk_usage(existing).free
    if free < need:
      raise OSError(errno.ENOSPC, f"{free / 2**30:.2f} GB free where {path} goes, the demo "
                    f"needs about {need / 2**30:.1f} GB", path)


def check_port(host: str, port: int) -> None:
  """Raises DemoError when `host:port` cannot be bound (0: any port, always fine)."""
  if _ports.in_use(host, port):
    raise DemoError(f"port {port} on {host} is in use: stop what holds it (another tfgrec "
                    "serve?) or set serve.port in the config (0: any free port)")


def _write_raw(config: config_lib.RunConfig) -> Dict:
  from tfgrec.data import movielens, synthetic, writers  # pylint: disable=g-import-not-at-top
  data = config.data
  if data.source == "movielens":
    tables = movielens.load_embedded()
    what = "embedded MovieLens (ml-latest-small)"
  else:
    tables = synthetic.generate(data.synthetic)
    what = f"synthetic log (seed {data.synthetic.seed})"
  paths = writers.write_tables(tables, data.raw_dir, "csv")
  inter = tables["interactions"]
  print(f"   {what}: {len(inter):,} interactions, {inter['user_id'].nunique():,} users, "
        f"{len(tables['items']):,} items")
  for name, path in paths.items():
    print(f"   {name}: {path}")
  return {"outputs": data.raw_dir}


def _build_graph(config: config_lib.RunConfig) -> Dict:
  from tfgrec.jobs import build_graph  # pylint: disable=g-import-not-at-top
  from tfgrec.beam import build_graph as job  # pylint: disable=g-import-not-at-top
  found = build_graph.find_tables(config.data.raw_dir)
  cfg = job.BuildGraphConfig(interactions=found["interactions"], items=found.get("items", []),
                             users=found.get("users", []), out=config.graph_dir,
                             split=config.data.split, attributes=config.data.attributes)
  print(f"   reading {len(cfg.interactions)} interactions file(s) from {config.data.raw_dir}; "
        "runner: DirectRunner", flush=True)
  stats = job.run(cfg)
  for line in job.summary_lines(stats, config.graph_dir):
    print("   " + line)
  return {"outputs": config.graph_dir}


def _train(config: config_lib.RunConfig) -> Dict:
  from tfgrec.train import trainer  # pylint: disable=g-import-not-at-top
  if os.path.isdir(config.run_dir):  # A new model: nothing of an older run is reused.
    shutil.rmtree(config.run_dir)
  result = trainer.train(config)
  k = config.train.validation_k
  best = result.best
  print(f"   best epoch {best['epoch']} of {len(result.history)}: validation NDCG@{k} "
        f"{best[f'val_ndcg@{k}']:.4f}, Recall@{k} {best[f'val_recall@{k}']:.4f}")
  return {"outputs": config.run_dir, "best_epoch": best["epoch"]}


def _evaluate(config: config_lib.RunConfig) -> Dict:
  from tfgrec.train import evaluate  # pylint: disable=g-import-not-at-top
  evaluate.evaluate_run(config)
  from tfgrec.train import layout  # pylint: disable=g-import-not-at-top
  return {"outputs": layout.RunLayout(config.run_dir).report}


def _export(config: config_lib.RunConfig) -> Dict:
  from tfgrec.export import export  # pylint: disable=g-import-not-at-top
  from tfgrec.train import exporter  # pylint: disable=g-import-not-at-top
  path = exporter.export_run(config, config.export.base, config.export.name, k=config.export.k)
  print(f"   signatures: {export.signatures_line(path)}; serving_default = recommend; "
        f"K = {config.export.k}")
  return {"outputs": path, "version": int(os.path.basename(path))}


def _titles(graph_dir: str) -> Dict[str, str]:
  """{item id: title} of the catalog's items that have a title (the others print as their id:
  a log without an items table has none)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  catalog = pd.read_parquet(os.path.join(graph_dir, "catalog.parquet"),
                            columns=["item_id", "title"])
  return {item: title for item, title in zip(catalog["item_id"].astype(str),
                                             catalog["title"].fillna("").astype(str)) if title}


def _demo_users(config: config_lib.RunConfig):
  """(heavy user, light user) by known events (training + validation)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tfgrec.data import splits  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  data = splits.load_eval_data(config.graph_dir)
  counts = np.bincount(data.history_events("test")["user"], minlength=data.num_users)
  users = inputs_lib.read_vocab(config.graph_dir, "user")
  known = np.nonzero(counts)[0]
  heavy = known[np.argmax(counts[known])]
  light = known[np.argmin(counts[known])]
  return (str(users[heavy]), int(counts[heavy])), (str(users[light]), int(counts[light]))


def _print_answer(heading: str, items: List[str], scores: List[float], titles: Dict[str, str],
                  because: Optional[List[str]] = None, limit: int = 10) -> None:
  print(f"\n   {heading}")
  for rank, (item, score) in enumerate(zip(items[:limit], scores[:limit]), start=1):
    line = f"   {rank:>3}. {titles.get(item, item)}  [{item}, {score:.3f}]"
    if because and because[rank - 1]:
      line += f"  <- because: {titles.get(because[rank - 1], because[rank - 1])}"
    print(line)


def serve_and_query(config: config_lib.RunConfig, version: int) -> Dict:
  """Starts the local server on loopback, asks it the demo's questions over gRPC, stops it."""
  from tfgrec import serving  # pylint: disable=g-import-not-at-top
  from tfgrec.serving import model_config  # pylint: disable=g-import-not-at-top
  models_config = model_config.write_models_config(config.export.base, config.export.name,
                                                   version)
  titles = _titles(config.graph_dir)
  by_title = {}
  for item, title in titles.items():
    by_title.setdefault(title, item)
  (heavy, heavy_n), (light, light_n) = _demo_users(config)
  liked = [by_title[t] for t in config.demo.new_user_titles if t in by_title]
  missing = [t for t in config.demo.new_user_titles if t not in by_title]
  if missing:
    print(f"   not in the catalog, left out of the new user's history: {', '.join(missing)}")
  new_item = config.demo.new_item
  serve = config.serve
  with serving.LocalModelServer(models_config, host=serve.host, port=serve.port) as server:
    target = server.address
    print(f"   local model server on {target} (models config {models_config}); "
          f"asking it over gRPC:")
    with serving.Client(target, config.export.name, timeout=serve.timeout) as client:
      questions = [(f"heavy user {heavy} ({heavy_n} known interactions)", heavy, []),
                   (f"light user {light} ({light_n} known interactions)", light, [])]
      if liked:
        questions.append(("a brand-new user who liked "
                          + "; ".join(titles[i] for i in liked), "new-user", liked))
      answers = client.recommend([q[1] for q in questions], [q[2] for q in questions],
                                 label="stable")
      why = client.explain([q[1] for q in questions], [a["items"] for a in answers],
                           [q[2] for q in questions], label="stable")
      for (heading, _, _), answer, because in zip(questions, answers, why):
        _print_answer(heading, answer["items"], answer["scores"], titles, because)
      nearest = client.nearest_to_new_items([new_item.title], [list(new_item.categories)],
                                            label="stable")[0]
      _print_answer(f"a new item, known only by its text: \"{new_item.title}\" "
                    f"({', '.join(new_item.categories)}); the catalog items nearest to it",
                    nearest["items"], nearest["scores"], titles)
      status = client.status()
  print(f"\n   server stopped (it served {config.export.name} version "
        f"{status[0]['version'] if status else version})")
  return {"outputs": models_config, "answers": len(answers) + 1}


def run(config: Optional[config_lib.RunConfig] = None, force: bool = False) -> int:
  """Runs the demo flow of `config` (default: the packaged demo); returns an exit code."""
  config = config or config_lib.load_config()
  flow = _Flow(force)
  print(f"tfgrec demo: data {config.data.source} -> {config.graph_dir} -> {config.run_dir} -> "
        f"{config.export.base}; checking inputs, text encoder, disk and port ...", flush=True)
  preflight(config)
  data_dir = config.data.raw_dir
  if config.data.source == "raw":
    print(f"\n== [1/{len(STAGES)}] data: your raw logs in {data_dir} (nothing to write)")
  else:
    flow.stage(1, "data", out_dir=data_dir, inputs=[], fingerprint=_fingerprint(config, "data"),
               body=lambda: _write_raw(config))
  flow.stage(2, "graph", out_dir=config.graph_dir, inputs=[data_dir],
             fingerprint=_fingerprint(config, "graph"), body=lambda: _build_graph(config))
  from tfgrec.train import layout as layout_lib  # pylint: disable=g-import-not-at-top
  layout = layout_lib.RunLayout(config.run_dir)
  flow.stage(3, "train", out_dir=config.run_dir, inputs=[config.graph_dir],
             fingerprint=_fingerprint(config, "train"), body=lambda: _train(config))
  flow.stage(4, "evaluate", out_dir=config.run_dir, inputs=[layout.best],
             fingerprint=_fingerprint(config, "evaluate"), body=lambda: _evaluate(config))
  # After training: the manifest it wrote (what export packages) is part of the fingerprint.
  exported = flow.stage(5, "export", out_dir=config.export.base, inputs=[layout.best],
                        fingerprint=_fingerprint(config, "export", layout.manifest),
                        body=lambda: _export(config))
  print(f"\n== [6/{len(STAGES)}] serve: local server + gRPC queries", flush=True)
  start = time.time()
  serve_and_query(config, exported["version"])
  print(f"   serve done in {_elapsed(time.time() - start)}")
  _summary(config, flow)
  return 0


def _summary(config: config_lib.RunConfig, flow: _Flow) -> None:
  from tfgrec.eval import report  # pylint: disable=g-import-not-at-top
  from tfgrec.serving import model_config  # pylint: disable=g-import-not-at-top
  from tfgrec.train import layout as layout_lib  # pylint: disable=g-import-not-at-top
  layout = layout_lib.RunLayout(config.run_dir)
  with open(layout.metrics, encoding="utf-8") as f:
    metrics = json.load(f)
  print(f"\n== test split, K = 20 (every model ranks the whole catalog)\n")
  print(report.headline_table(metrics, k=20))
  print(f"\nreport: {layout.report} (and its PNG figures)")
  print(f"model:  {config.export.base}/{config.export.name}/ (TF Serving layout); serve it with "
        f"`tfgrec serve --models-config "
        f"{os.path.join(config.export.base, model_config.MODELS_CONFIG)}`")
  print(f"tfgrec demo finished in {_elapsed(time.time() - flow.start)}")
