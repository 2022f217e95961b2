"""Benchmark: each stage-1 candidate source alone, next to EASE and EASE + recency.

  .venv/bin/python benchmarks/bench_sources.py --graph out/graph     # after `make demo`
  .venv/bin/tfgrec data movielens --out /tmp/ml && \\
    .venv/bin/tfgrec build-graph --raw /tmp/ml --out /tmp/ml_graph   # or build one first

Protocol (tfgrec/train/evaluate.py): full ranking over the catalog, each user's known items
excluded. Hyper-parameters are picked by NDCG@20 on the VALIDATION split (histories: training
events) and the chosen setting is then scored once on TEST (histories: training + validation
events). The graph filter and EASE are fit on training events; the time-context sources are fit
on the events known for the split (training, + validation for test) and only ever read events
at or before each user's reference time `now`: by default the time of the user's first held-out
event (the request time of a deployed server), or with --now last, the user's latest known
event. The sequence source (SASRec with time buckets) is trained like the time-context sources:
on training events for validation, on training + validation events for test. Candidate recall@N is recall@N of the source's own ranking (N = 50, 100, 200): the share
of held-out items a ranker could still reach from this source's top N.

Current figures: BENCHMARKS.md, *Candidate sources alone*.
"""
import argparse
import time

import numpy as np

import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.
from tfgrec.data import splits
from tfgrec.eval import baselines, metrics
from tfgrec.sources import base, graph_filter, sequence, time_context

KS = (20, 50, 100, 200)
GF_HALF_LIVES = (None, 2.0, 5.0, 10.0, 20.0)
GF_LOW_PASS = [(a, k) for a in (0.05, 0.1, 0.3) for k in (64, 256)]
TRENDING_GRID = [(w, p) for w in ((1.0,), (7.0,), (30.0,), (1.0, 7.0, 30.0), (7.0, 30.0, 365.0))
                 for p in (0.0, 1e-3, 1e-1)]
FRESH_HALF_LIVES = (7.0, 30.0, 90.0, 365.0, 3650.0)
# Sequence source settings (SequenceSource keyword arguments); each fit takes minutes on 2 cores.
SEQUENCE_GRID = [
    dict(epochs=15, batch_size=16),                                          # The defaults.
    dict(epochs=15, batch_size=16, time_bias=False, time_since_last=False),  # Plain SASRec.
]


class Split:
  """What scoring one split needs: histories, reference times, relevant and excluded items."""

  def __init__(self, data, split, now_mode):
    self.name = split
    events = data.history_events(split)
    self.events = events
    self.histories = base.UserHistories(events["user"], events["item"], events["timestamp"],
                                        num_users=data.num_users)
    if now_mode == "next":
      self.now = np.maximum(data.first_times(split), self.histories.latest)
    else:
      self.now = self.histories.latest
    self.relevant = data.validation if split == "validation" else data.test
    self.exclude = [data.train] if split == "validation" else [data.train, data.validation]
    self.data = data

  def evaluate(self, score_fn, ks=KS):
    return metrics.evaluate(score_fn, self.relevant, self.exclude, num_items=self.data.num_items,
                            ks=ks, user_batch=128)


def fit_graph_filter(data, **kwargs):
  t = data.train_events
  return graph_filter.GraphFilter(**kwargs).fit(t["user"], t["item"], t["timestamp"],
                                                num_items=data.num_items)


def fit_time_context(cls, split: Split, **kwargs):
  e = split.events
  return cls(**kwargs).fit(e["user"], e["item"], e["timestamp"], num_items=split.data.num_items)


def tune(name, candidates, make, val: Split, use_tf=False):
  """Fits every candidate setting on validation; returns (best setting, its NDCG@20)."""
  best, best_value = None, -1.0
  for setting in candidates:
    start = time.time()
    source = make(setting, val)
    value = val.evaluate(base.user_scorer(source, val.histories, val.now, use_tf=use_tf),
                         ks=(20,))["ndcg@20"]
    print(f"  [validation] {name} {setting}: ndcg@20 {value:.4f} ({time.time() - start:.1f} s)",
          flush=True)
    if value > best_value:
      best, best_value = setting, value
  return best, best_value


def row(name, setting, val_ndcg, result, fit_s):
  recalls = " ".join(f"{result[f'recall@{k}']:>7.4f}" for k in KS)
  print(f"{name:<16} {setting:<34} {val_ndcg:>8.4f} {result['ndcg@20']:>8.4f} {recalls} "
        f"{fit_s:>6.1f}", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--graph", default="out/graph", help="graph directory (tfgrec build-graph)")
  parser.add_argument("--now", choices=("next", "last"), default="next",
                      help="reference time: the first held-out event, or the last known one")
  parser.add_argument("--ease-l2", type=float, default=200.0)
  parser.add_argument("--quick", action="store_true", help="a small grid (smoke run)")
  parser.add_argument("--skip-sequence", action="store_true",
                      help="leave out the sequence source (its fits take minutes)")
  args = parser.parse_args()
  data = splits.load_eval_data(args.graph)
  print(f"graph: {args.graph}: {data.num_users:,} users, {data.num_items:,} items, "
        f"{data.test.sizes().sum():,} test events; now = {args.now}")
  val = Split(data, "validation", args.now)
  test = Split(data, "test", args.now)
  gf_half_lives = GF_HALF_LIVES[:2] if args.quick else GF_HALF_LIVES
  gf_low_pass = GF_LOW_PASS[:2] if args.quick else GF_LOW_PASS
  rows = []

  # EASE and EASE + recency: one inverse, half-life picked on validation too (and the default 20).
  start = time.time()
  b = baselines.ease_weights(data.train, data.num_items, args.ease_l2)
  ease_fit = time.time() - start

  def ease(half_life, split):
    history = baselines.history_weights(data, half_life, split)
    return lambda users: history.dense(users, data.num_items, weighted=True) @ b

  ease_val = {h: val.evaluate(ease(h, "validation"), ks=(20,))["ndcg@20"] for h in gf_half_lives}
  for h, v in ease_val.items():
    print(f"  [validation] EASE half_life={h}: ndcg@20 {v:.4f}", flush=True)
  best_h = max((h for h in ease_val if h), key=ease_val.get)
  rows.append(("EASE", f"l2={args.ease_l2:g}", ease_val[None], test.evaluate(ease(None, "test")),
               ease_fit))
  if 20.0 not in ease_val:
    ease_val[20.0] = val.evaluate(ease(20.0, "validation"), ks=(20,))["ndcg@20"]
  rows.append(("EASE + recency", "half_life=20 (default)", ease_val[20.0],
               test.evaluate(ease(20.0, "test")), ease_fit))
  rows.append(("EASE + recency", f"half_life={best_h:g} (val)", ease_val[best_h],
               test.evaluate(ease(best_h, "test")), ease_fit))

  # Graph filter: half-life without the low-pass term, then (alpha, k) at that half-life.
  def make_gf(setting, _):
    half_life, alpha, k = setting
    return fit_graph_filter(data, half_life=half_life, alpha=alpha, num_singular=k)

  plain, plain_val = tune("graph filter", [(h, 0.0, 1) for h in gf_half_lives], make_gf, val)
  best_gf, best_gf_val = tune("graph filter", [(plain[0], a, k) for a, k in gf_low_pass], make_gf,
                              val)
  if best_gf_val <= plain_val:
    best_gf, best_gf_val = plain, plain_val
  for setting, val_value in ([(plain, plain_val)] if best_gf != plain else []) + [
      (best_gf, best_gf_val)]:
    start = time.time()
    source = make_gf(setting, None)
    fit_s = time.time() - start
    score = base.user_scorer(source, test.histories, test.now)
    label = (f"half_life={setting[0]}" +
             (f" alpha={setting[1]:g} k={setting[2]}" if setting[1] else " no low-pass"))
    rows.append(("graph filter", label, val_value, test.evaluate(score), fit_s))
    # The served path: TF scores on 64 test users equal the NumPy scores used above.
    users = np.arange(min(64, data.num_users))
    diff = np.abs(base.user_scorer(source, test.histories, test.now, use_tf=True)(users)
                  - score(users)).max()
    print(f"  graph filter {label}: TF vs NumPy max |diff| on 64 users = {diff:.2e}", flush=True)
    del source

  # Time context.
  def make_trending(setting, split):
    windows, weight = setting
    return fit_time_context(time_context.Trending, split, windows_days=windows,
                            popularity_weight=weight)

  def make_fresh(half_life, split):
    return fit_time_context(time_context.Fresh, split, half_life_days=half_life)

  trending_grid = TRENDING_GRID[:3] if args.quick else TRENDING_GRID
  fresh_grid = FRESH_HALF_LIVES[:2] if args.quick else FRESH_HALF_LIVES
  for name, make, grid, label in (
      ("trending", make_trending, trending_grid, lambda s: f"windows={s[0]} pop={s[1]:g}"),
      ("fresh", make_fresh, fresh_grid, lambda s: f"half_life_days={s:g}")):
    best, best_val = tune(name, grid, make, val, use_tf=True)
    start = time.time()
    source = make(best, test)
    fit_s = time.time() - start
    rows.append((name, label(best), best_val,
                 test.evaluate(base.user_scorer(source, test.histories, test.now, use_tf=True)),
                 fit_s))
  # Sequence: fit on the events known for the split, scored with the TF path.
  def make_sequence(setting, split):
    return fit_time_context(sequence.SequenceSource, split, verbose=False, **setting)

  if not args.skip_sequence:
    grid = SEQUENCE_GRID[:1] if args.quick else SEQUENCE_GRID
    best, best_val = tune("sequence", grid, make_sequence, val, use_tf=True)
    start = time.time()
    source = make_sequence(best, test)
    fit_s = time.time() - start
    rows.append(("sequence", " ".join(f"{k}={v}" for k, v in best.items()), best_val,
                 test.evaluate(base.user_scorer(source, test.histories, test.now, use_tf=True)),
                 fit_s))
  rows.append(("popularity", "training users", float("nan"),
               test.evaluate(baselines.popularity_scorer(data)), 0.0))

  print()
  print(f"{'source':<16} {'setting (picked on validation)':<34} {'val ndcg':>8} {'ndcg@20':>8} "
        + " ".join(f"{f'rec@{k}':>7}" for k in KS) + f" {'fit s':>6}")
  for r in rows:
    row(*r)


if __name__ == "__main__":
  main()
