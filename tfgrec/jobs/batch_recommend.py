"""Driver of the batch-recommendation Beam job: an exported model -> recommendations (JSON lines).

  python -m tfgrec.jobs.batch_recommend --model models/tfgrec --users users.txt \\
      --output recs.jsonl --k 20                                          # DirectRunner
  python -m tfgrec.jobs.batch_recommend --model gs://b/models/tfgrec \\
      --users gs://b/logs/recent-*.parquet --output gs://b/recs/recs --num-shards 64 \\
      --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp \\
      --setup_file=./setup.py

The same output as ``tfgrec recommend`` (one JSON object per user), through RunInference for user
sets too large for one process; ``python pipelines/batch_recommend.py`` is the same driver. Every
option this driver does not know is passed to Beam as a pipeline option. The job itself is in
``tfgrec/beam/batch_recommend.py``.
"""
import tfgrec  # noqa: F401  # Sets TF_USE_LEGACY_KERAS before TensorFlow loads.

import argparse
import os
import sys
import time
from typing import List, Optional

from tfgrec import _cli_constants as constants
from tfgrec import _entry

PROG = "batch_recommend"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The job's own options (everything else goes to Beam); imports nothing heavy."""
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
  parser.add_argument("--format", choices=constants.FORMATS, default=None,
                      help="format of interactions inputs (default: from the file names)")


def config_from_args(args: argparse.Namespace):
  """The job's :class:`tfgrec.beam.batch_recommend.BatchRecommendConfig` from parsed options."""
  from tfgrec.beam import batch_recommend as job  # pylint: disable=g-import-not-at-top
  return job.BatchRecommendConfig(
      model=args.model, users=list(args.users), output=args.output, k=args.k,
      explain=args.explain, max_history=args.max_history, batch_size=args.batch_size,
      num_shards=args.num_shards, fmt=args.format)


def run_from_args(args: argparse.Namespace, beam_args: List[str]) -> int:
  """Runs the job for parsed options and prints its counts; returns the exit code (0)."""
  from tfgrec.beam import batch_recommend as job  # pylint: disable=g-import-not-at-top
  cfg = config_from_args(args)
  start = time.time()
  print(f"[batch-recommend] {cfg.model} -> {cfg.output} (K = {cfg.k}); runner: "
        f"{_entry.runner_name(beam_args)}", flush=True)
  counts = job.run(cfg, beam_args)
  print(f"  rows in {counts['rows_in']:,}  users {counts['users']:,}  "
        f"dead-lettered {counts['dead_letters']:,}  written {counts['written']:,}")
  if counts["dead_letters"]:
    print(f"  dead letters: {os.path.join(job.dead_letter_dir(cfg), 'dead_letter')}/")
  print(f"[batch-recommend] done in {time.time() - start:.1f}s", flush=True)
  return 0


def build_parser() -> argparse.ArgumentParser:
  """The driver's parser: the job's options and ``--verbose``."""
  return _entry.job_parser(PROG, __doc__, add_arguments,
                           "--runner=DataflowRunner --setup_file=./setup.py")


def main(argv: Optional[List[str]] = None) -> int:
  """Runs the job from command-line arguments; exit code 2 with one error line on bad input."""
  return _entry.run_job(build_parser(), run_from_args, argv)


if __name__ == "__main__":
  sys.exit(main())
