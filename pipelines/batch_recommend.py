"""Beam job: recommendations for many users with the exported SavedModel (RunInference).

  python -m pipelines.batch_recommend --model models/tfgrec --users users.txt \\
      --output recs.jsonl --k 20                                          # DirectRunner
  python -m pipelines.batch_recommend --model gs://b/models/tfgrec \\
      --users gs://b/logs/recent-*.parquet --output gs://b/recs/recs --num-shards 64 \\
      --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp \\
      --setup_file=./setup.py

The same output as `tfgrec recommend` (one JSON object per user). Every option this driver does
not know is passed to Beam as a pipeline option. See tfgrec/beam/batch_recommend.py.
"""
import tfgrec  # noqa: F401  # Sets TF_USE_LEGACY_KERAS before TensorFlow loads.

import argparse
import logging
import os
import sys
import time
from typing import List, Optional

from tfgrec.beam import batch_recommend as job
from tfgrec.data import contract


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The job's own options (everything else goes to Beam)."""
  parser.add_argument("--model", required=True, metavar="DIR",
                      help="exported model: <base>/<name> (highest version) or a version dir")
  parser.add_argument("--users", required=True, action="append", metavar="PATTERN",
                      help="users: a text file with one id per line, or interactions files "
                      "of the raw-log contract (csv, jsonl, parquet) to take histories from; "
                      "repeatable")
  parser.add_argument("--output", required=True, metavar="PATH",
                      help="JSONL output (a prefix when --num-shards > 1)")
  parser.add_argument("--k", type=int, default=20, help="items per user (<= K of the export)")
  parser.add_argument("--explain", action="store_true",
                      help="add, per item, the user's history item that contributed most")
  parser.add_argument("--max-history", type=int, default=50,
                      help="latest items per user taken from interactions")
  parser.add_argument("--batch-size", type=int, default=256,
                      help="largest batch sent to the model")
  parser.add_argument("--num-shards", type=int, default=1, help="output files")
  parser.add_argument("--format", choices=contract.FORMATS, default=None,
                      help="format of interactions inputs (default: from the file names)")


def config_from_args(args: argparse.Namespace) -> job.BatchRecommendConfig:
  return job.BatchRecommendConfig(
      model=args.model, users=list(args.users), output=args.output, k=args.k,
      explain=args.explain, max_history=args.max_history, batch_size=args.batch_size,
      num_shards=args.num_shards, fmt=args.format)


def run_from_args(args: argparse.Namespace, beam_args: List[str]) -> int:
  cfg = config_from_args(args)
  start = time.time()
  print(f"[batch-recommend] {cfg.model} -> {cfg.output} (K = {cfg.k})", flush=True)
  counts = job.run(cfg, beam_args)
  print(f"  rows in {counts['rows_in']:,}  users {counts['users']:,}  "
        f"dead-lettered {counts['dead_letters']:,}  written {counts['written']:,}")
  if counts["dead_letters"]:
    print(f"  dead letters: {os.path.join(job.dead_letter_dir(cfg), 'dead_letter')}/")
  print(f"[batch-recommend] done in {time.time() - start:.1f}s", flush=True)
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="batch_recommend", description=__doc__.split("\n\n")[0],
      epilog="Unknown options are Beam pipeline options, e.g. --runner=DataflowRunner")
  add_arguments(parser)
  args, beam_args = parser.parse_known_args(argv)
  return run_from_args(args, beam_args)


if __name__ == "__main__":
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
  logging.getLogger("apache_beam").setLevel(logging.WARNING)
  sys.exit(main())
