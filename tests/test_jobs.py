"""The Beam job drivers (tfgrec.jobs, pipelines/*.py) and what setup.cfg packages."""
import os
import subprocess
import sys

import pytest

from tfgrec import _entry
from tfgrec.jobs import batch_recommend
from tfgrec.jobs import build_graph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fresh_env():
  return {k: v for k, v in os.environ.items()
          if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_USE_LEGACY_KERAS", "PYTHONPATH")}


def test_only_the_library_is_packaged():
  from setuptools.config import setupcfg  # pylint: disable=g-import-not-at-top
  options = setupcfg.read_configuration(os.path.join(ROOT, "setup.cfg"))["options"]
  packages = options["packages"]
  assert all(p == "tfgrec" or p.startswith("tfgrec.") for p in packages), packages
  assert {"tfgrec.jobs", "tfgrec.configs", "tfgrec.beam"} <= set(packages)
  assert options["package_data"] == {"tfgrec.configs": ["*.yaml"]}
  assert not os.path.exists(os.path.join(ROOT, "pipelines", "__init__.py"))


def test_driver_runs_the_job_in_process(small_raw, tmp_path, capsys):
  out = tmp_path / "graph"
  assert build_graph.main(["--raw", small_raw, "--out", str(out), "--num-shards", "2",
                           "--verbose", "--direct_num_workers=1"]) == 0
  printed = capsys.readouterr().out
  assert "runner: DirectRunner" in printed and "[build-graph] done" in printed
  assert (out / "stats.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["--raw", "{tmp}/nothing", "--out", "{tmp}/g"], "no interactions.* file"),
    (["--out", "{tmp}/g"], "give --raw DIR or --interactions PATTERN"),
])
def test_driver_bad_input_is_one_error_line_and_exit_2(tmp_path, capsys, argv, message):
  argv = [a.format(tmp=tmp_path) for a in argv]
  assert build_graph.main(argv) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err == [err[0]] and err[0].startswith("build_graph: error: ") and message in err[0]


def test_batch_driver_missing_model_exits_2(tmp_path, capsys):
  (tmp_path / "users.txt").write_text("u1\n")
  assert batch_recommend.main(["--model", str(tmp_path / "none"), "--users",
                               str(tmp_path / "users.txt"), "--output",
                               str(tmp_path / "recs.jsonl")]) == 2
  assert capsys.readouterr().err.startswith("batch_recommend: error: ")


def test_scripts_run_by_path_from_the_repository_root(tmp_path):
  for script in ("pipelines/build_graph.py", "pipelines/batch_recommend.py"):
    r = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True,
                       cwd=ROOT, env=_fresh_env(), timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "Beam pipeline options" in r.stdout and "--verbose" in r.stdout
  r = subprocess.run([sys.executable, "pipelines/build_graph.py", "--raw",
                      str(tmp_path / "nothing"), "--out", str(tmp_path / "g")],
                     capture_output=True, text=True, cwd=ROOT, env=_fresh_env(), timeout=300,
                     check=False)
  assert r.returncode == 2
  assert r.stderr.strip().splitlines() == [
      f"build_graph: error: --raw {tmp_path / 'nothing'}: no interactions.* file "
      "(csv, jsonl or parquet)"]


def test_runner_name():
  assert _entry.runner_name([]) == "DirectRunner"
  assert _entry.runner_name(["--runner=DataflowRunner"]) == "DataflowRunner"
  assert _entry.runner_name(["--project", "p", "--runner", "FlinkRunner"]) == "FlinkRunner"
