"""Evaluation reports: a Markdown page with tables and figures, and the CLI's plain-text table.

``metrics[model][slice][metric]`` holds ``metrics.evaluate`` results per model and slice (slices
as ``slices.evaluate_slices`` names them; "all" is the headline). ``histories[model]`` is a list
of per-epoch dicts (keys like "loss", "val_ndcg@20", "seconds"). `write_report` writes into
``out_dir``:

* report.md: the headline table (slice "all": Recall, NDCG, HR, MRR, coverage and novelty at K,
  the best value of each column in bold), a table per other slice (Recall and NDCG at K, users),
  the notes and the figures;
* comparison.png: one panel per headline metric (Recall, NDCG, HR, MRR, coverage, novelty at
  K), a bar per model on slice "all" (the first model, the full model, highlighted);
* cold_items.png: Recall@K and NDCG@K per model on the cold-item slice, when there is one;
* slices.png: NDCG@K of each model on each slice;
* training_curves.png: loss and validation NDCG@K per epoch of every model with a history; not
  written (and not linked) without one;
* degree_distribution.png: how many users (items) have d training interactions, log-log, when
  the degrees are given.

The graph tower's parts are measured by whole trainings, one per part left out
(`benchmarks/bench_tower_variants.py --report-run RUN`), far too long for every evaluation: the
script writes their rows to ``<run>/tower_parts.json`` (TOWER_PARTS_FILE) and the run's next
report shows them as a table (`read_tower_parts`).

Figures are drawn on matplotlib's Agg canvas through the object API, without pyplot: writing a
report changes no global matplotlib state (backend, open figures) and leaves no figure open.
"""
import math
import os
from typing import Dict, List, Optional, Sequence

from tfgrec import storage

Metrics = Dict[str, Dict[str, Dict[str, float]]]
Histories = Dict[str, List[Dict[str, float]]]

HEADLINE = ("recall", "ndcg", "hr", "mrr", "coverage", "novelty")
_NAMES = {"recall": "Recall", "ndcg": "NDCG", "hr": "HR", "mrr": "MRR", "coverage": "Coverage",
          "novelty": "Novelty"}
_SLICES = {
    "all": "every user with a held-out item",
    "cold_items": "held-out items without a training interaction",
    "long_tail": "held-out items outside the most popular head",
    "short_history": "users with a short training history",
}
_PNG_DPI = 120
TOWER_PARTS_FILE = "tower_parts.json"
# Columns of the tower-parts table: (row key, header).
_TOWER_PART_COLUMNS = (("test_ndcg@20", "tower alone NDCG@20"),
                       ("cold_ndcg@20", "tower alone, cold slice"),
                       ("two_stage_ndcg@20", "two-stage NDCG@20"),
                       ("two_stage_cold_ndcg@20", "two-stage, cold slice"))


def _fmt(metric: str, value: Optional[float]) -> str:
  if value is None or math.isnan(float(value)):
    return "-"
  if metric == "users":
    return str(int(value))
  return f"{value:.2f}" if metric.startswith("novelty") else f"{value:.4f}"


def _header(key: str) -> str:
  """'ndcg@20' -> 'NDCG@20'; keys without a cut-off stay as they are."""
  metric, at, k = key.partition("@")
  return _NAMES.get(metric, metric) + at + k


def _slice_names(metrics: Metrics) -> List[str]:
  """Slices of any model: the known ones in their usual order, then the others as they come."""
  seen = [s for per_model in metrics.values() for s in per_model]
  known = [s for s in _SLICES if s in seen]
  return known + [s for s in dict.fromkeys(seen) if s not in _SLICES]


def headline_table(metrics: Metrics, k: int = 20) -> str:
  """Plain-text table, fixed-width columns: one row per model, slice "all", HEADLINE at k."""
  keys = [f"{m}@{k}" for m in HEADLINE]
  width = max([len("model")] + [len(name) for name in metrics])
  widths = [max(len(key), 7) for key in keys]
  lines = [f"{'model':<{width}}  " + "  ".join(f"{key:>{w}}" for key, w in zip(keys, widths))]
  for name, per_slice in metrics.items():
    row = per_slice.get("all", {})
    lines.append(f"{name:<{width}}  " + "  ".join(
        f"{_fmt(key, row.get(key)):>{w}}" for key, w in zip(keys, widths)))
  return "\n".join(lines)


def _markdown_table(metrics: Metrics, slice_name: str, keys: Sequence[str],
                    bold: Sequence[str]) -> List[str]:
  """Markdown rows for one slice: a column per key; the best value of each `bold` key in bold."""
  rows = {name: per_slice.get(slice_name, {}) for name, per_slice in metrics.items()}
  best = {}
  for key in bold:
    values = [r[key] for r in rows.values()  # Models evaluated on no user do not compete.
              if r.get(key) is not None and not math.isnan(float(r[key]))
              and r.get("users", 1) > 0]
    if values:
      best[key] = _fmt(key, max(values))
  header = ["model"] + [_header(key) for key in keys]
  lines = ["| " + " | ".join(header) + " |",
           "|---|" + "|".join("---:" for _ in keys) + "|"]
  for name, row in rows.items():
    cells = [name.replace("|", "\\|")]
    for key in keys:
      text = _fmt(key, row.get(key))
      cells.append(f"**{text}**" if key in best and text == best[key] else text)
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def write_tower_parts(run_dir: str, graph_dir: Optional[str], rows: Sequence[Dict]) -> str:
  """Writes the measured tower parts (bench_tower_variants.py's rows) to the run's
  tower_parts.json; returns its path."""
  path = os.path.join(run_dir, TOWER_PARTS_FILE)
  storage.write_json(path, {"graph_dir": graph_dir, "rows": list(rows)})
  return path


def read_tower_parts(run_dir: str) -> Optional[Dict]:
  """The run's tower_parts.json ({"graph_dir", "rows": [...]}, bench_tower_variants.py), or
  None when the parts have not been measured for it."""
  path = os.path.join(run_dir, TOWER_PARTS_FILE)
  return storage.read_json(path) if storage.exists(path) else None


def _tower_parts_table(parts: Dict) -> List[str]:
  """Markdown lines: one row per whole training (the tower's defaults first, then one part
  left out each), the columns the rows have."""
  rows = parts.get("rows") or []
  columns = [(key, head) for key, head in _TOWER_PART_COLUMNS
             if any(key in row for row in rows)]
  lines = [f"Whole trainings on {parts.get('graph_dir', 'this graph')}, one tower part left out "
           "each (`benchmarks/bench_tower_variants.py`); test split, the tower with its query "
           "picked on validation.", "",
           "| tower | epochs (best) | " + " | ".join(head for _, head in columns) + " |",
           "|---|---:|" + "|".join("---:" for _ in columns) + "|"]
  for row in rows:
    cells = [str(row.get("name", row.get("variant", "?"))).replace("|", "\\|"),
             f"{row.get('epochs', '-')} ({row.get('best_epoch', '-')})"]
    cells += [_fmt(key, row.get(key)) for key, _ in columns]
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1):
  """A Figure on an Agg canvas (no pyplot) and its axes (a flat list, row by row)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(width, height), layout="constrained")
  FigureCanvasAgg(fig)
  return fig, list(fig.subplots(nrows, ncols, squeeze=False).flat)


def _save(fig, path: str) -> None:
  """The figure as PNG at `path` (local or any filesystem TensorFlow knows)."""
  storage.save_figure(fig, path, dpi=_PNG_DPI)


def _bars(ax, groups: Sequence[str], series: Dict[str, List[float]], ylabel: str):
  """Grouped bars: one group per entry of `groups`, one bar per series."""
  n = max(len(series), 1)
  width = 0.8 / n
  for j, (label, values) in enumerate(series.items()):
    positions = [i - 0.4 + (j + 0.5) * width for i in range(len(groups))]
    ax.bar(positions, values, width, label=label)
  long_labels = max(map(len, groups), default=0) > 12
  ax.set_xticks(range(len(groups)))
  ax.set_xticklabels(groups, rotation=20 if long_labels else 0,
                     ha="right" if long_labels else "center")
  ax.set_ylabel(ylabel)
  ax.grid(axis="y", alpha=0.3)
  if series:
    ax.legend(fontsize="small")


def _value(metrics: Metrics, model: str, slice_name: str, key: str) -> float:
  value = metrics[model].get(slice_name, {}).get(key)
  return float("nan") if value is None else float(value)


def _plot_per_metric(path: str, metrics: Metrics, k: int, slice_name: str,
                     names: Sequence[str], title: str):
  """One panel per metric: a bar per model on `slice_name`, the first model highlighted."""
  models = list(metrics)
  ncols = min(3, len(names))
  nrows = (len(names) + ncols - 1) // ncols
  fig, axes = _figure(max(4.0, 0.55 * len(models) + 1.5) * ncols, 3.2 * nrows + 0.4,
                      ncols=ncols, nrows=nrows)
  for ax, name in zip(axes, names):
    values = [_value(metrics, m, slice_name, f"{name}@{k}") for m in models]
    ax.bar(range(len(models)), values, color=["C3" if i == 0 else "C0"
                                              for i in range(len(models))])
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models, rotation=35, ha="right", fontsize="small")
    ax.set_title(f"{_NAMES.get(name, name)}@{k}")
    ax.grid(axis="y", alpha=0.3)
  for ax in axes[len(names):]:
    ax.set_visible(False)
  fig.suptitle(title)
  _save(fig, path)


def _plot_comparison(path: str, metrics: Metrics, k: int):
  _plot_per_metric(path, metrics, k, "all", HEADLINE, f"All users, K = {k}")


def _plot_slices(path: str, metrics: Metrics, k: int):
  names = _slice_names(metrics)
  fig, (ax,) = _figure(max(6.0, 1.6 * len(names) + 2.0), 4.0)
  _bars(ax, names, {m: [_value(metrics, m, s, f"ndcg@{k}") for s in names] for m in metrics},
        f"NDCG@{k}")
  ax.set_title(f"NDCG@{k} per slice")
  _save(fig, path)


def _plot_training(path: str, histories: Histories, k: int):
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top
  fig, (loss_ax, ndcg_ax) = _figure(11.0, 4.0, ncols=2)
  for index, (model, epochs) in enumerate(histories.items()):
    for ax, key in ((loss_ax, "loss"), (ndcg_ax, f"val_ndcg@{k}")):
      points = [(e + 1, row[key]) for e, row in enumerate(epochs) if row.get(key) is not None]
      if points:  # One colour per model on both panels.
        ax.plot(*zip(*points), marker="o", color=f"C{index % 10}", label=model)
  for ax, label in ((loss_ax, "training loss"), (ndcg_ax, f"validation NDCG@{k}")):
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(label)
    ax.set_title(label)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize="small")
  _save(fig, path)


def _plot_degrees(path: str, degrees: Dict[str, Sequence[int]]):
  import numpy as np  # pylint: disable=g-import-not-at-top
  fig, axes = _figure(5.5 * len(degrees), 4.0, ncols=len(degrees))
  for index, (ax, (name, values)) in enumerate(zip(axes, degrees.items())):
    values = np.asarray(values, np.int64)
    positive = values[values > 0]
    if len(positive):
      counts = np.bincount(positive)
      d = np.nonzero(counts)[0]
      ax.loglog(d, counts[d], marker=".", linestyle="none", color=f"C{index}")
    zero = int(np.sum(values == 0))
    ax.set_title(f"{name}: {len(values):,}" + (f" ({zero:,} with none)" if zero else ""))
    ax.set_xlabel("training interactions (degree)")
    ax.set_ylabel(f"{name} with that degree")
    ax.grid(alpha=0.3, which="both")
  _save(fig, path)


ABLATION_PREFIX = "two-stage − "


def _plot_two_stage(path: str, metrics: Metrics, figures: Dict[str, Dict[str, float]], k: int):
  """Three panels: drop-one ablations, candidate recall per source, permutation importance."""
  fig, axes = _figure(16.0, 4.4, ncols=3)
  full = _value(metrics, "two-stage", "all", f"ndcg@{k}") if "two-stage" in metrics else None
  ablations = [m for m in metrics if m.startswith(ABLATION_PREFIX)]
  names = ["two-stage"] * (full is not None) + [m[len(ABLATION_PREFIX):] for m in ablations]
  values = ([full] if full is not None else []) + [_value(metrics, m, "all", f"ndcg@{k}")
                                                   for m in ablations]
  panels = [
      ("Drop-one ablations (test)", f"NDCG@{k}", names, values),
      ("Candidate recall on test", "share of held-out items among candidates",
       list(figures.get("candidate_recall", {})),
       list(figures.get("candidate_recall", {}).values())),
      ("Permutation importance (held-out lists)", f"NDCG@{k} lost",
       list(figures.get("permutation_importance", {})),
       list(figures.get("permutation_importance", {}).values())),
  ]
  for ax, (title, ylabel, labels, heights) in zip(axes, panels):
    ax.bar(range(len(labels)), heights,
           color=["C3" if label in ("two-stage",) else "C0" for label in labels])
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize="small")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if full is not None and title.startswith("Drop-one"):
      ax.axhline(full, color="C3", linewidth=0.8, linestyle="--")
  _save(fig, path)


def write_report(out_dir: str, metrics: Metrics, histories: Optional[Histories] = None, *,
                 title: str = "tfgrec evaluation", k: int = 20, notes: Sequence[str] = (),
                 degrees: Optional[Dict[str, Sequence[int]]] = None,
                 two_stage: Optional[Dict[str, Dict[str, float]]] = None,
                 tower_parts: Optional[Dict] = None) -> str:
  """Writes report.md and its figures into `out_dir` (see the module docstring).

  Args:
    out_dir: folder for report.md and the PNG files (created if missing).
    metrics: metrics[model][slice][metric], e.g. metrics["ALS"]["all"]["ndcg@20"].
    histories: histories[model] = per-epoch dicts; models without one are left out of the
      training curves.
    title: the page's title.
    k: the cut-off reported.
    notes: lines listed under "Notes".
    degrees: per node set name ("users", "items"), each node's training degree.
    two_stage: {"candidate_recall": {source: recall}, "permutation_importance": {group: NDCG
      lost}} of a two-stage run; with the "two-stage − <group>" rows of `metrics`, the figure
      two_stage.png. Ablation rows stay out of the comparison and slice figures.
    tower_parts: the run's measured tower parts (`read_tower_parts`), shown as a table.

  Returns:
    The path of report.md.
  """
  storage.makedirs(out_dir)
  histories = {m: h for m, h in (histories or {}).items() if h}
  curves = os.path.join(out_dir, "training_curves.png")
  if histories:
    _plot_training(curves, histories, k)
  else:  # A stale figure of an earlier report in the same folder.
    storage.remove(curves)
  models = {m: v for m, v in metrics.items() if not m.startswith(ABLATION_PREFIX)}
  _plot_comparison(os.path.join(out_dir, "comparison.png"), models, k)
  _plot_slices(os.path.join(out_dir, "slices.png"), models, k)
  two_stage_png = os.path.join(out_dir, "two_stage.png")
  if two_stage:
    _plot_two_stage(two_stage_png, metrics, two_stage, k)
  else:  # A stale figure of an earlier report in the same folder.
    storage.remove(two_stage_png)
  has_cold = any("cold_items" in per_model for per_model in metrics.values())
  cold = os.path.join(out_dir, "cold_items.png")
  if has_cold:
    _plot_per_metric(cold, metrics, k, "cold_items", ("recall", "ndcg"),
                     f"Cold items (no training interaction), K = {k}")
  else:  # A stale figure of an earlier report in the same folder.
    storage.remove(cold)
  if degrees:
    _plot_degrees(os.path.join(out_dir, "degree_distribution.png"), degrees)

  lines = [f"# {title}", "", f"## All users, K = {k}", ""]
  lines += _markdown_table(metrics, "all", [f"{m}@{k}" for m in HEADLINE],
                           bold=[f"{m}@{k}" for m in HEADLINE])
  lines.append("")
  for name in _slice_names(metrics):
    if name == "all":
      continue
    about = _SLICES.get(name)
    lines += [f"## Slice {name}" + (f": {about}" if about else ""), ""]
    keys = [f"recall@{k}", f"ndcg@{k}", "users"]
    lines += _markdown_table(metrics, name, keys, bold=keys[:2]) + [""]
  if tower_parts and tower_parts.get("rows"):
    lines += ["## The graph tower's parts (drop-one, whole trainings)", ""]
    lines += _tower_parts_table(tower_parts) + [""]
  if notes:
    lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
  lines += ["## Figures", ""]
  if histories:
    lines += ["![Training curves](training_curves.png)", ""]
  lines += [f"![Every headline metric per model](comparison.png)", "",
            f"![NDCG@{k} per slice](slices.png)", ""]
  if has_cold:
    lines += ["![Cold-item results](cold_items.png)", ""]
  if two_stage:
    lines += ["![Two stages: ablations, candidate recall per source, feature importance]"
              "(two_stage.png)", ""]
  if degrees:
    lines += ["![Degree distribution of the training graph](degree_distribution.png)", ""]
  path = os.path.join(out_dir, "report.md")
  storage.write_text(path, "\n".join(lines))
  return path
