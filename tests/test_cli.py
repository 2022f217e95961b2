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
                   "600", "--seed", "1", "--release-fraction", "0.2", "--end-days", "7",
                   "--out", str(raw), "--format", "jsonl"]) == 0
  assert sorted(os.listdir(raw)) == ["interactions.jsonl", "items.jsonl", "users.jsonl"]
  assert cli.main(["build-graph", "--raw", str(raw), "--out", str(graph), "--num-shards", "2",
                   "--test-fraction", "0.2", "--direct_num_workers=1"]) == 0
  printed = capsys.readouterr().out
  assert "rows in         600" in printed and str(graph) in printed
  stats = json.loads((graph / "stats.json").read_text())
  assert stats["split"]["config"]["test_fraction"] == 0.2
  assert stats["tables"]["interactions"]["rows_in"] == 600
  # The synthetic users' age group and the items' brand and price are attribute node sets.
  assert stats["tables"]["users"]["accepted"] == 30
  assert stats["graph"]["attributes"]["users"] == {"age_group": "categorical"}
  assert stats["graph"]["attributes"]["items"]["price"] == "numeric"
  # Items released while the log runs carry their release time, a numeric attribute too.
  assert stats["graph"]["attributes"]["items"]["released"] == "numeric"


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


# Start-up lines of TensorFlow that read like failures on a CPU machine (tfgrec/_entry.py).
NOISE = ("cuInit", "oneDNN", "absl::InitializeLog", "cudart_stub", "cpu_feature_guard")


def fresh_env():
  """The environment of a new shell: no log level of ours or of conftest.py."""
  return {k: v for k, v in os.environ.items()
          if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_USE_LEGACY_KERAS")}


def test_help_imports_neither_tensorflow_nor_beam():
  commands = ([], ["data", "synthetic"], ["build-graph"], ["train"], ["evaluate"], ["export"],
              ["serve"], ["query"], ["recommend"], ["demo"])
  code = f"""
import json, sys
from tfgrec import cli
for command in {commands!r}:
  try:
    cli.main(command + ["--help"])
  except SystemExit as e:
    assert e.code == 0, (command, e.code)
print(json.dumps({{m: m in sys.modules for m in ("tensorflow", "apache_beam")}}))
"""
  r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                     env=fresh_env(), timeout=120, check=False)
  assert r.returncode == 0, r.stderr
  assert json.loads(r.stdout.strip().splitlines()[-1]) == {
      "tensorflow": False, "apache_beam": False}
  assert "usage: tfgrec build-graph" in r.stdout and not r.stderr


def test_parser_constants_equal_their_sources():
  from tfgrec import _cli_constants as constants  # pylint: disable=g-import-not-at-top
  from tfgrec.data import prepare  # pylint: disable=g-import-not-at-top
  from tfgrec.data.attributes import AttributeConfig  # pylint: disable=g-import-not-at-top
  from tfgrec.train import evaluate  # pylint: disable=g-import-not-at-top
  split = prepare.SplitConfig()
  assert constants.FORMATS == contract.FORMATS
  assert (constants.VALIDATION_FRACTION, constants.TEST_FRACTION, constants.MIN_INTERACTIONS,
          constants.SPLIT_SEED) == (split.validation_fraction, split.test_fraction,
                                    split.min_interactions, split.seed)
  assert constants.SALT_ENV == prepare.SALT_ENV
  assert constants.BASELINES is evaluate.BASELINES  # Its one home.
  attributes = AttributeConfig()
  assert (constants.ATTRIBUTE_BUCKETS, constants.ATTRIBUTE_MIN_COUNT,
          constants.ATTRIBUTE_MAX_VALUES) == (attributes.buckets, attributes.min_count,
                                              attributes.max_values)


def test_a_command_prints_no_tensorflow_startup_noise(small_raw, tmp_path):
  # build-graph imports TensorFlow (and Beam), in a process started like a user's shell does.
  r = subprocess.run([sys.executable, "-m", "tfgrec.cli", "build-graph", "--raw", small_raw,
                      "--out", str(tmp_path / "graph"), "--num-shards", "1"],
                     capture_output=True, text=True, cwd=str(tmp_path), env=fresh_env(),
                     timeout=300, check=False)
  assert r.returncode == 0, r.stderr
  assert "[build-graph] done" in r.stdout
  noisy = [line for line in r.stderr.splitlines() if any(n in line for n in NOISE)]
  assert not noisy, r.stderr


def test_verbose_is_accepted_before_and_after_the_command(capsys):
  assert cli.main(["-v", "data", "contract"]) == 0
  assert cli.main(["data", "contract", "--verbose"]) == 0
  assert cli.main(["--verbose", "data", "contract", "-v"]) == 0
  capsys.readouterr()
  args, _ = cli.build_parser().parse_known_args(["data", "contract"])
  assert args.verbose is False
  args, _ = cli.build_parser().parse_known_args(["-v", "data", "contract"])
  assert args.verbose is True


def test_stderr_filter_keeps_all_but_the_noise():
  from tfgrec import _entry  # pylint: disable=g-import-not-at-top
  lines = [
      "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
      "I0000 00:00:1796131911.027095    3199 cudart_stub.cc:31] Could not find cuda drivers on "
      "your machine, GPU will not be used.",
      "I0000 00:00:1.0  1 port.cc:153] oneDNN custom operations are on. You may see slightly "
      "different numerical results. To turn them off, set `TF_ENABLE_ONEDNN_OPTS=0`.",
      "UserWarning: something the user should see",
  ]
  assert [_entry.is_noise(line) for line in lines] == [True, True, True, False]


def test_compute_commands_turn_the_graph_optimizer_off_unless_asked():
  # A fresh process each: the setting is process-wide (and this test process has it off).
  script = """
from tfgrec import _entry
import tensorflow as tf
turned_off = _entry.configure_graph_optimizer()
print(turned_off, tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer"))
"""
  def run(value):
    env = dict(os.environ)
    env.pop("TFGREC_GRAPH_OPTIMIZER", None)
    if value is not None:
      env["TFGREC_GRAPH_OPTIMIZER"] = value
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)

  assert run(None).stdout.split() == ["True", "True"]
  assert run("on").stdout.split() == ["False", "False"]
  bad = run("sometimes")
  assert bad.returncode != 0 and "TFGREC_GRAPH_OPTIMIZER must be 'on' or 'off'" in bad.stderr
  assert set(cli._GRAPH_OPTIMIZER_OFF) == {"train", "final-fit", "evaluate", "export", "demo"}  # pylint: disable=protected-access


def test_quiet_start_drops_tensorflows_retracing_warning_only():
  # A fresh process each: the filter is process-wide. Ten functions traced once each, as the
  # evaluation's drop-one ablations do, make TensorFlow warn of excessive retracing.
  script = """
import logging, sys
from tfgrec import _entry
_entry.quiet_start(verbose=sys.argv[1] == "verbose")
import tensorflow as tf
for n in range(10):
  tf.function(lambda x: x * 2.0)(tf.zeros([n + 1]))
logging.getLogger("tensorflow").warning("a warning the user should see")
"""
  def run(mode):
    return subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                          timeout=300).stderr

  quiet, verbose = run("quiet"), run("verbose")
  assert "triggered tf.function retracing" in verbose
  assert "triggered tf.function retracing" not in quiet
  assert "a warning the user should see" in quiet
