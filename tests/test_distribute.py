"""Training under MirroredStrategy moves the weights as one device does (every loss averaged over
the global batch, so the replicas' summed gradients are the single-device gradient)."""
import os
import subprocess
import sys

import numpy as np

from tfgrec import text
from tfgrec.beam import build_graph as job
from tfgrec.data import synthetic, writers

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "distributed_step.py")


def test_one_step_under_mirrored_strategy_equals_the_default_strategy(tmp_path):
  tables = synthetic.generate(synthetic.SyntheticConfig(users=30, items=60, interactions=600,
                                                        seed=5))
  raw = str(tmp_path / "raw")
  writers.write_tables(tables, raw, "csv")
  job.run(job.BuildGraphConfig(interactions=[os.path.join(raw, "interactions.csv")],
                               items=[os.path.join(raw, "items.csv")],
                               out=str(tmp_path / "graph")))
  words = {w for title in tables["items"]["title"] for w in str(title).lower().split()}
  text.write_tiny_checkpoint(str(tmp_path / "bert"), words=sorted(words))
  out = str(tmp_path / "deltas.npz")
  run = subprocess.run([sys.executable, SCRIPT, str(tmp_path / "graph"), str(tmp_path / "bert"),
                        out], capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr[-3000:]
  deltas = np.load(out)
  single, mirrored = deltas["default"], deltas["mirrored"]
  assert np.abs(single).max() > 1e-4  # The step changed the weights.
  # Equal up to float rounding (the replicas sum their gradients in another order).
  np.testing.assert_allclose(mirrored, single, rtol=1e-3, atol=1e-5)
