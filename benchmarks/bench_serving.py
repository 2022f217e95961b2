"""Serving latency: the local model server on loopback, `recommend` with K = 20.

  python benchmarks/bench_serving.py --model out/models/tfgrec --graph out/graph
  python benchmarks/bench_serving.py --run out/bench_run --graph out/graph   # exports first

Scenarios: batch 1 from one client thread, batch 1 from 8 threads, batch 32 from one thread.
Each request mixes known users (80%) and new users given a 10-item history (20%). Prints p50 /
p99 latency per request and throughput, and the same signature called in process (no gRPC) as
the floor, and `encode_items` (one new title through BERT and the tower) in process. Nothing leaves 127.0.0.1; the server stops at the end.
"""
import tfgrec  # noqa: F401  # Sets TF_USE_LEGACY_KERAS before TensorFlow loads.

import argparse
import os
import platform
import tempfile
import threading
import time
from typing import List

import numpy as np


def _requests(users: List[str], items: List[str], batch: int, count: int, seed: int):
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    ids, histories = [], []
    for _ in range(batch):
      if rng.random() < 0.8:
        ids.append(str(rng.choice(users)))
        histories.append([])
      else:
        ids.append(f"new-{rng.integers(1 << 30)}")
        histories.append([str(i) for i in rng.choice(items, 10, replace=False)])
    out.append((ids, histories))
  return out


def _run(client, requests, threads: int):
  """Sends `requests` from `threads` threads; returns (latencies in s, wall seconds)."""
  latencies: List[float] = []
  lock = threading.Lock()
  chunks = [requests[i::threads] for i in range(threads)]

  def work(chunk):
    local = []
    for users, histories in chunk:
      start = time.perf_counter()
      client.recommend(users, histories)
      local.append(time.perf_counter() - start)
    with lock:
      latencies.extend(local)

  workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
  start = time.perf_counter()
  for w in workers:
    w.start()
  for w in workers:
    w.join()
  return np.array(latencies), time.perf_counter() - start


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--model", help="exported model directory (<base>/<name>)")
  parser.add_argument("--run", help="a trained run to export first (instead of --model)")
  parser.add_argument("--graph", default="out/graph", help="graph dir (user and item ids)")
  parser.add_argument("--requests", type=int, default=2000, help="batch-1 requests/scenario")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfgrec import serving  # pylint: disable=g-import-not-at-top
  from tfgrec import saved_models  # pylint: disable=g-import-not-at-top

  work = tempfile.mkdtemp(prefix="bench-serving-")
  if args.run:
    from tfgrec import config as config_lib  # pylint: disable=g-import-not-at-top
    from tfgrec.train import exporter  # pylint: disable=g-import-not-at-top
    start = time.time()
    config = config_lib.load_config(os.path.join(args.run, "config.yaml"))
    path = exporter.export_run(config, work, "tfgrec", k=20)
    print(f"exported {args.run} -> {path} in {time.time() - start:.1f}s")
    model_dir = os.path.dirname(path)
  elif args.model:
    model_dir = os.path.abspath(args.model)
  else:
    parser.error("give --model or --run")
  version = os.path.basename(saved_models.version_dir(model_dir))
  config_path = os.path.join(work, "models.config")
  with open(config_path, "w") as f:
    f.write(f'model_config_list {{ config {{ name: "tfgrec" base_path: "{model_dir}" '
            f'model_platform: "tensorflow" model_version_policy {{ specific {{ versions: '
            f'{version} }} }} }} }}\n')
  with open(os.path.join(args.graph, "vocab", "user.txt")) as f:
    users = f.read().split()
  with open(os.path.join(args.graph, "vocab", "item.txt")) as f:
    items = f.read().split()

  print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"TensorFlow {tf.__version__}; model {model_dir} version {version}")
  rows = []
  with serving.LocalModelServer(config_path, port=0, workers=16) as server:
    with serving.Client(f"127.0.0.1:{server.port}", "tfgrec", timeout=30) as client:
      _run(client, _requests(users, items, 1, 100, args.seed), 1)  # Warm up.
      n = args.requests
      for name, batch, threads, count in (("batch 1, 1 thread", 1, 1, n),
                                          ("batch 1, 8 threads", 1, 8, n),
                                          ("batch 32, 1 thread", 32, 1, max(n // 10, 20))):
        latencies, wall = _run(client, _requests(users, items, batch, count, args.seed + 1),
                               threads)
        rows.append((name, np.percentile(latencies, 50) * 1e3,
                     np.percentile(latencies, 99) * 1e3, count / wall, count * batch / wall))
  # The in-process floor: the same SavedModel, no gRPC.
  model = saved_models.load(os.path.join(model_dir, version))
  recommend = model.signatures["recommend"]
  floor = []
  for ids, histories in _requests(users, items, 1, 500, args.seed + 2):
    start = time.perf_counter()
    recommend(user_id=tf.constant(ids), history=tf.constant([h or [""] for h in histories]))
    floor.append(time.perf_counter() - start)
  floor = np.array(floor[50:])
  encode = []
  if "encode_items" in model.signatures:  # A new item through BERT and the tower.
    signature = model.signatures["encode_items"]
    extra = {}  # Exports whose graph has item attributes also read "column=value" strings.
    if "attributes" in signature.structured_input_signature[1]:
      extra["attributes"] = tf.constant([["year=2001"]])
    for i in range(60):
      start = time.perf_counter()
      signature(title=tf.constant([f"A new title {i}"]),
                categories=tf.constant([["Comedy", "Drama"]]), **extra)
      encode.append(time.perf_counter() - start)
    encode = np.array(encode[10:])
  print("\n| scenario | p50 ms | p99 ms | requests/s | users/s |")
  print("|---|---:|---:|---:|---:|")
  for name, p50, p99, qps, ups in rows:
    print(f"| {name} | {p50:.2f} | {p99:.2f} | {qps:.0f} | {ups:.0f} |")
  print(f"| in process, batch 1 (no gRPC) | {np.percentile(floor, 50) * 1e3:.2f} | "
        f"{np.percentile(floor, 99) * 1e3:.2f} | {1 / floor.mean():.0f} | "
        f"{1 / floor.mean():.0f} |")
  if len(encode):
    print(f"| in process, encode_items, 1 title | {np.percentile(encode, 50) * 1e3:.2f} | "
          f"{np.percentile(encode, 99) * 1e3:.2f} | {1 / encode.mean():.0f} | - |")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
