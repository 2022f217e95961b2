"""Graph, run, report and model directories on a filesystem that is not local disk.

TensorFlow's in-memory filesystem (ram://) goes through the same tf.io.gfile code path as a
bucket (gs://, s3://): nothing here may assume os.* file calls.
"""
import json
import os
import uuid

import numpy as np
import pytest

from tfgrec import batch
from tfgrec import config as config_lib
from tfgrec import saved_models
from tfgrec import storage
from tfgrec.train import exporter
from tfgrec.train import evaluate
from tfgrec.train import trainer

from tests import test_train

pytestmark = pytest.mark.minutes(1.3)  # tests/conftest.py: long files start first.

tf = storage.tf
workdir = test_train.workdir  # Module-scoped fixtures: the synthetic graph and tiny BERT.


def _copy_tree(src: str, dst: str) -> None:
  for root, _, files in os.walk(src):
    for name in files:
      rel = os.path.relpath(os.path.join(root, name), src)
      target = storage.join(dst, rel)
      storage.makedirs(storage.dirname(target))
      tf.io.gfile.copy(os.path.join(root, name), target)


def test_small_files_round_trip_and_writes_are_whole():
  root = f"ram://storage-{uuid.uuid4().hex[:8]}"
  storage.write_json(storage.join(root, "a", "b.json"), {"x": 1})
  assert storage.read_json(storage.join(root, "a", "b.json")) == {"x": 1}
  assert storage.read_json(storage.join(root, "missing.json"), default=7) == 7
  storage.save_npz(storage.join(root, "e.npz"), user=np.arange(3.0))
  np.testing.assert_array_equal(storage.load_npz(storage.join(root, "e.npz"))["user"],
                                [0.0, 1.0, 2.0])
  assert storage.listdir(root) == ["a", "e.npz"]
  assert storage.has_files(storage.join(root, "a"))
  assert storage.join("gs://b/x", "y") == "gs://b/x/y"
  assert storage.dirname("gs://b/x/y") == "gs://b/x"


def test_local_writes_leave_no_temporary_file(tmp_path):
  storage.write_text(str(tmp_path / "f.txt"), "hello")
  assert os.listdir(tmp_path) == ["f.txt"]
  assert (tmp_path / "f.txt").read_text() == "hello"


def test_publish_on_an_object_store_copies_saved_model_pb_last(monkeypatch):
  root = f"ram://publish-{uuid.uuid4().hex[:8]}"
  tmp = storage.temp_dir_beside(storage.join(root, "3"))
  assert not storage.basename(tmp).isdigit()  # TF Serving ignores non-integer folders.
  for rel in ("saved_model.pb", "variables/variables.index", "variables/variables.data-0",
              "assets.extra/tf_serving_warmup_requests"):
    storage.write_text(storage.join(tmp, rel), rel)
  copied = []
  real_copy = tf.io.gfile.copy

  def recording_copy(src, dst, overwrite=False):
    copied.append(storage.basename(dst))
    return real_copy(src, dst, overwrite=overwrite)

  monkeypatch.setattr(tf.io.gfile, "copy", recording_copy)
  storage.publish_dir(tmp, storage.join(root, "3"))
  assert copied[-1] == "saved_model.pb" and len(copied) == 4
  assert storage.read_text(storage.join(root, "3", "variables", "variables.index")) == (
      "variables/variables.index")
  assert saved_models.versions(root) == [3]
  with pytest.raises(FileExistsError):
    storage.publish_dir(storage.temp_dir_beside(storage.join(root, "3")),
                        storage.join(root, "3"))


def test_train_evaluate_export_recommend_on_ram_filesystem(workdir, tmp_path):
  root = f"ram://tfgrec-{uuid.uuid4().hex[:8]}"
  _copy_tree(str(workdir / "graph"), storage.join(root, "graph"))
  config = config_lib.load_config(None, {
      "graph_dir": storage.join(root, "graph"), "run_dir": storage.join(root, "run"),
      "text": {"checkpoint": str(workdir / "bert"), "max_length": 16, "fine_tune": "off"},
      "model": {"dim": 16, "heads": 2, "rounds": 1},
      "train": {"epochs": 2, "batch_size": 2048, "patience": 0},
      "ranking": {"sequence": {"epochs": 1, "dim": 8, "max_len": 10}, "ranker": {"epochs": 2, "ensemble": 1}, "ablations": False},
  })
  result = trainer.train(config, progress=False)
  run = config.run_dir
  for name in ("config.yaml", "best.json", "history.json", "embeddings.npz",
               f"checkpoints/best-{result.best['epoch']:04d}/weights.index"):
    assert storage.exists(storage.join(run, name)), name
  assert result.best["epoch"] in (1, 2)
  assert storage.load_npz(storage.join(run, "embeddings.npz"))["item"].shape[1] == 16
  assert config_lib.load_config(storage.join(run, "config.yaml")) == config
  assert storage.exists(storage.join(root, "text_cache"))  # Beside the graph, not local.

  metrics = evaluate.evaluate_run(config, baselines=["popularity"], progress=False)
  assert json.loads(storage.read_text(storage.join(run, "metrics.json"))) == metrics
  assert storage.exists(storage.join(run, "report.md"))
  assert storage.exists(storage.join(run, "comparison.png"))

  path = exporter.export_run(config, storage.join(root, "models"), "recs", k=5)
  assert path == storage.join(root, "models", "recs", "1")
  assert storage.listdir(storage.join(root, "models", "recs")) == ["1"]  # No temporary left.
  users = storage.join(root, "users.txt")
  user_ids = storage.read_text(storage.join(root, "graph", "vocab", "user.txt")).split()
  storage.write_lines(users, user_ids[:3] + ["someone-new"])
  output = storage.join(root, "out", "recs.jsonl")
  counts = batch.recommend_file(storage.join(root, "models", "recs"), users, output, k=5,
                                progress=False)
  records = [json.loads(line) for line in storage.read_text(output).splitlines()]
  assert counts["written"] == len(records) == 4
  assert [r["user_id"] for r in records] == user_ids[:3] + ["someone-new"]
  assert all(len(r["items"]) == 5 for r in records)
  assert not os.path.exists("ram:")  # Nothing went to a local folder named after the URL.
