"""Benchmark: raw logs -> graph with the Beam job (DirectRunner) on synthetic data.

  .venv/bin/python benchmarks/bench_build_graph.py                       # 1M interactions
  .venv/bin/python benchmarks/bench_build_graph.py --sizes 250000 1000000 2000000 \
      --runner-args=--direct_num_workers=2 --runner-args=--direct_running_mode=multi_processing

For each size it writes synthetic CSV logs (users = items = size / 50), then runs
`tfgrec build-graph` in a fresh process and reports wall time, interactions per second end to end
(process start, TensorFlow import and output writing included) and the peak resident memory of the
largest process of the job (with multi_processing, the largest worker or the driver). The size of the graph file is printed next to it, so memory growth
can be read against the graph itself.

Current figures: BENCHMARKS.md, *Raw logs → graph*.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
  parser.add_argument("--runner-args", action="append", default=[],
                      help="Beam options for the job, e.g. --runner-args=--direct_num_workers=2")
  parser.add_argument("--workdir", default=None, help="where to write data (default: a temp dir)")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  tfgrec_bin = [sys.executable, "-m", "tfgrec.cli"]
  work = args.workdir or tempfile.mkdtemp(prefix="tfgrec-bench-")
  print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; "
        f"beam args: {' '.join(args.runner_args) or '(DirectRunner, in process)'}")
  print(f"{'interactions':>12} {'users':>8} {'items':>8} {'wall s':>8} {'rows/s':>9} "
        f"{'peak MB':>8} {'graph MB':>9}")
  for size in args.sizes:
    raw = os.path.join(work, f"raw-{size}")
    out = os.path.join(work, f"graph-{size}")
    n = max(size // 50, 10)
    if not os.path.exists(os.path.join(raw, "interactions.csv")):
      subprocess.run(tfgrec_bin + ["data", "synthetic", "--users", str(n), "--items", str(n),
                                   "--interactions", str(size), "--seed", str(args.seed),
                                   "--out", raw], check=True, capture_output=True, cwd=ROOT)
    # ru_maxrss of RUSAGE_CHILDREN is a running maximum over all children: measure each size in
    # its own short-lived wrapper process so that the numbers stay separate.
    wrapper = [sys.executable, "-c", (
        "import resource, subprocess, sys, time, json; t = time.time(); "
        "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
        "print(json.dumps({'wall': time.time() - t, 'rss_kb': "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")]
    cmd = wrapper + tfgrec_bin + ["build-graph", "--raw", raw, "--out", out] + args.runner_args
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode:
      sys.stderr.write(proc.stderr[-4000:])
      raise SystemExit("build-graph failed")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    with open(os.path.join(out, "stats.json")) as f:
      stats = json.load(f)
    assert stats["tables"]["interactions"]["rows_in"] == size
    graph_mb = os.path.getsize(os.path.join(out, "graph-00000-of-00001.tfrecord")) / 2**20
    print(f"{size:>12,} {n:>8,} {n:>8,} {result['wall']:>8.1f} "
          f"{size / result['wall']:>9,.0f} {result['rss_kb'] / 1024:>8.0f} {graph_mb:>9.1f}",
          flush=True)
    shutil.rmtree(out, ignore_errors=True)
  if not args.workdir:
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  main()
