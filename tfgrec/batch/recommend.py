"""Batch recommendations from an exported SavedModel: a users file -> recs.jsonl.

  counts = recommend_file("models/tfgrec", "users.txt", "recs.jsonl", k=10, explain=True)

The model is a `tfgrec export` directory: a version directory (`<base>/<name>/<version>/`) or
the model directory above it (its highest version is used). The users file is either
  * plain text, one user id per line (known users are answered from their trained embedding;
    users the model does not know get the most popular items), or
  * an interactions file of the raw-log contract (CSV / JSONL / Parquet: user_id, item_id,
    timestamp, ...): each user's history is their latest `max_history` items, most recent
    first, so users the model has never seen are recommended from what they did.
Each output line is one JSON object (DESIGN.md, Outputs):
  {"user_id": "...", "items": ["...", ...], "scores": [...]}
and with `explain`, "because": for each item, the user's history item that contributed most
to its score ('' when the user has no history), and "contributions", that item's share.

The same per-batch logic runs in the Beam job (tfgrec.jobs.batch_recommend) through
RunInference; this module runs it in one process, with a progress bar.
"""
import dataclasses
import json
import logging
import os
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from tfgrec import saved_models
from tfgrec import storage

tf = storage.tf

logger = logging.getLogger(__name__)

UserRow = Tuple[str, List[str]]  # (user id, history most recent first)


class BatchError(ValueError):
  """Bad input to batch recommendations (names the file, line or value)."""


def is_plain_text(path: str) -> bool:
  """Whether `path` is a list of user ids (no csv / jsonl / parquet name) or interactions."""
  from tfgrec.data import readers  # pylint: disable=g-import-not-at-top
  try:
    readers.detect_format(path)
  except readers.ContractError:
    return True
  return False


def latest_items(events: Iterable[Tuple[int, int, str]], max_history: int) -> List[str]:
  """A user's history from (timestamp, input position, item) events: latest first, each item
  once, at most `max_history` items. Events at the same time, and events without a time
  (timestamp -1, the contract), go by input order, the later row first. The Beam job builds
  histories with it too.

  >>> latest_items([(5, 0, "a"), (9, 1, "b"), (-1, 2, "c"), (-1, 3, "d")], 3)
  ['b', 'a', 'd']
  """
  ordered = sorted(events, key=lambda e: (-e[0], -e[1], e[2]))
  return list(dict.fromkeys(item for _, _, item in ordered))[:max_history]


def read_users(path: str, max_history: int = 50) -> Tuple[List[UserRow], Dict[str, int]]:
  """The users of `path` (module docstring) and counts {rows_in, users, dead_letters}.

  Rows of an interactions file that break the contract are counted and logged with their
  reason (tfgrec.data.readers), never silently dropped.
  """
  if not tf.io.gfile.exists(path):
    raise BatchError(f"--users {path!r} does not exist")
  if max_history < 1:
    raise BatchError(f"max_history must be >= 1, got {max_history}")
  if is_plain_text(path):
    with tf.io.gfile.GFile(path) as f:
      lines = [line.strip() for line in f]
    ids = list(dict.fromkeys(line for line in lines if line))
    if not ids:
      raise BatchError(f"--users {path!r} has no user ids (one id per line)")
    return [(u, []) for u in ids], {"rows_in": sum(1 for line in lines if line),
                                     "users": len(ids), "dead_letters": 0}
  from tfgrec.data import readers  # pylint: disable=g-import-not-at-top
  frame, dead, rows = readers.read_table([path], "interactions")
  for letter in dead[:10]:
    logger.warning("users file: dead letter %s", letter)
  if frame.empty:
    raise BatchError(f"--users {path!r}: no valid interactions ({rows} rows, {len(dead)} "
                     "dead letters; the contract: `tfgrec data contract`)")
  users = [(str(user), latest_items(zip(group["timestamp"].astype(int),
                                          group["position"].astype(int),
                                          group["item_id"].astype(str)), max_history))
           for user, group in frame.groupby("user_id", sort=True)]
  return users, {"rows_in": rows, "users": len(users), "dead_letters": len(dead)}


def batches(rows: Sequence[UserRow], batch_size: int) -> Iterator[List[UserRow]]:
  for start in range(0, len(rows), batch_size):
    yield list(rows[start:start + batch_size])


def request_tensors(rows: Sequence[UserRow]) -> Dict[str, np.ndarray]:
  """{'user_id': [B], 'history': [B, H]} with '' padding (the recommend signature's inputs)."""
  width = max([len(h) for _, h in rows] + [1])
  history = np.full([len(rows), width], "", dtype=object)
  for i, (_, items) in enumerate(rows):
    history[i, :len(items)] = items
  return {"user_id": np.array([u for u, _ in rows], dtype=object), "history": history}


@dataclasses.dataclass
class BatchRecommender:
  """Runs the recommend (and explain) signatures of a loaded SavedModel on batches of users.

  Args:
    model: the loaded SavedModel (tfgrec.saved_models.load).
    k: items per user (at most the K the model was exported with).
    explain: add the contributing history item of each recommendation.
  """
  model: object
  k: int
  explain: bool = False

  def __post_init__(self):
    signatures = self.model.signatures
    if "recommend" not in signatures:
      raise BatchError("the SavedModel has no `recommend` signature: export it with "
                       "`tfgrec export`")
    if self.explain and "explain" not in signatures:
      raise BatchError("the SavedModel has no `explain` signature (exported by an older "
                       "tfgrec): re-export it, or run without --explain")
    exported_k = signatures["recommend"].structured_outputs["item_ids"].shape[1]
    if exported_k is None:
      probe = signatures["recommend"](user_id=tf.constant([""]),
                                      history=tf.constant([[""]]))
      exported_k = int(probe["item_ids"].shape[1])
    self.exported_k = int(exported_k)
    if not 1 <= self.k <= self.exported_k:
      raise BatchError(f"--k must be in [1, {self.exported_k}] (the model was exported with "
                       f"K = {self.exported_k}; export again with `--k {self.k}` for more), "
                       f"got {self.k}")

  def __call__(self, rows: Sequence[UserRow]) -> List[dict]:
    inputs = request_tensors(rows)
    tensors = {k: tf.constant(v.astype(str)) for k, v in inputs.items()}
    out = self.model.signatures["recommend"](**tensors)
    items = out["item_ids"].numpy()[:, :self.k].astype(str)
    scores = out["scores"].numpy()[:, :self.k]
    results = []
    because = contribution = None
    if self.explain:
      why = self.model.signatures["explain"](item_ids=tf.constant(items), **tensors)
      because = why["because"].numpy().astype(str)
      contribution = why["contribution"].numpy()
    for i, (user, _) in enumerate(rows):
      # Fewer real items than K (tiny catalogs): masked items carry the -1e9 score.
      keep = scores[i] > -1e8
      record = {"user_id": user, "items": items[i][keep].tolist(),
                "scores": [round(float(s), 6) for s in scores[i][keep]]}
      if self.explain:
        record["because"] = because[i][keep].tolist()
        record["contributions"] = [round(float(c), 6) for c in contribution[i][keep]]
      results.append(record)
    return results


def write_jsonl(records: Iterable[dict], output: str) -> int:
  """Writes records to `output` (local or any filesystem TensorFlow knows) all at once
  (tfgrec.storage); returns the count."""
  return storage.write_lines(output, (json.dumps(record) for record in records))


def recommend_file(model: str, users: str, output: str, k: int = 20, explain: bool = False,
                   batch_size: int = 256, max_history: int = 50,
                   progress: bool = True) -> Dict[str, int]:
  """users file -> recs.jsonl (module docstring); returns counts {rows_in, users,
  dead_letters, written}."""
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  if batch_size < 1:
    raise BatchError(f"batch_size must be >= 1, got {batch_size}")
  path = saved_models.version_dir(model)
  recommender = BatchRecommender(saved_models.load(path), k=k, explain=explain)
  rows, counts = read_users(users, max_history)
  bar = tqdm(total=len(rows), desc="recommend", unit="user", disable=not progress)

  def records():
    for batch in batches(rows, batch_size):
      yield from recommender(batch)
      bar.update(len(batch))

  try:
    counts["written"] = write_jsonl(records(), output)
  finally:
    bar.close()
  counts["model"] = path
  return counts
