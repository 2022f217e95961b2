"""The graph-building job: raw logs -> graph directory. Driver: tfgrec.jobs.build_graph.

Graph directory layout (all paths relative to ``out``):

  schema.pbtxt                      GraphSchema (tfgrec.graph.schema)
  graph-00000-of-00001.tfrecord     the training graph, one GraphTensor tf.Example
  vocab/{user,item,category,item_attribute,user_attribute}.txt
                                    node i of a node set = line i
  attributes.json                   attribute columns -> nodes: kinds, quantile bucket
                                    boundaries, vocabularies (tfgrec.data.attributes)
  catalog.parquet                   every item node: item_id, title, description, categories,
                                    text, in_catalog, attributes (JSON)
  users.parquet                     the users table, when given
  splits/{train,validation,test}/part-SSSSS-of-NNNNN.parquet
                                    deduplicated events with count, sharded by user
  dead_letter/<table>.jsonl         refused rows with reason, field, value, source file:line
  stats.json                        rows in / accepted / dead-lettered per table and reason,
                                    split sizes, node and edge counts, degree quantiles

A run in which no interaction is accepted, or no user has a training event, writes no graph: it
keeps ``dead_letter/`` and ``stats.json`` (with ``"graph": null`` and ``"error"``) for the user to
read, removes every other output, and :func:`run` raises :class:`NoTrainingDataError` naming the
commonest dead-letter reasons.
"""
import dataclasses
import json
import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
import numpy as np
import pandas as pd

from tfgrec.beam import transforms as T
from tfgrec.data import contract
from tfgrec.data import prepare
from tfgrec.data import attributes as attributes_lib

logger = logging.getLogger(__name__)

GRAPH_FILENAME = "graph-00000-of-00001.tfrecord"
STATS_FILENAME = "stats.json"
CATALOG_FILENAME = "catalog.parquet"
USERS_FILENAME = "users.parquet"
OUTPUTS = ("schema.pbtxt", GRAPH_FILENAME, STATS_FILENAME, CATALOG_FILENAME, USERS_FILENAME,
           attributes_lib.SPEC_FILENAME, "vocab", "splits", "dead_letter")
# What a run that found no training data leaves for the user to read.
_KEPT_ON_ERROR = (STATS_FILENAME, "dead_letter")
_TOP_REASONS = 5


class NoTrainingDataError(ValueError):
  """The job accepted no interaction, or no user has a training event: there is no graph.

  The message names the commonest dead-letter reasons with their counts and where the dead
  letters are. `stats` holds the run's stats.json (``"graph": None``).
  """

  def __init__(self, message: str, stats: Optional[Dict[str, Any]] = None):
    super().__init__(message)
    self.stats = stats


@dataclasses.dataclass(frozen=True)
class BuildGraphConfig:
  """What the job reads and how it splits.

  Attributes:
    interactions: file patterns of the interactions table (required).
    out: output graph directory (local or any Beam filesystem path).
    items: file patterns of the items table (optional).
    users: file patterns of the users table (optional).
    fmt: 'csv' | 'jsonl' | 'parquet' for all inputs; None: from each file's name.
    split: the per-user split (temporal; random with split.seed for users with events without
      a time).
    num_shards: shards of users (and of the split files); more for bigger data.
    pseudonymize_salt: when set, user ids are replaced by a salted hash (never written out).
    attributes: how the attribute columns of items and users become nodes.
  """
  interactions: List[str]
  out: str
  items: List[str] = dataclasses.field(default_factory=list)
  users: List[str] = dataclasses.field(default_factory=list)
  fmt: Optional[str] = None
  split: prepare.SplitConfig = prepare.SplitConfig()
  num_shards: int = 8
  pseudonymize_salt: Optional[str] = None
  attributes: attributes_lib.AttributeConfig = attributes_lib.AttributeConfig()

  def __post_init__(self):
    if not self.interactions:
      raise ValueError("interactions: at least one file pattern is required")
    if self.num_shards < 1:
      raise ValueError(f"num_shards must be >= 1, got {self.num_shards}")
    if self.fmt is not None and self.fmt not in contract.FORMATS:
      raise ValueError(f"fmt must be one of {list(contract.FORMATS)}, got {self.fmt!r}")


class _AssembleGraphFn(beam.DoFn):
  """Gathers the training graph, writes graph, schema, vocabularies, catalog and stats."""

  def __init__(self, config: BuildGraphConfig):
    self._config = config

  def process(self, unused, train_edges, seen, split_stats, catalog_parts, user_parts,
              dead_counts, dead_field_counts, file_counts, attribute_spec):
    # Imported here: TensorFlow loads only in the worker that builds the graph.
    from tfgrec.graph import build  # pylint: disable=g-import-not-at-top
    from tfgrec.graph import schema as schema_lib  # pylint: disable=g-import-not-at-top
    tf = schema_lib.tf
    cfg = self._config
    out = cfg.out
    edges = (pd.concat([T.unpack(e) for e in train_edges], ignore_index=True) if train_edges else
             pd.DataFrame({"user_id": [], "item_id": [], "value": np.zeros(0, np.float32),
                           "timestamp": np.zeros(0, np.int64), "count": np.zeros(0, np.int64)}))
    if not len(edges):
      # No graph: stats (and the dead letters, written elsewhere) only; run() raises.
      stats = _stats(cfg, split_stats, dead_counts[0] if dead_counts else {}, file_counts,
                     accepted={"interactions": sum(s["accepted"] for s in split_stats),
                               "items": sum(len(c) for c in catalog_parts),
                               "users": sum(len(u) for u in user_parts)},
                     dead_fields=dead_field_counts[0] if dead_field_counts else {})
      stats["graph"] = None
      stats["error"] = no_training_data_message(stats, out)
      T.ensure_dir(out)
      T.write_bytes(FileSystems.join(out, STATS_FILENAME),
                    (json.dumps(stats, indent=2, sort_keys=True) + "\n").encode("utf-8"))
      yield stats
      return
    events_per_item = (pd.concat(seen).groupby(level=0).sum() if seen else
                       pd.Series(dtype=np.int64))
    catalog = (pd.concat(catalog_parts, ignore_index=True).sort_values("item_id").reset_index(
        drop=True) if catalog_parts else pd.DataFrame({
            "item_id": [], "title": [], "description": [], "categories": [], "attributes": []}))
    catalog["text"] = [prepare.item_text(t, c, d) for t, c, d in zip(
        catalog["title"], catalog["categories"], catalog["description"])]
    logger.info("assembling the graph: %s training edges, %s catalog items", f"{len(edges):,}",
                 f"{len(catalog):,}")
    users_table = (pd.concat(user_parts, ignore_index=True) if user_parts else None)
    tables = build.make_tables(edges, catalog, extra_items=list(events_per_item.index),
                               users_table=users_table, attribute_spec=attribute_spec)
    graph = build.to_graph_tensor(tables)
    schema = schema_lib.graph_schema()
    T.ensure_dir(out)
    schema_lib.write_schema(schema, FileSystems.join(out, "schema.pbtxt"))
    with tf.io.TFRecordWriter(FileSystems.join(out, GRAPH_FILENAME)) as writer:
      writer.write(build.serialize(graph))
    for name, vocab in (("user", tables.users), ("item", tables.items),
                        ("category", tables.categories),
                        (schema_lib.ITEM_ATTRIBUTE, tables.item_attributes),
                        (schema_lib.USER_ATTRIBUTE, tables.user_attributes)):
      T.write_bytes(FileSystems.join(out, "vocab", f"{name}.txt"),
                    "".join(f"{v}\n" for v in vocab).encode("utf-8"))
    T.write_bytes(FileSystems.join(out, attributes_lib.SPEC_FILENAME),
                  attributes_lib.write_spec(attribute_spec))

    # Catalog of every item node (items known only from interactions have no text).
    in_catalog = pd.Index(catalog["item_id"])
    unknown = pd.Index(tables.items).difference(in_catalog)
    full = pd.concat([
        catalog.assign(in_catalog=True),
        pd.DataFrame({"item_id": unknown, "title": "", "description": "",
                      "categories": [()] * len(unknown), "attributes": "{}", "text": "",
                      "in_catalog": False}),
    ], ignore_index=True).sort_values("item_id").reset_index(drop=True)
    full["categories"] = full["categories"].map(list)
    full = full[["item_id", "title", "description", "categories", "text", "in_catalog",
                 "attributes"]]
    T.write_bytes(FileSystems.join(out, CATALOG_FILENAME), T.parquet_bytes(full))
    users_accepted = 0
    if user_parts:
      users = pd.concat(user_parts, ignore_index=True).sort_values("user_id")
      users_accepted = len(users)
      users["has_interactions"] = users["user_id"].isin(pd.Index(tables.users))
      T.write_bytes(FileSystems.join(out, USERS_FILENAME),
                    T.parquet_bytes(users.reset_index(drop=True)))

    cold = np.bincount(tables.edges["item"], minlength=len(tables.items)) == 0
    unknown_events = int(events_per_item[events_per_item.index.difference(in_catalog)].sum())
    stats = _stats(cfg, split_stats, dead_counts[0] if dead_counts else {}, file_counts,
                   accepted={"interactions": sum(s["accepted"] for s in split_stats),
                             "items": len(catalog), "users": users_accepted},
                   dead_fields=dead_field_counts[0] if dead_field_counts else {})
    stats["interactions"]["items_not_in_catalog"] = {
        "items": int(len(unknown)), "interactions": unknown_events}
    stats["graph"] = {
        "node_sets": {"user": len(tables.users), "item": len(tables.items),
                      "category": len(tables.categories),
                      "item_attribute": len(tables.item_attributes),
                      "user_attribute": len(tables.user_attributes)},
        "edge_sets": {"interacted": len(tables.edges), "interacted_by": len(tables.edges),
                      "in_category": len(tables.item_category),
                      "has_item": len(tables.item_category),
                      "has_attribute": len(tables.item_attribute),
                      "attribute_of": len(tables.item_attribute),
                      "user_has_attribute": len(tables.user_attribute),
                      "attribute_of_user": len(tables.user_attribute)},
        "attributes": {table: {column: entry["kind"] for column, entry in sorted(
            attribute_spec[table].items())} for table in attributes_lib.TABLES},
        "cold_items": int(cold.sum()),
        "cold_items_with_text": int((cold & (tables.item_text != "")).sum()),
        "items_without_text": int((tables.item_text == "").sum()),
        "degrees": build.degree_quantiles(tables),
    }
    T.write_bytes(FileSystems.join(out, STATS_FILENAME),
                  (json.dumps(stats, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    yield stats


def _stats(cfg: BuildGraphConfig, split_stats: List[Dict[str, int]],
           dead: Dict[str, Dict[str, int]], file_counts, accepted: Dict[str, int],
           dead_fields: Optional[Dict[str, Dict[str, Dict[str, int]]]] = None):
  """Accounting per table; raises if rows in != accepted + dead-lettered (a bug, never data)."""
  dead_fields = dead_fields or {}
  tables: Dict[str, Any] = {}
  for table in contract.TABLES:
    files = sorted((path, rows) for t, path, rows in file_counts if t == table)
    if not files and table != "interactions":
      continue
    reasons = dict(sorted(dead.get(table, {}).items()))
    rows_in = sum(rows for _, rows in files)
    dead_total = sum(reasons.values())
    if rows_in != accepted[table] + dead_total:
      raise RuntimeError(f"{table}: accounting does not balance: {rows_in} rows in, "
                         f"{accepted[table]} accepted, {dead_total} dead-lettered")
    tables[table] = {"files": [{"path": p, "rows": r} for p, r in files], "rows_in": rows_in,
                     "accepted": accepted[table], "dead_lettered": dead_total,
                     "dead_letter_reasons": reasons,
                     "dead_letter_fields": {r: dict(sorted(f.items())) for r, f in sorted(
                         dead_fields.get(table, {}).items())}}
  total = {k: sum(s[k] for s in split_stats) for k in (
      "accepted", "duplicates_collapsed", "unique_events", "users", "users_short_history",
      "without_time", "users_split_at_random", "split_train", "split_validation", "split_test")}
  return {
      "contract_version": contract.CONTRACT_VERSION,
      "tables": tables,
      "interactions": {
          "accepted": total["accepted"],
          "duplicates_collapsed": total["duplicates_collapsed"],
          "unique_events": total["unique_events"],
          "without_time": total["without_time"],
          "pseudonymized": bool(cfg.pseudonymize_salt),
      },
      "split": {
          "train": total["split_train"], "validation": total["split_validation"],
          "test": total["split_test"], "users": total["users"],
          "users_kept_whole_in_train": total["users_short_history"],
          "users_split_at_random": total["users_split_at_random"],
          "config": dataclasses.asdict(cfg.split), "num_shards": cfg.num_shards,
      },
  }


def build_pipeline(p: beam.Pipeline, cfg: BuildGraphConfig):
  """Adds the job to pipeline `p`; returns the PCollection holding the stats dict."""
  chunks, dead, counts = p | T.ReadRawTable("interactions", cfg.interactions, cfg.fmt)
  dead_parts, count_parts = [dead], [counts]
  parts, train_edges, seen, split_stats = chunks | "Split" >> T.SplitInteractions(
      cfg.split, cfg.num_shards, cfg.pseudonymize_salt)
  _ = parts | "WriteSplits" >> T.WriteSplitShards(cfg.out, cfg.num_shards)

  side = {}
  for table, patterns, key in (("items", cfg.items, "item_id"), ("users", cfg.users, "user_id")):
    if not patterns:
      side[table] = p | f"No_{table}" >> beam.Create([])
      continue
    rows, bad, cnt = p | T.ReadRawTable(table, patterns, cfg.fmt)
    if table == "users" and cfg.pseudonymize_salt:
      salt = cfg.pseudonymize_salt
      rows = rows | "PseudonymizeUsers" >> beam.Map(
          lambda f: f.assign(user_id=prepare.pseudonymize(f["user_id"], salt)))
    unique, dup = rows | f"Dedupe_{table}" >> T.DedupeById(table, key, cfg.num_shards)
    side[table] = unique
    dead_parts += [bad, dup]
    count_parts.append(cnt)

  spec = side | "Attributes" >> T.AttributeSpec(cfg.attributes)
  all_dead = tuple(dead_parts) | "AllDead" >> beam.Flatten()
  _ = all_dead | "WriteDeadLetters" >> T.WriteDeadLetters(cfg.out)
  all_counts = tuple(count_parts) | "AllCounts" >> beam.Flatten()
  as_list = beam.pvalue.AsList
  return (p
          | "Start" >> beam.Create([None])
          | "Assemble" >> beam.ParDo(
              _AssembleGraphFn(cfg), as_list(train_edges), as_list(seen), as_list(split_stats),
              as_list(side["items"]), as_list(side["users"]),
              as_list(T.dead_letter_counts(all_dead)),
              as_list(T.dead_letter_counts(all_dead, by_field=True)), as_list(all_counts),
              beam.pvalue.AsSingleton(spec)))


def clear_outputs(out: str, keep: Tuple[str, ...] = ()) -> None:
  """Removes what an earlier run wrote to `out` (only tfgrec's own outputs), but `keep`."""
  for name in OUTPUTS:
    path = FileSystems.join(out, name)
    if name not in keep and FileSystems.exists(path):
      FileSystems.delete([path])


def no_training_data_message(stats: Dict[str, Any], out: str) -> str:
  """Why a run has no graph: no interaction accepted (the commonest dead-letter reasons, with
  their fields and counts) or no training event."""
  t = stats["tables"]["interactions"]
  where = FileSystems.join(out, "dead_letter") + "/"
  if not t["accepted"]:
    if not t["rows_in"]:
      files = ", ".join(f["path"] for f in t["files"]) or "none"
      return f"no interaction was accepted: the interactions files hold no rows (files: {files})"
    by_field = t.get("dead_letter_fields") or {
        r: {"": n} for r, n in t["dead_letter_reasons"].items()}
    counts = sorted(((n, reason, field) for reason, fields in by_field.items()
                     for field, n in fields.items()), key=lambda c: (-c[0], c[1], c[2]))
    shown = [f"{reason} {field!r}: {n:,}" if field else f"{reason}: {n:,}"
             for n, reason, field in counts[:_TOP_REASONS]]
    if len(counts) > _TOP_REASONS:
      shown.append(f"{len(counts) - _TOP_REASONS} more")
    return (f"no interaction was accepted: {t['dead_lettered']:,} rows dead-lettered "
            f"({', '.join(shown)}); see {where}")
  s = stats["split"]
  return (f"no user has a training event: {t['accepted']:,} interactions accepted, split "
          f"train 0 / validation {s['validation']:,} / test {s['test']:,}; lower "
          f"validation_fraction / test_fraction or raise min_interactions "
          f"(split config: {s['config']})")


def run(cfg: BuildGraphConfig, pipeline_args: Optional[List[str]] = None) -> Dict[str, Any]:
  """Runs the job and returns the stats (also in <out>/stats.json).

  Args:
    cfg: what to read and write.
    pipeline_args: standard Beam options (``--runner``, ``--direct_num_workers``,
      ``--project``, ``--temp_location``, ``--setup_file``, ...). Default: DirectRunner, in
      process.

  Raises:
    NoTrainingDataError: no interaction was accepted or no user has a training event. No graph
      is left in `cfg.out`; its stats.json and dead_letter/ stay.
  """
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  options = PipelineOptions(pipeline_args or [])
  clear_outputs(cfg.out)
  T.ensure_dir(cfg.out)
  with beam.Pipeline(options=options) as p:
    build_pipeline(p, cfg)
  with FileSystems.open(FileSystems.join(cfg.out, STATS_FILENAME)) as f:
    stats = json.loads(f.read().decode("utf-8"))
  if stats.get("graph") is None:
    clear_outputs(cfg.out, keep=_KEPT_ON_ERROR)
    raise NoTrainingDataError(stats.get("error") or no_training_data_message(stats, cfg.out),
                              stats)
  return stats


def summary_lines(stats: Dict[str, Any], out: str) -> List[str]:
  """Human-readable summary of a finished run."""
  lines = [f"graph directory: {out}"]
  for table, t in stats["tables"].items():
    reasons = ", ".join(f"{k}={v:,}" for k, v in t["dead_letter_reasons"].items()) or "none"
    lines.append(f"  {table:<12} rows in {t['rows_in']:>11,}  accepted {t['accepted']:>11,}  "
                 f"dead-lettered {t['dead_lettered']:>9,}  ({reasons})")
  i, s, g = stats["interactions"], stats["split"], stats["graph"]
  lines.append(f"  duplicates collapsed {i['duplicates_collapsed']:,}; items not in catalog "
               f"{i['items_not_in_catalog']['items']:,} "
               f"({i['items_not_in_catalog']['interactions']:,} interactions)")
  lines.append(f"  split: train {s['train']:,}  validation {s['validation']:,}  "
               f"test {s['test']:,}  ({s['users']:,} users)")
  if i.get("without_time"):
    lines.append(f"  events without a time {i['without_time']:,}: "
                 f"{s.get('users_split_at_random', 0):,} users split at random "
                 f"(seed {s['config'].get('seed', 0)})")
  ns, es = g["node_sets"], g["edge_sets"]
  lines.append(f"  nodes: user {ns['user']:,}  item {ns['item']:,} (cold {g['cold_items']:,})  "
               f"category {ns['category']:,}")
  lines.append(f"  edges: interacted {es['interacted']:,}  in_category {es['in_category']:,}")
  for table, node_set, edge_set in (("items", "item_attribute", "has_attribute"),
                                    ("users", "user_attribute", "user_has_attribute")):
    kinds = g.get("attributes", {}).get(table)
    if kinds:
      lines.append(f"  {table} attributes: " + ", ".join(f"{c} ({k})" for c, k in kinds.items())
                   + f"; {ns[node_set]:,} {node_set} nodes, {es[edge_set]:,} edges")
  if any(t["dead_lettered"] for t in stats["tables"].values()):
    lines.append(f"  dead letters: {os.path.join(out, 'dead_letter')}/")
  return lines
