"""The README's line for the graph tower's parts: bench_tower_variants.py --report-run writes
the rows, and the run's next `tfgrec evaluate` shows them in its report. Each command runs as a
user runs it, in a fresh process, on a small synthetic graph."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from tfgrec import cli

pytestmark = pytest.mark.minutes(1.2)  # tests/conftest.py: long files start first.

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(words, cwd):
  proc = subprocess.run(words, cwd=cwd, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, (words, proc.stdout[-3000:], proc.stderr[-3000:])
  return proc


def test_measured_tower_parts_reach_the_runs_report(small_raw, tmp_path):
  graph = tmp_path / "graph"
  assert cli.main(["build-graph", "--raw", small_raw, "--out", str(graph),
                   "--direct_num_workers=1"]) == 0
  config = {"graph_dir": str(graph), "run_dir": str(tmp_path / "run"),
            "model": {"dim": 8, "heads": 2, "use_text": False},
            "tasks": {"alignment_weight": 0.0},
            "train": {"epochs": 2, "batch_size": 256, "patience": 0},
            "ranking": {"enabled": False}}
  (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
  tfgrec = [sys.executable, "-m", "tfgrec.cli"]
  # The run the report belongs to (tower only: the ranker is not what is measured here).
  _run(tfgrec + ["train", "--config", "c.yaml"], tmp_path)
  printed = _run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_tower_variants.py"),
                  "--config", "c.yaml", "--out", "parts", "--variant", "default",
                  "--variant", "experimental.model.branches=conv", "--report-run", "run"], tmp_path).stdout
  parts = json.loads((tmp_path / "run" / "tower_parts.json").read_text())
  assert parts["graph_dir"] == str(graph)
  assert [r["name"] for r in parts["rows"]] == ["tower (defaults)", "− attention"], printed
  for row in parts["rows"]:
    assert 0.0 <= row["test_ndcg@20"] <= 1.0 and row["epochs"] >= 1
  # The variants are never exported: trained with --no-final-fit, they have no artifacts, and
  # an export of one says how to make them.
  variant = tmp_path / "parts" / "variant_0"
  assert (variant / "best.json").exists() and not (variant / "manifest.json").exists()
  refused = subprocess.run(tfgrec + ["export", "--run", str(variant), "--base", "m"],
                           cwd=tmp_path, capture_output=True, text=True)
  assert refused.returncode != 0 and "tfgrec final-fit" in refused.stderr + refused.stdout
  # The run of the report was trained in full: its manifest lists the final fit's artifacts.
  assert "serving_arrays" in json.loads((tmp_path / "run" / "manifest.json").read_text())[
      "artifacts"]
  _run(tfgrec + ["evaluate", "--config", "c.yaml", "--baselines", ""], tmp_path)
  report = (tmp_path / "run" / "report.md").read_text()
  section = report[report.index("## The graph tower's parts"):]
  row = parts["rows"][1]
  assert f"| − attention | {row['epochs']} ({row['best_epoch']}) | {row['test_ndcg@20']:.4f}" in (
      section)
