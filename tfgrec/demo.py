"""`tfgrec demo`: the main job on the embedded data, stage by stage.

Stages today: (1) write the embedded MovieLens sample in the raw-log contract, (2) build the graph
with the Beam job. Training and evaluation exist as commands (`tfgrec train`, `tfgrec evaluate`)
and join this flow with export and serving.
A stage whose outputs exist and are newer than its inputs is skipped (``--force`` redoes it).
"""
import json
import os
import time
from typing import Callable, List

_PENDING = ("export", "serve + query")


def _newest_mtime(paths: List[str]) -> float:
  times = []
  for path in paths:
    if os.path.isdir(path):
      for root, _, files in os.walk(path):
        times.extend(os.path.getmtime(os.path.join(root, f)) for f in files)
    elif os.path.exists(path):
      times.append(os.path.getmtime(path))
  return max(times) if times else 0.0


def _stage(number: int, name: str, marker: str, inputs: List[str], force: bool,
           body: Callable[[], None]) -> None:
  """Runs `body` unless `marker` exists and is newer than every input."""
  print(f"\n== stage {number}: {name}", flush=True)
  if not force and os.path.exists(marker) and os.path.getmtime(marker) >= _newest_mtime(inputs):
    print(f"   up to date, skipped ({marker}; --force redoes it)")
    return
  start = time.time()
  body()
  print(f"   {name}: {time.time() - start:.1f}s", flush=True)


def run(out: str = "out", force: bool = False) -> int:
  """Runs the demo flow into `out`; returns a process exit code."""
  from tfgrec.data import movielens, writers  # pylint: disable=g-import-not-at-top
  data_dir = os.path.join(out, "data")
  graph_dir = os.path.join(out, "graph")
  data_marker = os.path.join(data_dir, "interactions.csv")
  graph_marker = os.path.join(graph_dir, "stats.json")
  start = time.time()

  def convert():
    tables = movielens.load_embedded()
    paths = writers.write_tables(tables, data_dir, "csv")
    print(f"   {len(tables['interactions']):,} interactions, "
          f"{tables['interactions']['user_id'].nunique():,} users, {len(tables['items']):,} "
          f"items -> {', '.join(paths.values())}")

  def build():
    from tfgrec.beam import build_graph as job  # pylint: disable=g-import-not-at-top
    cfg = job.BuildGraphConfig(interactions=[os.path.join(data_dir, "interactions.csv")],
                               items=[os.path.join(data_dir, "items.csv")], out=graph_dir)
    stats = job.run(cfg)
    for line in job.summary_lines(stats, graph_dir):
      print("  " + line)

  _stage(1, "data: embedded MovieLens -> raw logs", data_marker, [], force, convert)
  _stage(2, "graph: Beam job (DirectRunner) -> GraphTensor", graph_marker, [data_dir], force,
         build)
  with open(graph_marker) as f:
    stats = json.load(f)
  g = stats["graph"]["node_sets"]
  print(f"\nThe graph is ready: {g['user']:,} users, {g['item']:,} items, "
        f"{g['category']:,} categories in {graph_dir}/")
  print(f"Next: tfgrec train --graph {graph_dir} --run {os.path.join(out, 'run')}, then "
        f"tfgrec evaluate --run {os.path.join(out, 'run')}.")
  print(f"Not in this version yet: {', '.join(_PENDING)} (the stages that follow the graph).")
  print(f"demo finished in {time.time() - start:.1f}s")
  return 0
