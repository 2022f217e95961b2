"""Apache Beam transforms of the graph-building job (driver: tfgrec.jobs.build_graph).

Rows travel in columnar chunks (pandas DataFrames) rather than one element per row: per-element
Python is what makes Beam slow, and every step here is a vectorized pandas operation on a chunk or
on a shard of users. The only global step gathers the training graph itself (full-graph mode).
"""
import json
import logging
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
import numpy as np
import pandas as pd

from tfgrec.data import contract
from tfgrec.data import prepare
from tfgrec.data import readers
from tfgrec.data import attributes as attributes_lib

logger = logging.getLogger(__name__)

DEAD = "dead"
COUNTS = "counts"
STATS = "stats"
TRAIN_EDGES = "train_edges"
SEEN = "seen"


class _ParseFileFn(beam.DoFn):
  """One raw file -> accepted-row chunks (main), dead letters ('dead'), its row count ('counts')."""

  def __init__(self, table: str, fmt: Optional[str]):
    self._table = table
    self._fmt = fmt

  def process(self, element: Tuple[int, str]):
    index, path = element  # The file's index among the table's sorted files: row positions.
    logger.info("reading %s file %s", self._table, path)
    stream = FileSystems.open(path, compression_type=CompressionTypes.AUTO)
    accepted = dead = 0
    for event in readers.read_table_file(path, self._table, self._fmt, stream=stream,
                                         file_index=index):
      if isinstance(event, pd.DataFrame):
        accepted += len(event)
        yield event
      elif isinstance(event, readers.FileCount):
        yield beam.pvalue.TaggedOutput(COUNTS, (self._table, path, event.rows))
      else:
        dead += 1
        yield beam.pvalue.TaggedOutput(DEAD, event)
    beam.metrics.Metrics.counter("tfgrec", f"{self._table}_accepted").inc(accepted)
    beam.metrics.Metrics.counter("tfgrec", f"{self._table}_dead_lettered").inc(dead)


def _expand_patterns(patterns: List[str]) -> List[str]:
  paths = []
  for pattern in patterns:
    matched = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]
    if not matched:
      raise FileNotFoundError(f"no file matches {pattern!r}")
    paths.extend(sorted(matched))
  return sorted(set(paths))


class ReadRawTable(beam.PTransform):
  """Reads and validates one table from file patterns.

  Outputs a tuple of PCollections: accepted chunks (DataFrames), dead letters (dicts) and
  per-file row counts ((table, path, rows)).
  """

  def __init__(self, table: str, patterns: List[str], fmt: Optional[str] = None):
    super().__init__(label=f"Read_{table}")
    contract.fields(table)
    self._table = table
    self._patterns = patterns
    self._fmt = fmt

  def expand(self, pbegin):
    paths = _expand_patterns(self._patterns)
    for path in paths:  # Fail before the pipeline runs on a file that cannot be read at all.
      readers.check_file(path, self._table, self._fmt)
    parsed = (pbegin
              | "Files" >> beam.Create(list(enumerate(paths)))
              | "Spread" >> beam.Reshuffle()
              | "Parse" >> beam.ParDo(_ParseFileFn(self._table, self._fmt)).with_outputs(
                  DEAD, COUNTS, main="rows"))
    return parsed.rows, parsed[DEAD], parsed[COUNTS]


def pack(frame: pd.DataFrame) -> bytes:
  """A flat-column DataFrame as zstd-compressed Arrow IPC bytes.

  Interaction frames cross every shuffle in this form: several times smaller than a pickled
  DataFrame, which matters most on DirectRunner, whose shuffle holds its data in memory.
  """
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  table = pa.Table.from_pandas(frame, preserve_index=False)
  sink = pa.BufferOutputStream()
  with pa.ipc.new_stream(sink, table.schema,
                         options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
    writer.write_table(table)
  return sink.getvalue().to_pybytes()


def unpack(data: bytes) -> pd.DataFrame:
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  return pa.ipc.open_stream(data).read_all().to_pandas()


def _by_bucket(frame: pd.DataFrame, key: str, num_buckets: int, packed: bool = False):
  buckets = prepare.bucket_of(frame[key], num_buckets)
  for bucket in np.unique(buckets):
    part = frame[buckets == bucket]
    yield int(bucket), (pack(part) if packed else part)


class _SplitBucketFn(beam.DoFn):
  """All events of one shard of users: dedupe, split (temporal, or random for users with events
  without a time), collapse training edges."""

  def __init__(self, split_config: prepare.SplitConfig):
    self._config = split_config

  def process(self, element):
    bucket, chunks = element
    frame = pd.concat([unpack(c) for c in chunks], ignore_index=True)
    frame, removed = prepare.dedupe(frame)
    frame = prepare.temporal_split(frame, self._config)
    counts = prepare.split_counts(frame)
    sizes = frame.groupby("user_id").size()
    users, short = len(sizes), int((sizes < self._config.min_interactions).sum())
    timeless = ~prepare.has_time(frame["timestamp"])
    random_users = frame.loc[prepare.random_split_users(frame), "user_id"].nunique()
    yield beam.pvalue.TaggedOutput(STATS, {
        "accepted": int(frame["count"].sum()), "duplicates_collapsed": removed,
        "unique_events": len(frame), "users": users, "users_short_history": short,
        "without_time": int(frame.loc[timeless, "count"].sum()),
        "users_split_at_random": int(random_users),
        **{f"split_{k}": v for k, v in counts.items()}})
    train = frame[frame["split"] == prepare.TRAIN]
    yield beam.pvalue.TaggedOutput(TRAIN_EDGES, pack(prepare.collapse_edges(train)))
    yield beam.pvalue.TaggedOutput(SEEN, frame.groupby("item_id")["count"].sum())
    for split in prepare.SPLITS:
      part = frame[frame["split"] == split].drop(columns=["split"]).reset_index(drop=True)
      if len(part):
        yield (split, bucket, pack(part))


class SplitInteractions(beam.PTransform):
  """Interaction chunks -> per-user splits, sharded by a stable hash of user_id.

  The split is temporal, or random (seeded, the same for any number of shards or workers) for
  users with events without a time; see tfgrec.data.prepare.

  Returns a tuple: (split, shard, packed DataFrame) parts, packed collapsed training-edge frames
  (see `pack`), per-shard Series of events per item id (all splits), and per-shard statistics.
  """

  def __init__(self, split_config: prepare.SplitConfig, num_shards: int,
               salt: Optional[str] = None):
    super().__init__()
    self._config = split_config
    self._num_shards = num_shards
    self._salt = salt

  def expand(self, chunks):
    if self._salt:
      salt = self._salt
      chunks = chunks | "Pseudonymize" >> beam.Map(
          lambda f: f.assign(user_id=prepare.pseudonymize(f["user_id"], salt)))
    n = self._num_shards
    out = (chunks
           | "ShardByUser" >> beam.FlatMap(_by_bucket, "user_id", n, packed=True)
           | "GroupShard" >> beam.GroupByKey()
           | "SplitShard" >> beam.ParDo(_SplitBucketFn(self._config)).with_outputs(
               STATS, TRAIN_EDGES, SEEN, main="parts"))
    return out.parts, out[TRAIN_EDGES], out[SEEN], out[STATS]


class _DedupeIdsFn(beam.DoFn):
  """Keeps the first row of each id (by source file and line); dead-letters the others."""

  def __init__(self, table: str, key: str):
    self._table = table
    self._key = key

  def process(self, element):
    _, chunks = element
    frame = pd.concat(list(chunks), ignore_index=True)
    frame = frame.assign(src_file=frame["order"].map(lambda o: o[0]),
                         src_line=frame["order"].map(lambda o: o[1]))
    frame = frame.sort_values([self._key, "src_file", "src_line"], kind="stable")
    dup = frame.duplicated(self._key, keep="first")
    first = frame.loc[~dup].set_index(self._key)
    for row in frame.loc[dup].drop(columns=["order"]).to_dict(orient="records"):
      key = row[self._key]
      kept = first.loc[key]
      yield beam.pvalue.TaggedOutput(DEAD, readers.dead_letter(
          self._table, row.pop("src_file"), row.pop("src_line"),
          contract.Rejection(contract.DUPLICATE_ID, self._key, key,
                             f"{self._key} already defined at {kept['src_file']}:"
                             f"{kept['src_line']}; the first definition is kept"),
          json.dumps(row, default=list, ensure_ascii=False, sort_keys=True)))
    yield frame.loc[~dup].drop(columns=["src_file", "src_line", "order"]).reset_index(drop=True)


class DedupeById(beam.PTransform):
  """Catalog or users chunks -> one row per id; later duplicates are dead-lettered."""

  def __init__(self, table: str, key: str, num_shards: int):
    super().__init__()
    self._table, self._key, self._n = table, key, num_shards

  def expand(self, chunks):
    out = (chunks
           | "ShardById" >> beam.FlatMap(_by_bucket, self._key, self._n)
           | "GroupById" >> beam.GroupByKey()
           | "Dedupe" >> beam.ParDo(_DedupeIdsFn(self._table, self._key)).with_outputs(
               DEAD, main="rows"))
    return out.rows, out[DEAD]


def _attribute_values(frame: pd.DataFrame, ignore: Tuple[str, ...]):
  """A chunk of items or users -> (column, value text) per present attribute of each row."""
  for text in frame["attributes"]:
    for column, value in attributes_lib.present(attributes_lib.parse_attributes(text), ignore):
      yield column, attributes_lib.text_of(value)


class _ColumnSummaryFn(beam.CombineFn):
  """(value text, rows) of one column -> {'distinct', 'numeric', 'top': [(value, rows)]}."""

  def __init__(self, max_values: int):
    super().__init__()
    self._max = max_values

  def _trim(self, top):
    return sorted(top, key=lambda vn: (-vn[1], vn[0]))[:self._max]

  def create_accumulator(self):
    return 0, True, []

  def add_input(self, accumulator, element):
    distinct, numeric, top = accumulator
    top = top + [tuple(element)]
    if len(top) > 2 * self._max:
      top = self._trim(top)
    return (distinct + 1, numeric and attributes_lib.as_number(element[0]) is not None, top)

  def merge_accumulators(self, accumulators):
    distinct, numeric, top = 0, True, []
    for d, n, t in accumulators:
      distinct, numeric, top = distinct + d, numeric and n, self._trim(top + list(t))
    return distinct, numeric, top

  def extract_output(self, accumulator):
    distinct, numeric, top = accumulator
    return {"distinct": distinct, "numeric": numeric, "top": self._trim(top)}


def _attribute_spec(unused, config, summaries, quantiles):
  """One attributes.json dict from the per-table column summaries and quantiles."""
  spec = attributes_lib.empty_spec(config)
  for table in attributes_lib.TABLES:
    for column, summary in sorted(summaries[table].items()):
      spec[table][column] = attributes_lib.column_spec(
          config, column, summary["top"], summary["distinct"], summary["numeric"],
          quantiles[table].get(column))
  yield spec


class AttributeSpec(beam.PTransform):
  """{'items': chunks, 'users': chunks} -> one attribute spec (tfgrec.data.attributes).

  Per column, distributed: the rows of each value (Count), the column's distinct values and most
  frequent ones (a CombineFn), and approximate quantiles of its numbers
  (beam.ApproximateQuantiles); one last step writes the spec from these summaries.
  """

  def __init__(self, config: attributes_lib.AttributeConfig):
    super().__init__()
    self._config = config

  def expand(self, tables):
    cfg = self._config
    summaries, quantiles = {}, {}
    for table in attributes_lib.TABLES:
      values = tables[table] | f"{table}AttributeValues" >> beam.FlatMap(
          _attribute_values, cfg.ignore)
      summaries[table] = (
          values
          | f"{table}CountValues" >> beam.combiners.Count.PerElement()
          | f"{table}ByColumn" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1])))
          | f"{table}SummarizeColumns" >> beam.CombinePerKey(_ColumnSummaryFn(cfg.max_values)))
      if cfg.buckets:
        quantiles[table] = (
            values
            | f"{table}Numbers" >> beam.FlatMap(
                lambda cv: [] if attributes_lib.as_number(cv[1]) is None else [
                    (cv[0], attributes_lib.as_number(cv[1]))])
            | f"{table}Quantiles" >> beam.ApproximateQuantiles.PerKey(cfg.buckets + 1))
      else:
        quantiles[table] = tables[table].pipeline | f"{table}NoQuantiles" >> beam.Create([])
    return (tables["items"].pipeline
            | "StartAttributeSpec" >> beam.Create([None])
            | "AttributeSpec" >> beam.FlatMap(
                lambda unused, summaries, quantiles: _attribute_spec(
                    unused, cfg, summaries, quantiles),
                summaries=_as_table_dicts(summaries, "Summaries"),
                quantiles=_as_table_dicts(quantiles, "Quantiles")))


def _as_table_dicts(per_table, name: str):
  """{table: PCollection of (column, x)} -> a singleton side input {table: {column: x}}."""
  tagged = [per_table[t] | f"Tag{name}_{t}" >> beam.Map(lambda kv, t=t: (t, kv))
            for t in attributes_lib.TABLES]
  return beam.pvalue.AsSingleton(
      tuple(tagged) | f"Flatten{name}" >> beam.Flatten()
      | f"Gather{name}" >> beam.combiners.ToList()
      | f"ByTable{name}" >> beam.Map(lambda rows: {
          t: {c: x for table, (c, x) in rows if table == t} for t in attributes_lib.TABLES}))


def write_bytes(path: str, data: bytes) -> None:
  """Writes a whole file on any Beam filesystem."""
  with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    f.write(data)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
  import io  # pylint: disable=g-import-not-at-top
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  sink = io.BytesIO()
  pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
  return sink.getvalue()


class WriteSplitShards(beam.PTransform):
  """Writes <out>/splits/<split>/part-<shard>-of-<n>.parquet, rows sorted by user and time
  (events without a time, timestamp -1, first and in input order; column `position`)."""

  def __init__(self, out_dir: str, num_shards: int):
    super().__init__()
    self._out, self._n = out_dir, num_shards

  def expand(self, parts):
    out, n = self._out, self._n

    def write(element):
      split, shard, packed = element
      path = FileSystems.join(out, "splits", split, f"part-{shard:05d}-of-{n:05d}.parquet")
      write_bytes(path, parquet_bytes(unpack(packed)))
      return path

    return parts | "WriteSplit" >> beam.Map(write)


class WriteDeadLetters(beam.PTransform):
  """Writes <out>/dead_letter/<table>.jsonl sorted by source, one JSON object per refused row.

  Dead letters are few in a healthy log; each table's file is written by one worker.
  """

  def __init__(self, out_dir: str):
    super().__init__()
    self._out = out_dir

  def expand(self, dead):
    out = self._out

    def sort_key(record):
      path, _, line = record["source"].rpartition(":")
      return (path, int(line) if line.isdigit() else 0, record["reason"])

    def write(element):
      table, records = element
      records = sorted(records, key=sort_key)
      data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
      path = FileSystems.join(out, "dead_letter", f"{table}.jsonl")
      write_bytes(path, data.encode("utf-8"))
      return path

    return (dead
            | "KeyByTable" >> beam.Map(lambda r: (r["table"], r))
            | "GroupByTable" >> beam.GroupByKey()
            | "WriteDead" >> beam.Map(write))


def dead_letter_counts(dead, by_field: bool = False) -> Any:
  """PCollection of one dict {table: {reason: count}}, or with `by_field`
  {table: {reason: {field: count}}} (field '' for a whole row)."""

  def merge(counts: Iterable[Tuple[tuple, int]]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for key, n in sorted(counts):
      if by_field:
        table, reason, field = key
        out.setdefault(table, {}).setdefault(reason, {})[field] = n
      else:
        table, reason = key
        out.setdefault(table, {})[reason] = n
    return out

  if by_field:
    key = lambda r: (r["table"], r["reason"], r.get("field") or "")
  else:
    key = lambda r: (r["table"], r["reason"])
  prefix = "DeadByField" if by_field else "Dead"
  return (dead
          | f"{prefix}Key" >> beam.Map(key)
          | f"{prefix}Count" >> beam.combiners.Count.PerElement()
          | f"{prefix}Gather" >> beam.combiners.ToList()
          | f"{prefix}Merge" >> beam.Map(merge))


def local_path(path: str) -> bool:
  return "://" not in path or path.startswith("file://")


def ensure_dir(path: str) -> None:
  if local_path(path):
    os.makedirs(path, exist_ok=True)
