"""Beam job: raw logs (CSV / JSONL / Parquet) -> TF-GNN graph directory.

  python -m pipelines.build_graph --raw data/ --out graph/              # DirectRunner
  python -m pipelines.build_graph --raw gs://b/raw --out gs://b/graph \\
      --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp \\
      --setup_file=./setup.py

Same as `tfgrec build-graph`. Every option tfgrec does not know is passed to Beam as a pipeline
option. See tfgrec/beam/build_graph.py for the output layout.
"""
import tfgrec  # noqa: F401  # Sets TF_USE_LEGACY_KERAS before TensorFlow loads.

import argparse
import logging
import os
import sys
import time
from typing import List, Optional

from tfgrec.beam import build_graph as job
from tfgrec.data import contract
from tfgrec.data import prepare


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The job's own options (everything else goes to Beam)."""
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
  src.add_argument("--format", choices=contract.FORMATS, default=None,
                   help="format of all inputs (default: from each file's extension)")
  parser.add_argument("--out", required=True, metavar="DIR", help="graph directory to write")
  split = parser.add_argument_group("temporal split per user")
  defaults = prepare.SplitConfig()
  split.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
  split.add_argument("--test-fraction", type=float, default=defaults.test_fraction)
  split.add_argument("--min-interactions", type=int, default=defaults.min_interactions,
                     help="users with fewer events stay entirely in train")
  parser.add_argument("--num-shards", type=int, default=8,
                      help="user shards (parallelism of the split step and split files)")
  parser.add_argument("--pseudonymize", action="store_true",
                      help="replace user ids by a salted hash; salt from --pseudonymize-salt or "
                      f"${prepare.SALT_ENV} (never written to outputs)")
  parser.add_argument("--pseudonymize-salt", default=None, help=argparse.SUPPRESS)


def find_tables(raw: str):
  """{table: [paths]} of the raw-log files in directory `raw` (interactions required)."""
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
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


def config_from_args(args: argparse.Namespace) -> job.BuildGraphConfig:
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
                                args.min_interactions),
      num_shards=args.num_shards, pseudonymize_salt=salt)


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="build_graph", description=__doc__.split("\n\n")[0],
      epilog="Unknown options are Beam pipeline options, e.g. --runner=DataflowRunner "
      "--direct_num_workers=2 --direct_running_mode=multi_processing")
  add_arguments(parser)
  args, beam_args = parser.parse_known_args(argv)
  return run_from_args(args, beam_args)


def run_from_args(args: argparse.Namespace, beam_args: List[str]) -> int:
  cfg = config_from_args(args)
  start = time.time()
  print(f"[build-graph] reading {len(cfg.interactions)} interactions file(s)"
        f"{f', {len(cfg.items)} items file(s)' if cfg.items else ''}"
        f"{f', {len(cfg.users)} users file(s)' if cfg.users else ''}; "
        f"runner: {_runner(beam_args)}", flush=True)
  stats = job.run(cfg, beam_args)
  for line in job.summary_lines(stats, cfg.out):
    print(line)
  print(f"[build-graph] done in {time.time() - start:.1f}s", flush=True)
  return 0


def _runner(beam_args: List[str]) -> str:
  for i, a in enumerate(beam_args):
    if a.startswith("--runner="):
      return a.split("=", 1)[1]
    if a == "--runner" and i + 1 < len(beam_args):
      return beam_args[i + 1]
  return "DirectRunner"


if __name__ == "__main__":
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
  logging.getLogger("apache_beam").setLevel(logging.WARNING)
  sys.exit(main())
