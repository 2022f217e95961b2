"""Evaluation reports from small made-up metrics."""
import os

from tfgrec.eval import report

PNG = b"\x89PNG\r\n\x1a\n"


def _slice(recall, ndcg, users, **more):
  out = {"recall@20": recall, "ndcg@20": ndcg, "hr@20": 2 * recall, "mrr@20": ndcg / 2,
         "coverage@20": 0.5, "novelty@20": 3.0, "users": users}
  out.update(more)
  return out


METRICS = {
    "full model": {"all": _slice(0.21, 0.1234, 300), "cold_items": _slice(0.05, 0.02, 12),
                   "long_tail": _slice(0.09, 0.04, 200), "short_history": _slice(0.2, 0.1, 170)},
    "popularity": {"all": _slice(0.11, 0.0551, 300, **{"coverage@20": 0.05}),
                   "cold_items": _slice(0.0, 0.0, 12), "long_tail": _slice(0.0, 0.0, 200),
                   "short_history": _slice(0.12, 0.06, 170)},
    "ALS": {"all": _slice(0.18, 0.099, 300), "cold_items": _slice(0.0, 0.0, 0),
            "long_tail": _slice(0.11, 0.038, 200), "short_history": _slice(0.2, 0.096, 170)},
}
HISTORIES = {
    "full model": [{"loss": 5.1, "val_ndcg@20": 0.08, "val_recall@20": 0.15, "seconds": 3.0},
                   {"loss": 4.2, "val_ndcg@20": 0.11, "val_recall@20": 0.19, "seconds": 2.9},
                   {"loss": 3.9, "val_ndcg@20": 0.12, "val_recall@20": 0.2, "seconds": 2.9}],
}


def _is_png(path):
  with open(path, "rb") as f:
    return f.read(8) == PNG


def test_report_with_histories(tmp_path):
  path = report.write_report(str(tmp_path), METRICS, HISTORIES, title="Synthetic run",
                             notes=["300 users, 600 items", "seed 3"],
                             degrees={"users": [1, 5, 5, 40], "items": [0, 0, 3, 1, 9]})
  assert path == os.path.join(str(tmp_path), "report.md")
  with open(path, encoding="utf-8") as f:
    text = f.read()
  assert text.startswith("# Synthetic run\n")
  for name in METRICS:
    assert f"| {name} |" in text
  assert "**0.1234**" in text and "**0.0551**" not in text  # The best NDCG@20, in bold.
  assert "**0.5000**" in text  # Coverage: two models tie at the best value; both in bold.
  for name in ("cold_items", "long_tail", "short_history"):
    assert f"## Slice {name}" in text
  assert "- 300 users, 600 items\n- seed 3\n" in text
  for png in ("training_curves.png", "comparison.png", "slices.png",
              "degree_distribution.png", "cold_items.png"):
    assert f"]({png})" in text
    assert _is_png(tmp_path / png), png


def test_report_without_histories_has_no_training_curves(tmp_path):
  stale = tmp_path / "training_curves.png"
  stale.write_bytes(PNG)  # From an earlier report in the same folder.
  path = report.write_report(str(tmp_path), {"popularity": {"all": _slice(0.1, 0.05, 10)}})
  with open(path, encoding="utf-8") as f:
    text = f.read()
  assert "training_curves" not in text and "## Notes" not in text
  assert "degree_distribution" not in text and "cold_items.png" not in text
  assert not stale.exists()
  assert _is_png(tmp_path / "comparison.png") and _is_png(tmp_path / "slices.png")


def test_headline_table_is_fixed_width():
  table = report.headline_table(METRICS, k=20)
  lines = table.splitlines()
  assert lines[0].split() == ["model", "recall@20", "ndcg@20", "hr@20", "mrr@20", "coverage@20",
                              "novelty@20"]
  assert len(lines) == 1 + len(METRICS) and len({len(line) for line in lines}) == 1
  assert lines[1].startswith("full model ") and "0.1234" in lines[1]
  assert "3.00" in lines[1]  # Novelty with two decimals.
  # A metric the model lacks prints as '-'.
  assert report.headline_table({"m": {"all": {"recall@20": 0.5}}}).splitlines()[1].split() == [
      "m", "0.5000", "-", "-", "-", "-", "-"]


def test_report_shows_the_measured_tower_parts(tmp_path):
  assert report.read_tower_parts(str(tmp_path)) is None
  path = report.write_report(str(tmp_path), METRICS)
  assert "tower's parts" not in open(path).read()  # Not measured: no section.
  parts = {"graph_dir": "g/", "rows": [
      {"name": "tower (defaults)", "epochs": 20, "best_epoch": 15, "test_ndcg@20": 0.1541,
       "cold_ndcg@20": 0.0139, "two_stage_ndcg@20": 0.1894, "two_stage_cold_ndcg@20": 0.0876},
      {"name": "− text", "epochs": 11, "best_epoch": 6, "test_ndcg@20": 0.1456,
       "cold_ndcg@20": 0.0031, "two_stage_ndcg@20": 0.1838,
       "two_stage_cold_ndcg@20": float("nan")}]}
  written = report.write_tower_parts(str(tmp_path), parts["graph_dir"], parts["rows"])
  assert written == os.path.join(tmp_path, report.TOWER_PARTS_FILE)
  assert report.read_tower_parts(str(tmp_path))["rows"][0]["epochs"] == 20
  text = open(report.write_report(str(tmp_path), METRICS,
                                  tower_parts=report.read_tower_parts(str(tmp_path)))).read()
  section = text[text.index("## The graph tower's parts"):]
  assert "| tower (defaults) | 20 (15) | 0.1541 | 0.0139 | 0.1894 | 0.0876 |" in section
  assert "| − text | 11 (6) | 0.1456 | 0.0031 | 0.1838 | - |" in section
  # Tower-only rows (no ranker): no two-stage columns.
  only = {"rows": [{"name": "tower (defaults)", "epochs": 9, "best_epoch": 4,
                    "test_ndcg@20": 0.11, "cold_ndcg@20": 0.0}]}
  text = open(report.write_report(str(tmp_path), METRICS, tower_parts=only)).read()
  assert "two-stage NDCG@20" not in text and "| tower (defaults) | 9 (4) | 0.1100 | 0.0000 |" in text
