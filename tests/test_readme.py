"""Every command the README shows, run as a user runs it: copied from README.md, each in a fresh
subprocess, in a folder laid out as after `make demo` (a small synthetic log, the tiny test BERT,
so the export has `encode_items` and its tokenizer ops).

The commands are read from the README's ```sh blocks, not restated here: a command added to the
README is run by this test, or the test fails until it says why it cannot be. Local paths in them
(out/, my_logs/, users.txt, my.yaml, ...) are files of the work folder; the only substitutions
are the venv's path, the server's port (a free one instead of 8500) and the `--target` of queries
that rely on the default. Commands that need a cluster or a bucket (gs://, s3://, hdfs://,
Dataflow, Flink, Spark) are parsed by their real parsers instead; `make` runs CI itself and
`docker` is not on this machine.
"""
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from tfgrec import text

pytestmark = pytest.mark.minutes(6.5)  # tests/conftest.py: long files start first.

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BIN = os.path.dirname(sys.executable)
REMOTE = ("://", "DataflowRunner", "FlinkRunner", "SparkRunner")
SYNTHETIC = ["--users", "40", "--items", "80", "--interactions", "1600", "--seed", "1"]


def readme_commands():
  """The command lines of the README's ```sh blocks (continuations joined, comments dropped)."""
  with open(README, encoding="utf-8") as f:
    blocks = re.findall(r"```sh\n(.*?)```", f.read(), flags=re.S)
  commands = []
  for block in blocks:
    for line in block.replace("\\\n", " ").splitlines():
      words = shlex.split(line, comments=True)
      if words:
        commands.append(words)
  return commands


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run(words, cwd, timeout=600):
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # As a user's shell: the CLI quiets TensorFlow itself.
  start = time.time()
  proc = subprocess.run(words, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
  print(f"{time.time() - start:6.1f}s  {' '.join(words[1:])[:110]}")
  assert proc.returncode == 0, (words, proc.stdout[-3000:], proc.stderr[-3000:])
  assert "Traceback" not in proc.stderr, (words, proc.stderr[-3000:])
  return proc


def _local(words, port):
  """The README line as run here: the venv's executables, the test server's port."""
  program = {".venv/bin/tfgrec": os.path.join(BIN, "tfgrec"),
             "tfgrec": os.path.join(BIN, "tfgrec"), "python": sys.executable}[words[0]]
  rest = [w.replace("127.0.0.1:8500", f"127.0.0.1:{port}") for w in words[1:]]
  if rest[0] == "serve":
    rest += ["--port", str(port)]
  if rest[0] == "query" and "--target" not in rest:
    rest += ["--target", f"127.0.0.1:{port}"]
  return [program] + rest


def _parses(words):
  """A command for a cluster: its own parser (tfgrec's, or the driver's) and Beam's accept it."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  from tfgrec import cli  # pylint: disable=g-import-not-at-top
  if words[0] == "python":  # python -m tfgrec.jobs.X ... or python pipelines/X.py ...
    from tfgrec.jobs import batch_recommend, build_graph  # pylint: disable=g-import-not-at-top
    module, args = (words[2], words[3:]) if words[1] == "-m" else (words[1], words[2:])
    name = module.rsplit(".", 1)[-1] if words[1] == "-m" else (
        os.path.splitext(os.path.basename(module))[0])
    parser = {"build_graph": build_graph, "batch_recommend": batch_recommend}[name].build_parser()
  else:
    parser = cli.build_parser()
    args = words[1:]
  _, beam_args = parser.parse_known_args(args)
  options = PipelineOptions(beam_args).get_all_options(retain_unknown_options=True)
  assert options["runner"], words


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A folder as a user has it after `make demo`, with the files the README's lines name."""
  root = tmp_path_factory.mktemp("readme")
  tfgrec = os.path.join(BIN, "tfgrec")
  _run([tfgrec, "data", "synthetic", *SYNTHETIC, "--out", "my_logs"], root)
  _run([tfgrec, "data", "synthetic", *SYNTHETIC, "--format", "jsonl", "--out", "logs"], root)
  os.rename(root / "logs" / "interactions.jsonl", root / "logs" / "interactions-00000.jsonl")
  _run([tfgrec, "data", "synthetic", *SYNTHETIC, "--format", "parquet", "--out", "pq"], root)
  os.rename(root / "pq" / "items.parquet", root / "catalog.parquet")
  _run([tfgrec, "data", "contract"], root)
  items = pd.read_csv(root / "my_logs" / "items.csv")
  words = {w for title in items["title"] for w in str(title).lower().split()}
  text.write_tiny_checkpoint(str(root / "bert"), words=sorted(words))
  port = _free_port()
  with open(README, encoding="utf-8") as f:
    mine = yaml.safe_load(re.search(r"```yaml\n# my.yaml\n(.*?)```", f.read(), re.S).group(1))
  # The README's my.yaml, made small: the tiny BERT, a short run, a free port. Its outputs go to
  # runs/a, and out/ points there, so `--out runs/a` finds every stage up to date.
  mine.update({
      "graph_dir": "runs/a/graph", "run_dir": "runs/a/run",
      "text": {"checkpoint": str(root / "bert"), "max_length": 16},
      "model": {"dim": 16, "heads": 2},
      "train": {"epochs": 2, "batch_size": 1024, "patience": 0},
      "evaluate": {"baselines": ["popularity"]},
      "export": {"base": "runs/a/models", "k": 5},
      "serve": {"port": port, "timeout": 60.0},
      "ranking": {"sequence": {"epochs": 2, "dim": 16, "max_len": 20},
                  "ranker": {"epochs": 3, "ensemble": 1}, "ablations": False},
  })
  (root / "my.yaml").write_text(yaml.safe_dump(mine))
  (root / "my_run.yaml").write_text(yaml.safe_dump({
      "graph_dir": "out/graph", "run_dir": "runs/b",
      "text": {"checkpoint": str(root / "bert"), "max_length": 16},
      "model": {"dim": 16, "heads": 2, "use_text": False},
      "tasks": {"alignment_weight": 0.0}, "train": {"epochs": 1, "patience": 0},
      "ranking": {"enabled": False}}))
  os.makedirs(root / "runs" / "a")
  os.symlink(root / "runs" / "a", root / "out")
  users = pd.read_csv(root / "my_logs" / "interactions.csv")["user_id"].astype(str).unique()
  (root / "users.txt").write_text("\n".join(list(users[:4]) + ["someone-new"]) + "\n")
  return root, port


def _check(words, proc, root):
  """What each kind of command must have produced."""
  command = words[1] if words[0] != "python" else words[-1]
  args = words[2:]

  def value(flag):
    return args[args.index(flag) + 1] if flag in args else None

  if command == "demo":
    assert "== [6/6] serve" in proc.stdout and "server stopped" in proc.stdout, proc.stdout
  elif command == "build-graph":
    out = root / value("--out")
    stats = json.loads((out / "stats.json").read_text())
    assert stats["interactions"]["accepted"] > 0 and list(out.glob("graph-*.tfrecord"))
  elif command == "train":
    run = value("--run") or ("runs/b" if value("--config") == "my_run.yaml" else "runs/a/run")
    assert json.loads((root / run / "best.json").read_text())["epoch"] >= 1
  elif command == "evaluate":
    from tfgrec.train import evaluate  # pylint: disable=g-import-not-at-top
    run = root / value("--run")
    metrics = json.loads((run / "metrics.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    names = (value("--baselines") or "").split(",") if value("--baselines") else (
        config["evaluate"]["baselines"])
    expected = {evaluate.FULL_MODEL} | {evaluate.NAMES[n] for n in names}
    if config["ranking"]["enabled"]:  # The two stages first, then each source alone.
      assert list(metrics)[0] == evaluate.TWO_STAGE, list(metrics)
      sources = {m for m in metrics if m.startswith("source: ")}
      assert {"source: ease", "source: sequence", "source: trending"} <= sources, list(metrics)
      ablations = {m for m in metrics if m.startswith("two-stage − ")}
      assert bool(ablations) == config["ranking"]["ablations"], list(metrics)
      expected |= {evaluate.TWO_STAGE} | sources | ablations
    assert set(metrics) == expected, list(metrics)
    for per_model in metrics.values():
      assert set(per_model) == {"all", "cold_items", "long_tail", "short_history"}
    assert (run / "report.md").exists() and (run / "comparison.png").read_bytes()[:4] == (
        b"\x89PNG")
  elif command == "export":
    path = re.search(r"-> (\S+) \(signatures", proc.stdout).group(1)
    assert os.path.exists(os.path.join(root, path, "saved_model.pb")), proc.stdout
    assert "encode_items" in proc.stdout
  elif command == "query":
    if "--json" in args:
      answer = json.loads(proc.stdout)
      assert answer["items"] and len(answer["items"]) == len(answer["scores"])
    else:
      assert re.search(r"^\s+1\s+\S+\s+-?\d+\.\d+", proc.stdout, re.M), proc.stdout
  elif command == "recommend":
    records = [json.loads(line) for line in (root / value("--output")).read_text().splitlines()]
    assert len(records) == 5 and all(r["items"] for r in records)
    if "--explain" in args:
      assert all(len(r["because"]) == len(r["items"]) for r in records)
  else:
    raise AssertionError(f"no check for README command {words}")


def test_every_readme_command_runs_in_a_fresh_process(workdir):
  root, port = workdir
  commands = readme_commands()
  kinds = {tuple(w[:2]) for w in commands}
  assert (".venv/bin/tfgrec", "recommend") in kinds and ("make", "demo") in kinds  # Parsed.
  server = None
  ran, parsed = [], []
  try:
    for words in commands:
      if words in ran:
        continue  # The same line shown twice (serving, then deploying) runs once.
      if words[0] in ("make", "docker"):
        continue  # `make` is CI and the slow real demo; docker is not on this machine.
      if any(marker in w for w in words for marker in REMOTE):
        _parses(words)
        parsed.append(words)
        continue
      local = _local(words, port)
      if local[1] == "serve":
        server = subprocess.Popen(local, cwd=root, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = server.stdout.readline()
        assert "[serve] gRPC on" in line, (line, server.stderr.read() if server.poll() else "")
        ran.append(words)
        continue
      proc = _run(local, root)
      _check(words, proc, root)
      ran.append(words)
  finally:
    if server is not None:
      server.terminate()
      server.wait(timeout=60)
  assert server is not None and server.returncode == 0  # SIGTERM: a graceful stop.
  assert len(parsed) >= 4 and len(ran) >= 12, (ran, parsed)

  # The Beam batch job the README names for Dataflow, here with DirectRunner on the same export
  # (tests/test_jobs.py runs the pipelines/ scripts by path).
  _run([sys.executable, "-m", "tfgrec.jobs.batch_recommend", "--model", "out/models/tfgrec",
        "--users", "users.txt", "--k", "5", "--output", "beam_recs.jsonl", "--explain"], root)
  records = [json.loads(line) for line in (root / "beam_recs.jsonl").read_text().splitlines()]
  assert sorted(r["user_id"] for r in records) == sorted((root / "users.txt").read_text().split())
  assert all(len(r["items"]) == 5 and len(r["because"]) == 5 for r in records)
