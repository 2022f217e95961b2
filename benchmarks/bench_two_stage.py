"""Benchmark: the two-stage recommender (sources → DCN-v2 listwise ranker) against each source
alone, EASE + recency, and drop-one ablations.

  .venv/bin/python benchmarks/bench_two_stage.py --graph out/graph     # after `make demo`

Protocol (tfgrec/ranking/pipeline.py): the sources are fit on training events; the ranker is
trained on validation lists (history = training events, now = the user's first validation
event); then the sources are refit on training + validation events and the ranker, kept, ranks
test lists (now = the user's first test event). Metrics: full ranking over the catalog, known
items excluded (tfgrec/eval/metrics.py). Each source alone is scored on test after the refit.
"""
import argparse
import json
import os
import time

import numpy as np

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec import config as config_lib
from tfgrec.eval import baselines, metrics
from tfgrec.ranking import features as features_lib
from tfgrec.ranking import pipeline
from tfgrec.sources import base, embedding, graph_filter, time_context

KS = (20, 50, 100, 200)


def source_factories(args, names):
  out = {
      "graph_filter": (lambda: graph_filter.GraphFilter(), args.n),
      "ease": (lambda: graph_filter.Ease(), args.n),
      "trending": (lambda: time_context.Trending(), args.n_context),
      "fresh": (lambda: time_context.Fresh(half_life_days=3650.0), args.n_context),
      "text": (lambda: embedding.EmbeddingNeighbours.text(), args.n_context),
  }
  try:
    from tfgrec.sources import sequence  # pylint: disable=g-import-not-at-top
    out["sequence"] = (lambda: sequence.SequenceSource(), args.n)
  except ImportError:
    pass
  unknown = sorted(set(names) - set(out))
  if unknown:
    raise SystemExit(f"unknown sources {unknown}; known: {sorted(out)}")
  return {k: out[k] for k in names}


def item_side(graph_dir, cache_dir):
  """(text embeddings [I, T], categories [I, G]) of the graph's catalog, in vocabulary order."""
  from tfgrec import storage  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs  # pylint: disable=g-import-not-at-top
  catalog = storage.read_parquet(os.path.join(graph_dir, "catalog.parquet"))
  items = inputs.read_vocab(graph_dir, "item")
  catalog = catalog.set_index("item_id").reindex(items.astype(str))
  texts = catalog["text"].fillna("").to_numpy(object)
  config = config_lib.config_from_dict({"graph_dir": graph_dir,
                                        "text": {"cache_dir": cache_dir}})
  text = inputs.embed_catalog(config, texts)
  names = sorted({c for cats in catalog["categories"].dropna() for c in cats})
  index = {c: j for j, c in enumerate(names)}
  cats = np.zeros([len(items), len(names)], np.float32)
  for row, values in enumerate(catalog["categories"]):
    if values is not None and not (isinstance(values, float)):
      for c in values:
        cats[row, index[c]] = 1.0
  return text, cats


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--graph", default="out/graph")
  parser.add_argument("--text-cache", default=None, help="text embedding cache folder")
  parser.add_argument("--sources", default="ease,graph_filter,trending,fresh,text,sequence")
  parser.add_argument("--n", type=int, default=100, help="candidates of the main sources")
  parser.add_argument("--n-context", type=int, default=50,
                      help="candidates of trending, fresh and text")
  parser.add_argument("--ablations", action="store_true", help="drop-one ablations")
  parser.add_argument("--json", default=None, help="write the results here")
  parser.add_argument("--save-lists", default=None,
                      help="write the training and test lists here (.npz pair) to tune rankers")
  args = parser.parse_args()

  data = baselines.load_eval_data(args.graph)
  text, cats = item_side(args.graph, args.text_cache)
  item_data = {embedding.TEXT_EMBEDDING: text}
  names = [s for s in args.sources.split(",") if s]
  try:
    make = source_factories(args, names)
  except SystemExit as e:
    print(e)
    make = source_factories(args, [n for n in names if n != "sequence"])
  timing = {}

  def events_of(frame):
    return {k: frame[k].to_numpy() for k in ("user", "item", "timestamp")}

  # Stage A: ranker training lists on validation.
  train_events = events_of(data.train_events)
  start = time.time()
  fitted, fit_s = pipeline.fit_sources(make, train_events, data.num_items, item_data)
  timing["fit sources (train)"] = time.time() - start
  val_hist = base.UserHistories(train_events["user"], train_events["item"],
                                train_events["timestamp"], num_users=data.num_users)
  val_now = np.maximum(data.first_times("validation"), val_hist.latest)
  val_users = np.flatnonzero(data.validation.sizes() > 0)
  index_train = time_context.EventIndex(train_events["item"], train_events["timestamp"],
                                        num_items=data.num_items)

  def features(sources, index, config=features_lib.FeatureConfig()):
    return features_lib.CandidateFeatures(sources=sources, events=index, text_embedding=text,
                                          item_categories=cats, config=config)

  start = time.time()
  feats = features(fitted, index_train)
  train_lists = pipeline.build_lists(feats, val_hist, val_users, val_now, data.validation,
                                     progress=True)
  timing["training lists"] = time.time() - start
  recall = (train_lists.labels.sum(1) / np.maximum(train_lists.num_relevant, 1)).mean()
  print(f"training lists: {len(val_users)} users, {train_lists.candidates.shape[1]} slots, "
        f"{train_lists.valid.sum(1).mean():.0f} candidates a user, candidate recall "
        f"{recall:.4f}", flush=True)
  start = time.time()
  ranker, _ = pipeline.train_ranker(train_lists)
  timing["ranker"] = time.time() - start

  # Stage B: refit on train + validation, rank test lists.
  known = events_of(data.history_events("test"))
  start = time.time()
  refit, _ = pipeline.fit_sources(make, known, data.num_items, item_data)
  timing["refit sources (train + validation)"] = time.time() - start
  test_hist = base.UserHistories(known["user"], known["item"], known["timestamp"],
                                 num_users=data.num_users)
  test_now = np.maximum(data.first_times("test"), test_hist.latest)
  test_users = np.flatnonzero(data.test.sizes() > 0)
  index_known = time_context.EventIndex(known["item"], known["timestamp"],
                                        num_items=data.num_items)
  exclude = [data.train, data.validation]

  def evaluate(score_fn):
    return metrics.evaluate(score_fn, data.test, exclude, num_items=data.num_items, ks=KS,
                            user_batch=128)

  results = {}
  for name, (source, _) in refit.items():
    results[f"source: {name}"] = evaluate(base.user_scorer(source, test_hist, test_now,
                                                           use_tf=True))
  b = baselines.ease_weights(data.train, data.num_items, 200.0)
  history = baselines.history_weights(data, 20.0, "test")
  results["EASE + recency"] = evaluate(
      lambda users: history.dense(users, data.num_items, weighted=True) @ b)
  start = time.time()
  feats_test = features(refit, index_known)
  test_lists = pipeline.build_lists(feats_test, test_hist, test_users, test_now, data.test)
  logits = pipeline.rank_lists(ranker, test_lists)
  results["two-stage"] = evaluate(pipeline.list_scorer(test_lists, logits, data.num_items))
  timing["test lists + ranking"] = time.time() - start
  if args.save_lists:
    for name, lists in (("train", train_lists), ("test", test_lists)):
      np.savez_compressed(f"{args.save_lists}.{name}.npz",
                          **{k: v for k, v in vars(lists).items() if v is not None})
    with open(f"{args.save_lists}.features.json", "w") as f:
      json.dump({"names": feats.feature_names, "groups": feats.feature_groups}, f)
  test_recall = (test_lists.labels.sum(1) / np.maximum(test_lists.num_relevant, 1)).mean()
  print(f"test candidate recall (union): {test_recall:.4f}")

  if args.ablations:
    groups = ["source:" + n for n in names if n in fitted] + [
        "text", "category", "popularity", "user"]
    for group in groups:
      config = features_lib.FeatureConfig(drop=(group,))
      if group.startswith("source:"):  # Drop the source's candidates too.
        keep = {k: v for k, v in fitted.items() if k != group[7:]}
        keep_test = {k: v for k, v in refit.items() if k != group[7:]}
      else:
        keep, keep_test = fitted, refit
      tr = pipeline.build_lists(features(keep, index_train, config), val_hist, val_users,
                                val_now, data.validation)
      model, _ = pipeline.train_ranker(tr, progress=False)
      te = pipeline.build_lists(features(keep_test, index_known, config), test_hist,
                                test_users, test_now, data.test)
      results[f"two-stage − {group}"] = evaluate(
          pipeline.list_scorer(te, pipeline.rank_lists(model, te), data.num_items))
      print(f"  ablation − {group}: ndcg@20 {results[f'two-stage − {group}']['ndcg@20']:.4f}",
            flush=True)

  print()
  print(f"{'model':<34} {'ndcg@20':>8} " + " ".join(f"{f'rec@{k}':>7}" for k in KS))
  for name, r in results.items():
    print(f"{name:<34} {r['ndcg@20']:>8.4f} "
          + " ".join(f"{r[f'recall@{k}']:>7.4f}" for k in KS))
  print("\ntimes (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
  print("source fit (s): " + ", ".join(f"{k} {v:.1f}" for k, v in fit_s.items()))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"results": results, "timing": timing}, f, indent=1)


if __name__ == "__main__":
  main()
