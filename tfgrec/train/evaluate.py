"""`tfgrec evaluate`: the trained model and the baselines on the test split, one harness.

  metrics = evaluate_run(load_config("run.yaml"))
  metrics["full model"]["all"]["ndcg@20"], metrics["ALS"]["cold_items"]["recall@20"]

Every model scores the whole catalog (cold items included) for every test user, with the user's
training and validation items excluded, and is measured on the slices of tfgrec.eval.slices.
Models are fit on the training events (validation picks the epoch and ALS's hyperparameters); to
predict the test split, models that read a user's history (EASE, text only, ALS by folding in,
the model: its graph gets the validation events as edges and its history readout reads them) read
the training and validation events, as a deployed model reads everything up to now.
Baselines (config `evaluate.baselines`):

  popularity    items by training users
  ease          EASE item-item (l2 = 200)
  ease_recency  EASE with the history weighted by recency (half-life 20 events)
  als           weighted ALS (`implicit`); factors and regularization picked on validation
  mf            this model with no message passing and no text: an ID-only two-tower
  graph_only    this model without the text tower
  text_only     text embeddings alone: users are the recency-weighted mean of their items' text

The trained baselines (mf, graph_only) train with the run's config under
`<run_dir>/baselines/<name>/`, and are reused while their config is unchanged. Outputs in the run
directory: metrics.json (model -> slice -> metric) and report.md with its PNG figures.
"""
import dataclasses
import json
import logging
import time
from typing import Dict, Optional, Sequence

from tfgrec import _cli_constants
from tfgrec import config as config_lib
from tfgrec import storage
from tfgrec.eval import baselines as baselines_lib
from tfgrec.eval import report as report_lib
from tfgrec.eval import slices
from tfgrec.train import callbacks as cb
from tfgrec.train import inputs as inputs_lib
from tfgrec.train import layout as layout_lib
from tfgrec.train import query as query_lib
from tfgrec.train import trainer
from tfgrec.train import two_stage

logger = logging.getLogger(__name__)

# The classic baselines `tfgrec evaluate` knows (one home, importable without TensorFlow for
# the CLI's help and the config's default).
BASELINES = _cli_constants.BASELINES
NAMES = {"popularity": "popularity", "ease": "EASE", "ease_recency": "EASE + recency",
         "als": "ALS", "mf": "MF (ID two-tower)", "graph_only": "graph only (no text)",
         "text_only": "text only"}
FULL_MODEL = "full model"
TWO_STAGE = "two-stage"
ALS_GRID = [(f, r) for f in (32, 64, 128) for r in (0.1, 1.0, 10.0)]

_ABLATIONS = {
    "mf": {"model": {"rounds": 0, "use_text": False}, "tasks": {"alignment_weight": 0.0}},
    "graph_only": {"model": {"use_text": False}, "tasks": {"alignment_weight": 0.0}},
}


def ablation_config(config: config_lib.RunConfig, name: str) -> config_lib.RunConfig:
  """The run config of a trained baseline (mf, graph_only)."""
  overrides = dict(_ABLATIONS[name], run_dir=layout_lib.RunLayout(config.run_dir).baseline(name),
                   ranking={"enabled": False})
  return config_lib.config_from_dict(overrides, base=config)


def _best_als(data, progress: bool):
  """ALS with factors and regularization chosen by validation NDCG@20."""
  from tfgrec.eval import metrics  # pylint: disable=g-import-not-at-top
  best, best_value = None, -1.0
  for factors, reg in ALS_GRID:
    scorer = baselines_lib.als_scorer(data, factors=factors, regularization=reg,
                                      split="validation")
    value = metrics.evaluate(scorer, data.validation, [data.train], num_items=data.num_items,
                             ks=[20])["ndcg@20"]
    if value > best_value:
      best, best_value = (factors, reg), value
  if progress:
    print(f"  ALS: factors {best[0]}, regularization {best[1]:g} (validation NDCG@20 "
          f"{best_value:.4f})", flush=True)
  scorer = baselines_lib.als_scorer(data, factors=best[0], regularization=best[1], split="test")
  return scorer, f"ALS factors={best[0]} regularization={best[1]:g}, chosen on validation"


def _test_embeddings(config: config_lib.RunConfig, inputs, model=None):
  """A trained run's embeddings for the test split, with its query (tfgrec.train.query) on
  the known history."""
  if model is None:
    model, _ = trainer.load_trained(config, inputs)
  return query_lib.embeddings(model, config, inputs, "test", query_lib.read_query(config))


def _trained_baseline(config: config_lib.RunConfig, inputs, progress: bool):
  """Test embeddings of a trained baseline, training it first unless an identical run exists."""
  layout = layout_lib.RunLayout(config.run_dir)
  saved_config = layout.config
  if not (storage.exists(layout.embeddings)
          and storage.exists(saved_config) and config_lib.load_config(saved_config) == config):
    # A baseline is never served: no final fit.
    result = trainer.train(config, progress=progress, inputs=inputs, final_fit=False)
    return _test_embeddings(config, inputs, result.model)
  return _test_embeddings(config, inputs)


def evaluate_run(config: config_lib.RunConfig, *, baselines: Optional[Sequence[str]] = None,
                 progress: bool = True, inputs: Optional[inputs_lib.RunInputs] = None
                 ) -> Dict[str, Dict[str, Dict[str, float]]]:
  """Evaluates the run's best checkpoint and the baselines; writes metrics.json and the report.

  Args:
    config: the run config (its run_dir holds the trained model).
    baselines: names from BASELINES (default: config.evaluate.baselines).
    progress: print each model's headline as it is measured.
    inputs: already loaded inputs.

  Returns:
    metrics[model][slice][metric].
  """
  names = list(config.evaluate.baselines if baselines is None else baselines)
  unknown = [n for n in names if n not in BASELINES]
  if unknown:
    raise ValueError(f"unknown baseline {unknown[0]!r}; known: {', '.join(BASELINES)}")
  inputs = inputs or inputs_lib.load_inputs(config, progress=progress)
  data = inputs.data
  ev = config.evaluate

  def measure(scorer):
    return slices.evaluate_slices(scorer, data, split="test", ks=ev.ks,
                                  long_tail_head_share=ev.long_tail_head_share,
                                  short_history_max=ev.short_history)

  results, histories, notes, seconds, figures = {}, {}, [], {}, None
  start = time.time()
  model, _ = trainer.load_trained(config, inputs)
  tower = measure(cb.embedding_scorer(_test_embeddings(config, inputs, model)))
  seconds[FULL_MODEL] = time.time() - start
  if config.ranking.enabled:
    start = time.time()
    two, figures = two_stage.evaluate(
        config, inputs, model, measure=measure, progress=progress,
        reuse_key=json.dumps(dataclasses.asdict(ev), sort_keys=True, default=str))
    results[TWO_STAGE] = two.pop("two-stage")
    seconds[TWO_STAGE] = time.time() - start
    _print_row(TWO_STAGE, results[TWO_STAGE], progress)
    notes.append("Two stages (tfgrec/ranking/README.md): candidate recall on test (the share of "
                 "held-out items among the candidates, the ranker's ceiling): " + ", ".join(
                     f"{k} {v:.4f}" for k, v in figures["candidate_recall"].items()) + ".")
    boost = figures.get("new_item_boost")
    if boost:
      notes.append(
          f"New items (no training or validation event) get the logit boost {boost['boost']:g}, "
          f"fit on the ranker's held-out lists with each new candidate kept with probability "
          f"{boost['keep_share']:.2f}, to the test lists' share of new candidates "
          f"({boost['test_share']:.4f}); {boost['training']:g} at the held-out lists' own share.")
  results[FULL_MODEL] = tower
  histories[FULL_MODEL] = cb.read_history(config.run_dir)
  _print_row(FULL_MODEL, results[FULL_MODEL], progress)
  if config.ranking.enabled:
    results.update(two)  # Each source alone, then the drop-one ablations.
  for name in names:
    start = time.time()
    label = NAMES[name]
    if name == "popularity":
      scorer = baselines_lib.popularity_scorer(data)
    elif name == "ease":
      scorer = baselines_lib.ease_scorer(data, l2=200.0)
    elif name == "ease_recency":
      scorer = baselines_lib.ease_scorer(data, l2=200.0, half_life=20.0)
    elif name == "als":
      try:
        scorer, note = _best_als(data, progress)
        notes.append(note)
      except ImportError as e:
        notes.append(f"ALS skipped: {e}")
        if progress:
          print(f"  ALS skipped: {e}", flush=True)
        continue
    elif name == "text_only":
      text = inputs.item_text
      if text is None:
        text = inputs_lib.embed_catalog(config, inputs.item_strings, progress=progress)
      scorer = baselines_lib.text_only_scorer(data, text, half_life=20.0)
    else:
      sub = ablation_config(config, name)
      sub_inputs = inputs_lib.load_inputs(sub, progress=False)
      scorer = cb.embedding_scorer(_trained_baseline(sub, sub_inputs, progress))
      histories[label] = cb.read_history(sub.run_dir)
    results[label] = measure(scorer)
    seconds[label] = time.time() - start
    _print_row(label, results[label], progress)
  write_metrics(config.run_dir, results)
  notes.append("Seconds to fit (or load) and evaluate: " + ", ".join(
      f"{name} {value:.1f}" for name, value in seconds.items()) + ".")
  notes.insert(0, f"Test split of {config.graph_dir}: {data.test.sizes().sum():,} held-out "
               f"interactions of {int((data.test.sizes() > 0).sum()):,} users; every model ranks "
               f"all {data.num_items:,} items, training and validation items excluded. Models "
               "are fit on training events; user histories include the validation events.")
  degrees = {"users": data.train.sizes(), "items": data.popularity}
  path = report_lib.write_report(config.run_dir, results, histories, k=20, notes=notes,
                                 degrees=degrees, two_stage=figures,
                                 tower_parts=report_lib.read_tower_parts(config.run_dir))
  if progress:
    print(f"\nreport: {path}\nmetrics: {layout_lib.RunLayout(config.run_dir).metrics}")
  return results


def write_metrics(run_dir: str, results) -> str:
  """metrics.json: {model: {slice: {"recall@20": ..., "ndcg@20": ..., "users": ...}}}."""
  path = layout_lib.RunLayout(run_dir).metrics
  storage.write_json(path, results)
  return path


def _print_row(name: str, result, progress: bool) -> None:
  if progress:
    a, c = result["all"], result["cold_items"]
    print(f"  {name:<22} ndcg@20 {a['ndcg@20']:.4f}  recall@20 {a['recall@20']:.4f}  "
          f"cold ndcg@20 {c['ndcg@20']:.4f}", flush=True)
