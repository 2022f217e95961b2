"""Training and scoring the two stages offline: candidate lists, the ranker's fit, a score function.

Protocol (the time discipline; model README "Two stages"):

1. Ranker training lists. The sources are fit on the events before the label slice (a graph
   directory's training split); each user with label events becomes one list: history = the
   user's training events, ``now`` = the time of the user's first label event, candidates and
   features from `features.CandidateFeatures` (popularity from events at or before ``now``),
   labels = 1 for candidates among the user's label items.
   A share of those users (``ranking.new_user_lists``) give a second list as new users: the
   same ``now`` and labels, no history, and the graph tower's state from their attributes as
   the query of its source (what the served model computes for a user it does not know).
2. The ranker is fit on those lists, a share of the users held out to pick the epoch (NDCG@K
   over the list, relevant items outside the candidates counting as misses).
3. New items: the boost added to the logits of items the sources were fit without
   (`fit_new_item_boost`) is chosen on each ranker's held-out lists, the items without a
   training event being the new ones there.
4. To predict later events (the test split, or serving), the sources are refit on every event
   known by then and the ranker is kept; the new items are then those without any of these
   events. They are fewer than in the held-out lists, so the boost is fit again on the held-out
   lists with their new candidates thinned to the share the later lists have
   (`new_item_keep_share`; the lists' candidates only, no label is read).
"""
import dataclasses
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfgrec import config as config_lib
from tfgrec.eval import metrics
from tfgrec.ranking import features as features_lib
from tfgrec.ranking import ranker as ranker_lib
from tfgrec.sources import base

tf = features_lib.tf

RankerConfig = config_lib.RankerConfig  # The ranker's settings (one home: tfgrec.config).


@dataclasses.dataclass
class Lists:
  """Candidate lists of a set of users (numpy, [N, C] unless noted)."""
  users: np.ndarray          # [N]
  candidates: np.ndarray     # int32
  valid: np.ndarray          # bool
  features: np.ndarray       # [N, C, F] float32
  best_source: np.ndarray    # int32
  labels: Optional[np.ndarray] = None        # float32
  num_relevant: Optional[np.ndarray] = None  # [N] all label items, proposed or not

  def take(self, rows) -> "Lists":
    return Lists(**{f.name: (None if getattr(self, f.name) is None
                             else getattr(self, f.name)[rows])
                    for f in dataclasses.fields(self)})

  @staticmethod
  def concat(parts: Sequence["Lists"]) -> "Lists":
    """The lists of `parts`, one after the other (a field None in any part is None)."""
    def joined(name):
      values = [getattr(p, name) for p in parts]
      return None if any(v is None for v in values) else np.concatenate(values)
    return Lists(**{f.name: joined(f.name) for f in dataclasses.fields(Lists)})


def fit_sources(make: Mapping[str, Tuple[Callable[[], base.CandidateSource], int]],
                events: Mapping[str, np.ndarray], num_items: int,
                item_data: Optional[Mapping[str, np.ndarray]] = None, progress: bool = True
                ) -> Tuple[Dict[str, Tuple[base.CandidateSource, int]], Dict[str, float]]:
  """Builds and fits every source on `events` {"user", "item", "timestamp"}.

  Returns:
    ({name: (source, N)}, {name: fit seconds}).
  """
  out, seconds = {}, {}
  for name, (factory, n) in make.items():
    start = time.time()
    source = factory().fit(events["user"], events["item"], events["timestamp"],
                           num_items=num_items, item_data=item_data)
    seconds[name] = time.time() - start
    out[name] = (source, min(int(n), num_items))
    if progress:
      print(f"  source {name}: fit in {seconds[name]:.1f} s", flush=True)
  return out, seconds


def build_lists(feats: features_lib.CandidateFeatures, histories: base.UserHistories,
                users: np.ndarray, now: np.ndarray,
                relevant: Optional[metrics.Interactions] = None, *, batch: int = 64,
                progress: bool = False, user_query: Optional[np.ndarray] = None) -> Lists:
  """Candidates and features of `users` ([N]) at reference times `now` ([num_users]).

  user_query: [num_users, D] the new-user queries the graph tower source reads
  (features.CandidateFeatures), e.g. states from attributes; None: none.
  """
  call = tf.function(feats.__call__, reduce_retracing=True)
  parts: Dict[str, List[np.ndarray]] = {}
  users = np.asarray(users, np.int64)
  iterator = range(0, len(users), batch)
  if progress:
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    iterator = tqdm(iterator, desc="candidate lists", unit="batch")
  for start in iterator:
    chunk = users[start:start + batch]
    history, history_time = histories.batch(chunk)
    extra = {} if user_query is None else {"user_query": tf.constant(user_query[chunk])}
    out = call(tf.constant(history), tf.constant(history_time), tf.constant(now[chunk]),
               **extra)
    for key, value in out.items():
      parts.setdefault(key, []).append(value.numpy())
  lists = Lists(users=users, **{k: np.concatenate(v) for k, v in parts.items()})
  if relevant is not None:
    lists.labels = np.zeros(lists.candidates.shape, np.float32)
    lists.num_relevant = np.zeros(len(users), np.int64)
    for row, u in enumerate(users):
      items = relevant.indices[relevant.indptr[u]:relevant.indptr[u + 1]]
      lists.num_relevant[row] = len(items)
      lists.labels[row] = np.isin(lists.candidates[row], items) & lists.valid[row]
  return lists


def list_ndcg(logits: np.ndarray, lists: Lists, k: int) -> float:
  """Mean NDCG@k of ranking each list by `logits`, relevant items outside the list missed."""
  order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
  gains = np.take_along_axis(lists.labels * lists.valid, order, axis=1)
  discount = 1.0 / np.log2(np.arange(2, k + 2))
  dcg = (gains * discount[:gains.shape[1]]).sum(1)
  ideal = np.array([discount[:min(n, k)].sum() for n in lists.num_relevant])
  has = lists.num_relevant > 0
  return float((dcg[has] / ideal[has]).mean()) if has.any() else 0.0


def _dataset(lists: Lists, batch: int, seed: int) -> tf.data.Dataset:
  """Shuffled batches of `batch` lists, every one full: the last is padded with empty lists
  (no valid candidate, no label: weight 0 in the loss), so one traced step serves them all."""
  features, valid = lists.features.astype(np.float32), lists.valid
  labels = lists.labels.astype(np.float32)
  pad = -len(lists.users) % batch
  if pad:
    features = np.concatenate([features, np.zeros((pad,) + features.shape[1:], np.float32)])
    valid = np.concatenate([valid, np.zeros((pad,) + valid.shape[1:], bool)])
    labels = np.concatenate([labels, np.zeros((pad,) + labels.shape[1:], np.float32)])
  data = tf.data.Dataset.from_tensor_slices({"features": features, "valid": valid,
                                             "labels": labels})
  return data.shuffle(len(labels), seed=seed).batch(batch, drop_remainder=True)


def train_ranker(lists: Lists, config: RankerConfig = RankerConfig(), *,
                 progress: bool = True) -> Tuple[ranker_lib.RankerEnsemble, Dict[str, list]]:
  """Fits `config.ensemble` Rankers (seeds seed, seed + 1, ...; each its own held-out users)
  on training lists; returns (their ensemble, each at its best epoch; history).

  history: the first member's per-epoch "loss" and "holdout_ndcg" and its "holdout_rows" (lists
  it never trained on), "member_holdout_ndcg" (each member's best) and "member_holdout_rows"
  (each member's held-out lists).
  """
  members, history = [], None
  for m in range(config.ensemble):
    member_config = dataclasses.replace(config, seed=config.seed + m)
    if progress and config.ensemble > 1:
      print(f"  ranker {m + 1} of {config.ensemble}", flush=True)
    model, h = _train_one(lists, member_config, progress=progress)
    members.append(model)
    if history is None:
      history = dict(h, member_holdout_ndcg=[], member_holdout_rows=[])
    history["member_holdout_ndcg"].append(max(h["holdout_ndcg"]))
    history["member_holdout_rows"].append(h["holdout_rows"])
  return ranker_lib.RankerEnsemble(members), history


def _train_one(lists: Lists, config: RankerConfig, *, progress: bool
               ) -> Tuple[ranker_lib.Ranker, Dict[str, list]]:
  """One Ranker at its best epoch by held-out NDCG@k (train_ranker)."""
  if lists.labels is None:
    raise ValueError("train_ranker needs labelled lists (build_lists(..., relevant=...))")
  keep = lists.labels.sum(1) > 0
  if keep.sum() < 2:
    raise ValueError(f"train_ranker needs >= 2 lists with a positive candidate, got "
                     f"{int(keep.sum())}")
  held_rows, train_rows = _holdout_split(lists, config)
  num_held = len(held_rows)
  held, train = lists.take(held_rows), lists.take(train_rows)
  valid = train.valid.reshape(-1)
  flat = train.features.reshape(-1, train.features.shape[-1])[valid]
  tf.keras.utils.set_random_seed(config.seed)
  model = ranker_lib.Ranker(num_features=flat.shape[1], feature_mean=flat.mean(0),
                            feature_std=flat.std(0), cross_layers=config.cross_layers,
                            projection_dim=config.projection_dim, hidden=config.hidden,
                            dropout=config.dropout, l2=config.l2)
  model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  data = _dataset(train, config.batch_lists, config.seed)
  selection = _HeldOutSelection(held if num_held else None, config, progress)
  model.fit(data, epochs=config.epochs, verbose=0, callbacks=[selection])
  history = {"loss": selection.losses, "holdout_ndcg": selection.values,
             "holdout_rows": held_rows}
  model.set_weights(selection.best_weights)
  return model, history


class _HeldOutSelection(tf.keras.callbacks.Callback):
  """Scores the held-out lists after each epoch (NDCG@k; minus the loss without them), keeps
  the best epoch's weights, and stops after `patience` epochs without improvement: one `fit`
  call for the whole training."""

  def __init__(self, held: Optional[Lists], config: RankerConfig, progress: bool):
    super().__init__()
    self.held, self.config, self.progress = held, config, progress
    self.losses: List[float] = []
    self.values: List[float] = []
    self.best, self.best_weights, self.waited = -np.inf, None, 0

  def on_epoch_end(self, epoch, logs=None):
    loss = float((logs or {}).get("loss", np.nan))
    if self.held is not None:
      logits = self.model({"features": self.held.features, "valid": self.held.valid}).numpy()
      value = list_ndcg(logits, self.held, self.config.k)
    else:
      value = -loss
    self.losses.append(loss)
    self.values.append(value)
    if self.progress:
      print(f"  ranker epoch {epoch + 1}: loss {loss:.4f}, held-out ndcg@{self.config.k} "
            f"{value:.4f}", flush=True)
    if value > self.best:
      self.best, self.best_weights, self.waited = value, self.model.get_weights(), 0
    else:
      self.waited += 1
      if self.waited >= self.config.patience:
        self.model.stop_training = True


def new_items(items: np.ndarray, num_items: int) -> np.ndarray:
  """[num_items] bool: the items without an event among `items` (the item column of the events
  the sources were fit on): the new items of `fit_new_item_boost`."""
  items = np.asarray(items, np.int64)
  if len(items) and (items.min() < 0 or items.max() >= num_items):
    raise ValueError(f"event items must be in [0, {num_items}), got "
                     f"[{items.min()}, {items.max()}]")
  return np.bincount(items, minlength=num_items) == 0


def boosted(logits: np.ndarray, lists: Lists, new: np.ndarray, boost: float) -> np.ndarray:
  """[N, C] `logits` of `lists` with `boost` added at their new items (`new`: [num_items])."""
  if not boost:
    return logits
  return ranker_lib.boost_new_items(logits, lists.candidates, lists.valid, new, boost).numpy()


# The held-out lists cannot price new items much rarer than theirs: a new candidate is kept with
# at least this probability when they are thinned (new_item_keep_share).
MIN_NEW_ITEM_KEEP = 0.1
NEW_ITEM_DRAWS = 8  # Thinned copies of the held-out lists the boost's curve is averaged over.


def new_candidate_share(lists: Lists, new: np.ndarray) -> float:
  """Share of the valid candidates of `lists` that are new items (`new`: [num_items] bool)."""
  if not lists.valid.any():
    return 0.0
  return float(np.asarray(new, bool)[np.maximum(lists.candidates, 0)][lists.valid].mean())


def member_holdout_rows(lists: Lists, config: RankerConfig, members: int) -> List[np.ndarray]:
  """Each ensemble member's held-out rows of its training `lists`, as `train_ranker` draws them
  (member m: seed config.seed + m)."""
  return [_holdout_split(lists, dataclasses.replace(config, seed=config.seed + m))[0]
          for m in range(members)]


def _holdout_split(lists: Lists, config: RankerConfig) -> Tuple[np.ndarray, np.ndarray]:
  """(held-out rows, training rows) of one ranker: the lists with a positive, shuffled by
  config.seed, the first `config.holdout` share held out."""
  keep = lists.labels.sum(1) > 0
  rows = np.random.default_rng(config.seed).permutation(np.flatnonzero(keep))
  num_held = max(1, int(round(config.holdout * len(rows)))) if config.holdout > 0 else 0
  return rows[:num_held], rows[num_held:]


def new_item_keep_share(lists: Lists, holdout_rows: Sequence[np.ndarray], new: np.ndarray,
                        target_share: Optional[float]) -> float:
  """The probability with which `fit_new_item_boost` keeps each new candidate of the held-out
  lists so that their share of new candidates matches `target_share` (the share in the lists
  the boost will be applied to: `new_candidate_share`): 1 when that is None, or at least the
  held-out share; at least MIN_NEW_ITEM_KEEP.

  A boost's cost grows with how many new candidates it lifts over the known ones: lists with
  fewer new items (the test lists, whose new items are those without a training or validation
  event, or the served lists, without any event) pay less for the same boost than the held-out
  lists (without a training event), so the boost is priced on held-out lists thinned to them.
  """
  rows = np.concatenate([np.asarray(r, np.int64) for r in holdout_rows] + [np.zeros([0], int)])
  if target_share is None or not len(rows):
    return 1.0
  held = new_candidate_share(lists.take(np.unique(rows)), new)
  if held <= target_share:
    return 1.0
  return float(max(MIN_NEW_ITEM_KEEP, target_share / held))


def fit_new_item_boost(ranker: ranker_lib.RankerEnsemble, lists: Lists,
                       holdout_rows: Sequence[np.ndarray], new: np.ndarray, *, k: int,
                       budget: float, step: float = 0.25, max_boost: float = 8.0,
                       keep_share: float = 1.0, seed: int = 0
                       ) -> Tuple[float, List[Tuple[float, float]]]:
  """The logit boost of new items: the largest multiple of `step` up to `max_boost` such that
  it and every smaller one keep the held-out NDCG@k within `budget` (a share) of no boost.

  Each member is scored on its own held-out lists (`holdout_rows[m]`, lists it never trained
  on) and the NDCG@k of every boost is averaged over the members; the ensemble's logit is the
  members' mean, so their common boost adds to it unchanged. With `keep_share` < 1
  (new_item_keep_share) each new candidate of those lists is kept with that probability (a
  dropped one leaves its list, as an item no source proposed), and the curve is the mean over
  NEW_ITEM_DRAWS such draws (seeds seed, seed + 1, ...).

  Returns:
    (boost, [(boost, mean held-out NDCG@k)] over the grid); 0.0 when `budget` is 0 or no member
    has held-out lists (then the curve is []). Without a held-out hit in the top k at no boost,
    the boost of the best NDCG@k (0.0 when none has a hit).
  """
  rows = [np.asarray(r, np.int64) for r in holdout_rows]
  if budget <= 0 or not any(len(r) for r in rows):
    return 0.0, []
  if not 0.0 < keep_share <= 1.0:
    raise ValueError(f"keep_share must be in (0, 1], got {keep_share}")
  grid = np.arange(0.0, max_boost + step / 2, step)
  draws = 1 if keep_share >= 1.0 else NEW_ITEM_DRAWS
  new = np.asarray(new, bool)
  curves = []
  for member, held_rows in zip(ranker.members, rows):
    if not len(held_rows):
      continue
    held = lists.take(held_rows)
    logits = rank_lists(member, held)
    is_new = new[np.maximum(held.candidates, 0)] & held.valid
    for draw in range(draws):
      thinned, thinned_logits = held, logits
      if draws > 1:
        dropped = is_new & (np.random.default_rng(seed + draw).random(is_new.shape) >= keep_share)
        thinned = dataclasses.replace(held, valid=held.valid & ~dropped)
        thinned_logits = np.where(dropped, features_lib.MASKED, logits)
      curves.append([list_ndcg(boosted(thinned_logits, thinned, new, b), thinned, k)
                     for b in grid])
  mean = np.mean(curves, axis=0)
  curve = [(float(b), float(v)) for b, v in zip(grid, mean)]
  if not mean[0] > 0:  # No hit in the held-out top k to lose: the best boost, if any helps.
    return (float(grid[int(np.argmax(mean))]) if mean.max() > 0 else 0.0), curve
  within = mean >= (1.0 - budget) * mean[0]
  last = int(np.argmin(within)) - 1 if not within.all() else len(grid) - 1
  return float(grid[last]), curve


def rank_lists(ranker: ranker_lib.Ranker, lists: Lists, batch: int = 256) -> np.ndarray:
  """[N, C] ranker logits of lists (MASKED at invalid candidates)."""
  out = [ranker({"features": lists.features[s:s + batch], "valid": lists.valid[s:s + batch]}
                ).numpy() for s in range(0, len(lists.users), batch)]
  return np.concatenate(out) if out else np.zeros(lists.valid.shape, np.float32)


def list_scorer(lists: Lists, logits: np.ndarray, num_items: int
                ) -> Callable[[np.ndarray], np.ndarray]:
  """A `metrics.ScoreFn` over the full catalog from ranked lists: the candidates by their
  logits (scaled into (0, 1]), every other item below them."""
  row_of = {int(u): r for r, u in enumerate(lists.users)}
  order = np.argsort(-np.where(lists.valid, logits, -np.inf), axis=1, kind="stable")

  def score(users):
    out = np.full([len(users), num_items], -1.0, np.float32)
    for row, u in enumerate(users):
      r = row_of.get(int(u))
      if r is None:
        continue
      ranked = order[r][lists.valid[r][order[r]]]
      out[row, lists.candidates[r][ranked]] = 1.0 / (1.0 + np.arange(len(ranked)))
    return out

  return score


def permutation_importance(ranker: ranker_lib.Ranker, lists: Lists, groups, *, k: int = 20,
                           seed: int = 0) -> Dict[str, float]:
  """{group: NDCG@k lost when the group's columns are permuted across (user, candidate) pairs}.

  A feature group's worth to a trained ranker (Breiman 2001): the group's columns move together
  (their joint distribution is kept), every other column stays; measured on lists the ranker
  was not fit on.
  """
  base_ndcg = list_ndcg(rank_lists(ranker, lists), lists, k)
  rows, cols = np.nonzero(lists.valid)
  rng = np.random.default_rng(seed)
  out = {}
  for group in sorted(set(groups), key=list(groups).index):
    columns = np.array([g == group for g in groups])
    shuffled = lists.take(np.arange(len(lists.users)))
    shuffled.features = lists.features.copy()
    block = lists.features[rows, cols][:, columns]
    shuffled.features[rows[:, None], cols[:, None], np.flatnonzero(columns)[None, :]] = block[
        rng.permutation(len(rows))]
    out[group] = base_ndcg - list_ndcg(rank_lists(ranker, shuffled), lists, k)
  return out
