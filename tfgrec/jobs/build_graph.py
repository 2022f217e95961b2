"""Driver of the graph-building Beam job: raw logs (CSV / JSONL / Parquet) -> graph directory.

  python -m tfgrec.jobs.build_graph --raw data/ --out graph/                # DirectRunner
  python -m tfgrec.jobs.build_graph --raw gs://b/raw --out gs://b/graph \\
      --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp \\
      --setup_file=./setup.py

The same job as ``tfgrec build-graph`` and ``python pipelines/build_graph.py``. Every option this
driver does not know is passed to Beam as a pipeline option. The job itself, and the output
layout, are in ``tfgrec/beam/build_graph.py``.
"""
import tfgrec  # noqa: F401  # Sets TF_USE_LEGACY_KERAS before TensorFlow loads.

import argparse
import os
import sys
import time
from typing import Dict, List, Optional

from tfgrec import _cli_constants as constants
from tfgrec import _entry

PROG = "build_graph"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The job's own options (everything else goes to Beam); imports nothing heavy."""
  src = parser.add_argument_group("input (the raw-log contract, schemas/README.md)")
  src.add_argument("--raw", metavar="DIR",
                   help="directory holding interactions.*, and optionally items.* and users.* "
                   "(csv, jsonl or parquet; sharded files like interactions-00001.csv too)")
  src.add_argument("--interactions", action="append", default=[], metavar="PATTERN",
                   help="interactions file or glob (repeatable; local or gs://, s3://, ...)")
  src.add_argument("--items", action="append", default=[], metavar="PATTERN",
                   help="items (catalog) file or glob (repeatable)")
  src.add_argument("--users", action="append", default=[], metavar="PATTERN",
                   help="users file or glob (repeatable)")
  src.add_argument("--format", choices=constants.FORMATS, default=None,
                   help="format of all inputs (default: from each file's extension)")
  parser.add_argument("--out", required=True, metavar="DIR", help="graph directory to write")
  split = parser.add_argument_group(
      "split per user", "by time; users with events without a time are split at random")
  split.add_argument("--validation-fraction", type=float, default=constants.VALIDATION_FRACTION)
  split.add_argument("--test-fraction", type=float, default=constants.TEST_FRACTION)
  split.add_argument("--split-seed", type=int, default=constants.SPLIT_SEED,
                     help="seed of the random split of users whose events have no time")
  split.add_argument("--min-interactions", type=int, default=constants.MIN_INTERACTIONS,
                     help="users with fewer events stay entirely in train")
  attributes = parser.add_argument_group(
      "attributes", "further columns of items and users become attribute nodes: numbers in "
      "quantile buckets, other values in a vocabulary with one <other> node per column")
  attributes.add_argument("--ignore-attribute", action="append", default=[], metavar="COLUMN",
                          help="leave this column out of the graph (repeatable)")
  attributes.add_argument("--categorical-attribute", action="append", default=[],
                          metavar="COLUMN",
                          help="read this numeric-looking column as categories (repeatable)")
  attributes.add_argument("--attribute-buckets", type=int, default=constants.ATTRIBUTE_BUCKETS,
                          help="quantile buckets per numeric column (0: all categorical)")
  attributes.add_argument("--attribute-min-count", type=int,
                          default=constants.ATTRIBUTE_MIN_COUNT,
                          help="values present fewer times share the column's <other> node")
  attributes.add_argument("--attribute-max-values", type=int,
                          default=constants.ATTRIBUTE_MAX_VALUES,
                          help="most frequent values kept per categorical column")
  parser.add_argument("--num-shards", type=int, default=8,
                      help="user shards (parallelism of the split step and split files)")
  parser.add_argument("--pseudonymize", action="store_true",
                      help="replace user ids by a salted hash; salt from --pseudonymize-salt or "
                      f"${constants.SALT_ENV} (never written to outputs)")
  parser.add_argument("--pseudonymize-salt", default=None, help=argparse.SUPPRESS)


def find_tables(raw: str) -> Dict[str, List[str]]:
  """The raw-log files in directory `raw`, by table.

  Args:
    raw: a directory on any Beam filesystem holding ``interactions*`` (required) and optionally
      ``items*`` and ``users*`` files (hidden files are skipped).

  Returns:
    ``{table: sorted paths}`` for the tables present.

  Raises:
    FileNotFoundError: no interactions file in `raw`.
  """
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  from tfgrec.data import contract  # pylint: disable=g-import-not-at-top
  found = {}
  for table in contract.TABLES:
    matches = FileSystems.match([FileSystems.join(raw, f"{table}*")])[0].metadata_list
    paths = sorted(m.path for m in matches
                   if not os.path.basename(m.path).startswith(".") and m.size_in_bytes >= 0)
    if paths:
      found[table] = paths
  if "interactions" not in found:
    raise FileNotFoundError(f"--raw {raw}: no interactions.* file (csv, jsonl or parquet)")
  return found


def config_from_args(args: argparse.Namespace):
  """The job's :class:`tfgrec.beam.build_graph.BuildGraphConfig` from parsed options.

  Raises:
    ValueError: no input, or --pseudonymize without a salt.
    FileNotFoundError: --raw holds no interactions file.
  """
  from tfgrec.beam import build_graph as job  # pylint: disable=g-import-not-at-top
  from tfgrec.data import attributes as attributes_lib  # pylint: disable=g-import-not-at-top
  from tfgrec.data import prepare  # pylint: disable=g-import-not-at-top
  interactions, items, users = list(args.interactions), list(args.items), list(args.users)
  if args.raw:
    found = find_tables(args.raw)
    interactions = interactions or found["interactions"]
    items = items or found.get("items", [])
    users = users or found.get("users", [])
  if not interactions:
    raise ValueError("give --raw DIR or --interactions PATTERN")
  salt = None
  if args.pseudonymize:
    salt = args.pseudonymize_salt or os.environ.get(prepare.SALT_ENV)
    if not salt:
      raise ValueError(f"--pseudonymize needs a salt: set ${prepare.SALT_ENV} "
                       "(or --pseudonymize-salt)")
  return job.BuildGraphConfig(
      interactions=interactions, items=items, users=users, out=args.out, fmt=args.format,
      split=prepare.SplitConfig(args.validation_fraction, args.test_fraction,
                                args.min_interactions, args.split_seed),
      num_shards=args.num_shards, pseudonymize_salt=salt,
      attributes=attributes_lib.AttributeConfig(
          ignore=tuple(args.ignore_attribute), categorical=tuple(args.categorical_attribute),
          buckets=args.attribute_buckets, min_count=args.attribute_min_count,
          max_values=args.attribute_max_values))


def run_from_args(args: argparse.Namespace, beam_args: List[str]) -> int:
  """Runs the job for parsed options and prints its summary; returns the exit code (0)."""
  from tfgrec.beam import build_graph as job  # pylint: disable=g-import-not-at-top
  cfg = config_from_args(args)
  start = time.time()
  print(f"[build-graph] reading {len(cfg.interactions)} interactions file(s)"
        f"{f', {len(cfg.items)} items file(s)' if cfg.items else ''}"
        f"{f', {len(cfg.users)} users file(s)' if cfg.users else ''}; "
        f"runner: {_entry.runner_name(beam_args)}", flush=True)
  stats = job.run(cfg, beam_args)
  for line in job.summary_lines(stats, cfg.out):
    print(line)
  print(f"[build-graph] done in {time.time() - start:.1f}s", flush=True)
  return 0


def build_parser() -> argparse.ArgumentParser:
  """The driver's parser: the job's options and ``--verbose``."""
  return _entry.job_parser(PROG, __doc__, add_arguments,
                           "--runner=DataflowRunner --setup_file=./setup.py, or "
                           "--direct_num_workers=2 --direct_running_mode=multi_processing")


def main(argv: Optional[List[str]] = None) -> int:
  """Runs the job from command-line arguments; exit code 2 with one error line on bad input."""
  return _entry.run_job(build_parser(), run_from_args, argv)


if __name__ == "__main__":
  sys.exit(main())
