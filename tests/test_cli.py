"""The `tfgrec` command line, in process: data -> build-graph, help texts and error exits."""
import json
import os
import subprocess
import sys

import pytest

from tfgrec import cli
from tfgrec.data import contract

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_synthetic_then_build_graph(tmp_path, capsys):
  raw, graph = tmp_path / "raw", tmp_path / "graph"
  assert cli.main(["data", "synthetic", "--users", "30", "--items", "50", "--interactions",
                   "600", "--seed", "1", "--out", str(raw), "--format", "jsonl"]) == 0
  assert sorted(os.listdir(raw)) == ["interactions.jsonl", "items.jsonl"]
  assert cli.main(["build-graph", "--raw", str(raw), "--out", str(graph), "--num-shards", "2",
                   "--test-fraction", "0.2", "--direct_num_workers=1"]) == 0
  printed = capsys.readouterr().out
  assert "rows in         600" in printed and str(graph) in printed
  stats = json.loads((graph / "stats.json").read_text())
  assert stats["split"]["config"]["test_fraction"] == 0.2
  assert stats["tables"]["interactions"]["rows_in"] == 600


def test_data_contract_prints_the_contract(capsys):
  assert cli.main(["data", "contract"]) == 0
  assert json.loads(capsys.readouterr().out) == contract.contract_dict()


def test_missing_input_is_a_clear_error(tmp_path, capsys):
  code = cli.main(["build-graph", "--interactions", str(tmp_path / "nope.csv"), "--out",
                   str(tmp_path / "g")])
  assert code == 2
  assert "no file matches" in capsys.readouterr().err


def test_pseudonymize_without_salt_is_refused(tmp_path, capsys, monkeypatch):
  monkeypatch.delenv("TFGREC_PSEUDONYM_SALT", raising=False)
  (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\nu,i,1\n")
  code = cli.main(["build-graph", "--raw", str(tmp_path), "--out", str(tmp_path / "g"),
                   "--pseudonymize"])
  assert code == 2 and "TFGREC_PSEUDONYM_SALT" in capsys.readouterr().err


def test_unknown_option_outside_build_graph_is_refused():
  with pytest.raises(SystemExit):
    cli.main(["data", "contract", "--runner=DataflowRunner"])


def test_console_script_help_lists_the_commands():
  r = subprocess.run([sys.executable, "-m", "tfgrec.cli", "--help"], capture_output=True,
                     text=True, cwd=ROOT, timeout=120, check=True)
  for command in ("data", "build-graph", "demo"):
    assert command in r.stdout


def test_header_without_required_column_fails_before_the_pipeline(tmp_path, capsys):
  (tmp_path / "interactions.csv").write_text("user,item_id,timestamp\nu,i,1\n")
  code = cli.main(["build-graph", "--raw", str(tmp_path), "--out", str(tmp_path / "g")])
  err = capsys.readouterr().err
  assert code == 2 and "has no column 'user_id'" in err and "while running" not in err
