"""Beam job: batch recommendations with the exported SavedModel through RunInference.

The same work as `tfgrec recommend` (tfgrec/batch/recommend.py), for user sets too large for one
process: users (plain text, one id per line; or interactions of the raw-log contract, from which
each user's history is taken) -> RunInference (the `recommend` signature, and `explain` when
asked) -> JSON lines {"user_id", "items", "scores"[, "because", "contributions"]}.

Interaction rows that break the contract go to `dead_letter/interactions.jsonl` beside the output,
with their reason; the counts (rows in, users, dead letters, written) are Beam metrics, returned by
:func:`run` and printed by the driver (tfgrec.jobs.batch_recommend).
"""
import dataclasses
import json
import logging
from typing import Any, Dict, Iterable, List, Optional, Sequence

import apache_beam as beam
from apache_beam.ml.inference import base as inference

from tfgrec.batch import recommend as batch_lib

logger = logging.getLogger(__name__)
NAMESPACE = "tfgrec.batch_recommend"


@dataclasses.dataclass(frozen=True)
class BatchRecommendConfig:
  """What the job reads and writes.

  Attributes:
    model: the exported model (a version directory, or the model directory: highest version).
    users: file patterns of the users (plain text ids, or interactions files).
    output: the JSONL output path (with num_shards > 1, a prefix: <output>-SSSSS-of-NNNNN).
    k: items per user (at most the K of the export).
    explain: add the history item behind each recommendation.
    max_history: latest items per user taken from an interactions file.
    batch_size: the largest batch RunInference sends to the model.
    num_shards: output files (1: exactly `output`).
    fmt: the interactions' format (None: from the file names).
  """
  model: str
  users: Sequence[str]
  output: str
  k: int = 20
  explain: bool = False
  max_history: int = 50
  batch_size: int = 256
  num_shards: int = 1
  fmt: Optional[str] = None


class RecommendModelHandler(inference.ModelHandler):
  """RunInference handler: batches of (user_id, history) -> recommendation records.

  The model is loaded once per worker process (tfgrec.saved_models.load) and shared by its threads.
  """

  def __init__(self, model: str, k: int, explain: bool = False, max_batch_size: int = 256):
    super().__init__()
    self._model = model
    self._k = k
    self._explain = explain
    self._max_batch_size = max_batch_size

  def load_model(self) -> batch_lib.BatchRecommender:
    from tfgrec import saved_models  # pylint: disable=g-import-not-at-top
    path = saved_models.version_dir(self._model)
    logger.info("batch recommend: loading %s", path)
    return batch_lib.BatchRecommender(saved_models.load(path), k=self._k,
                                      explain=self._explain)

  def run_inference(self, batch: Sequence[batch_lib.UserRow],
                    model: batch_lib.BatchRecommender,
                    inference_args: Optional[Dict[str, Any]] = None) -> Iterable[dict]:
    del inference_args
    return model(list(batch))

  def batch_elements_kwargs(self) -> Dict[str, Any]:
    return {"min_batch_size": 1, "max_batch_size": self._max_batch_size}

  def share_model_across_processes(self) -> bool:
    return False


def _is_plain_text(patterns: Sequence[str]) -> bool:
  kinds = {batch_lib.is_plain_text(p) for p in patterns}
  if len(kinds) > 1:
    raise batch_lib.BatchError("--users mixes plain-text id files and interactions files: "
                               f"{list(patterns)}")
  return kinds.pop()


class _Histories(beam.DoFn):
  """(user, [(timestamp, position, item), ...]) -> (user, latest items first, at most
  max_history; see tfgrec.batch.recommend.latest_items)."""

  def __init__(self, max_history: int):
    super().__init__()
    self._max = max_history

  def process(self, element):
    user, events = element
    yield str(user), batch_lib.latest_items(events, self._max)


def _events(frame):
  for user, item, ts, position in zip(frame["user_id"], frame["item_id"], frame["timestamp"],
                                      frame["position"]):
    yield str(user), (int(ts), int(position), str(item))


def dead_letter_dir(cfg: BatchRecommendConfig) -> str:
  """The folder that receives dead_letter/interactions.jsonl: the output's folder."""
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  return FileSystems.split(cfg.output)[0] or "."


def build_pipeline(p: beam.Pipeline, cfg: BatchRecommendConfig) -> None:
  """Adds the job's transforms to `p`."""
  from tfgrec.beam import transforms  # pylint: disable=g-import-not-at-top
  users_in = beam.metrics.Metrics.counter(NAMESPACE, "users")
  written = beam.metrics.Metrics.counter(NAMESPACE, "written")
  if _is_plain_text(cfg.users):
    rows_in = beam.metrics.Metrics.counter(NAMESPACE, "rows_in")

    def counted(line):
      rows_in.inc()
      return line

    users = (p
             | "Patterns" >> beam.Create(list(cfg.users))
             | "Read" >> beam.io.ReadAllFromText()
             | "Strip" >> beam.Map(str.strip)
             | "NotBlank" >> beam.Filter(bool)
             | "CountRows" >> beam.Map(counted)
             | "Distinct" >> beam.Distinct()
             | "NoHistory" >> beam.Map(lambda u: (u, [])))
  else:
    rows, dead, counts = p | transforms.ReadRawTable("interactions", list(cfg.users), cfg.fmt)
    dead_letters = beam.metrics.Metrics.counter(NAMESPACE, "dead_letters")
    rows_in = beam.metrics.Metrics.counter(NAMESPACE, "rows_in")
    _ = counts | "CountRows" >> beam.Map(lambda c: rows_in.inc(c[2]))
    _ = dead | "CountDead" >> beam.Map(lambda d: dead_letters.inc())
    _ = dead | "Dead" >> transforms.WriteDeadLetters(dead_letter_dir(cfg))
    users = (rows
             | "Events" >> beam.FlatMap(_events)
             | "ByUser" >> beam.GroupByKey()
             | "History" >> beam.ParDo(_Histories(cfg.max_history)))

  def count_user(row):
    users_in.inc()
    return row

  def count_written(record):
    written.inc()
    return json.dumps(record)

  handler = RecommendModelHandler(cfg.model, cfg.k, cfg.explain, cfg.batch_size)
  _ = (users
       | "CountUsers" >> beam.Map(count_user)
       | "Recommend" >> inference.RunInference(handler)
       | "Json" >> beam.Map(count_written)
       | "Write" >> beam.io.WriteToText(
           cfg.output, num_shards=cfg.num_shards,
           shard_name_template="" if cfg.num_shards == 1 else None))


def run(cfg: BatchRecommendConfig, pipeline_args: Optional[List[str]] = None) -> Dict[str, int]:
  """Runs the job; returns its counters {rows_in, users, dead_letters, written}."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  # Fail before the pipeline starts: a wrong model path or K is a user error, not a worker one.
  handler = RecommendModelHandler(cfg.model, cfg.k, cfg.explain, cfg.batch_size)
  handler.load_model()
  p = beam.Pipeline(options=PipelineOptions(pipeline_args or []))
  build_pipeline(p, cfg)
  result = p.run()
  result.wait_until_finish()
  counts = {"rows_in": 0, "users": 0, "dead_letters": 0, "written": 0}
  for counter in result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace(NAMESPACE))["counters"]:
    counts[counter.key.metric.name] = int(counter.committed or counter.attempted or 0)
  return counts
