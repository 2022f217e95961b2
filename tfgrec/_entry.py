"""What every entry point does first: a quiet start, Python logging, and error exits.

The entry points are the ``tfgrec`` command and the Beam job drivers (``python -m
tfgrec.jobs.build_graph``, ``python -m tfgrec.jobs.batch_recommend``, ``pipelines/*.py``). Each
parses its arguments (without importing TensorFlow), then calls :func:`quiet_start` before
anything imports TensorFlow, then runs its work under :func:`run_reporting_errors`.

On a machine without a GPU, TensorFlow's C++ side prints lines that read like failures:

* ``E0000 ... cuda_platform.cc] failed call to cuInit: INTERNAL: CUDA error: ...`` when it first
  looks for devices (error level: ``TF_CPP_MIN_LOG_LEVEL=3`` hides it);
* ``I0000 ... cpu_feature_guard.cc] This TensorFlow binary is optimized ...`` and, on CPUs where
  oneDNN is on, ``oneDNN custom operations are on ... TF_ENABLE_ONEDNN_OPTS=0`` (info level:
  hidden by the same variable; oneDNN itself stays on, it is the faster path);
* ``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR``
  followed by ``I0000 ... cudart_stub.cc] Could not find cuda drivers on your machine``, twice
  (two shared libraries, each with its own absl): printed while TensorFlow's libraries load, by
  absl loggers that no environment variable reaches (TensorFlow 2.21 ignores
  ``TF_CPP_MIN_LOG_LEVEL`` for them). Only the process's stderr can drop them, so
  :func:`quiet_start` imports TensorFlow with file descriptor 2 going to a temporary file and
  writes back every line that is not one of these (:data:`NOISE`).

Environment variables must be set before TensorFlow is first imported; processes started later
(Beam's worker processes) inherit them. ``--verbose`` leaves everything as TensorFlow prints it,
and a ``TF_CPP_MIN_LOG_LEVEL`` the user set is kept. Importing tfgrec as a library changes none of
this: only the entry points call these functions.
"""
import argparse
import contextlib
import errno
import logging
import os
import sys
import tempfile
from typing import Callable, Iterator, List, Optional

# Substrings of the start-up lines dropped from stderr while TensorFlow is imported.
NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "Could not find cuda drivers on your machine, GPU will not be used",
    "failed call to cuInit",
    "oneDNN custom operations are on",
    "cpu_feature_guard.cc",
    "To enable the following instructions:",  # The second line of cpu_feature_guard's message.
    "Attempting to register factory for plugin",  # cuFFT / cuDNN / cuBLAS, twice registered.
)
# TensorFlow's C++ log threshold: 3 shows only fatal errors.
QUIET_TF_CPP_MIN_LOG_LEVEL = "3"


def is_noise(line: str) -> bool:
  """Whether `line` of stderr is one of TensorFlow's start-up lines in :data:`NOISE`."""
  return any(marker in line for marker in NOISE)


@contextlib.contextmanager
def _stderr_without_noise() -> Iterator[None]:
  """Sends file descriptor 2 to a temporary file; on exit writes back all but the noise."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(True)
              if not is_noise(line)]
      if kept:
        os.write(2, "".join(kept).encode("utf-8"))


def import_tensorflow_quietly() -> None:
  """Imports TensorFlow (after tfgrec: Keras 2) with its start-up lines dropped from stderr.

  Other lines written to stderr meanwhile are kept. Does nothing when TensorFlow is imported.
  """
  if "tensorflow" in sys.modules:
    return
  import tfgrec  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import  # Keras 2 first.
  with _stderr_without_noise():
    import tensorflow  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import


class RetracingNoteFilter:
  """Drops TensorFlow's "N out of the last M calls to <function> triggered tf.function
  retracing" warning. `tfgrec evaluate` builds one candidate-feature function per drop-one
  ablation, each traced once by design, which TensorFlow reports as excessive retracing."""

  def filter(self, record) -> bool:
    return "triggered tf.function retracing" not in record.getMessage()


def quiet_start(verbose: bool, import_tensorflow: bool = True) -> None:
  """Silences TensorFlow's C++ and absl start-up logs unless `verbose`.

  Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless already set; child processes inherit it) and, with
  `import_tensorflow`, imports TensorFlow through :func:`import_tensorflow_quietly` and drops
  its retracing warnings (:class:`RetracingNoteFilter`). Call it after parsing arguments and
  before anything imports TensorFlow.

  Args:
    verbose: leave TensorFlow's logs as they are.
    import_tensorflow: import TensorFlow now (the command needs it); False for commands that
      never load it.
  """
  if verbose:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_CPP_MIN_LOG_LEVEL)
  if import_tensorflow:
    import_tensorflow_quietly()
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, RetracingNoteFilter) for f in logger.filters):
      logger.addFilter(RetracingNoteFilter())


# TensorFlow's graph optimizer (Grappler) rewrites every tf.function graph before its first run.
# For tfgrec's training graphs that costs far more than it gains: on the README's small run,
# `tfgrec train` takes 42 s with it off against 83 s with it on, and a MovieLens tower epoch
# takes the same time either way (BENCHMARKS.md). The compute commands turn it off; this
# variable set to "on" keeps it. Importing tfgrec as a library changes nothing.
GRAPH_OPTIMIZER_ENV = "TFGREC_GRAPH_OPTIMIZER"


def configure_graph_optimizer() -> bool:
  """Turns Grappler off for this process unless TFGREC_GRAPH_OPTIMIZER=on; returns whether it
  was turned off."""
  value = os.environ.get(GRAPH_OPTIMIZER_ENV, "off").strip().lower()
  if value not in ("on", "off"):
    raise ValueError(f"{GRAPH_OPTIMIZER_ENV} must be 'on' or 'off', got {value!r}")
  if value == "on":
    return False
  import tfgrec  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import  # Keras 2 first.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
  return True


class _QuietImportWarnings(logging.Filter):
  """Drops a warning Beam logs at import about optional Google Cloud client libraries."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("apitools not found")


_IMPORT_FILTER = _QuietImportWarnings()


def filter_import_warnings() -> None:
  """Installs, once, the root-logger filter for warnings libraries log at import."""
  root = logging.getLogger()
  if _IMPORT_FILTER not in root.filters:
    root.addFilter(_IMPORT_FILTER)


def configure_logging(verbose: bool) -> None:
  """Python logging of an entry point: tfgrec's progress at INFO, other libraries' warnings.

  Args:
    verbose: INFO for every library (Beam stays at WARNING).
  """
  # force: an import may have configured the root logger already (a library's logging.warning
  # at import time does), and this process's output is ours to format.
  logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                      format="%(asctime)s %(levelname)s %(message)s", force=True)
  if not verbose:
    logging.getLogger("tfgrec").setLevel(logging.INFO)
  logging.getLogger("apache_beam").setLevel(logging.WARNING)


def run_reporting_errors(prog: str, work: Callable[[], int]) -> int:
  """Runs `work`; a user's mistake becomes one ``<prog>: error: ...`` line and exit code 2.

  Args:
    prog: what the message starts with, e.g. ``tfgrec build-graph``.
    work: the command; returns its exit code.

  Returns:
    The exit code of `work`, or 2 after ValueError, FileNotFoundError, ImportError, KeyError or
    another OSError (a full disk is named as such).
  """
  try:
    return work()
  except (ValueError, FileNotFoundError, ImportError, KeyError) as e:
    print(f"{prog}: error: {e}", file=sys.stderr)
    return 2
  except OSError as e:
    if e.errno == errno.ENOSPC:
      where = f" writing {e.filename}" if e.filename else ""
      print(f"{prog}: error: no space left on the device{where}; free some space or point the "
            "output directories elsewhere (--out, or the paths of --config)", file=sys.stderr)
    else:
      print(f"{prog}: error: {e}", file=sys.stderr)
    return 2


def add_verbose_flag(parser: argparse.ArgumentParser, suppress_default: bool = False) -> None:
  """Adds ``-v/--verbose``: TensorFlow's start-up logs and INFO logs of every library.

  Args:
    parser: the parser to extend.
    suppress_default: leave the attribute unset when the flag is absent (for subcommands, so
      that ``tfgrec -v COMMAND`` keeps the value of the top-level flag).
  """
  parser.add_argument("-v", "--verbose", action="store_true",
                      default=argparse.SUPPRESS if suppress_default else False,
                      help="show TensorFlow's start-up logs (CUDA probing, CPU features) and "
                      "every library's INFO logs")


def job_parser(prog: str, doc: str, add_arguments: Callable[[argparse.ArgumentParser], None],
               examples: str) -> argparse.ArgumentParser:
  """The parser of a Beam job driver: its options, ``--verbose``; the rest goes to Beam.

  Args:
    prog: the driver's name in messages.
    doc: the driver module's docstring (its first paragraph is the description).
    add_arguments: adds the job's own options.
    examples: Beam options to show in the epilog.
  """
  parser = argparse.ArgumentParser(
      prog=prog, description=doc.split("\n\n", maxsplit=1)[0],
      epilog=f"Unknown options are Beam pipeline options, e.g. {examples}")
  add_arguments(parser)
  add_verbose_flag(parser)
  return parser


def runner_name(beam_args: List[str]) -> str:
  """The runner Beam options ask for (DirectRunner when none)."""
  for i, a in enumerate(beam_args):
    if a.startswith("--runner="):
      return a.split("=", 1)[1]
    if a == "--runner" and i + 1 < len(beam_args):
      return beam_args[i + 1]
  return "DirectRunner"


def run_job(parser: argparse.ArgumentParser,
            run: Callable[[argparse.Namespace, List[str]], int],
            argv: Optional[List[str]] = None) -> int:
  """The main of a Beam job driver: options, a quiet start, logging, then `run`.

  Args:
    parser: the driver's parser, with ``--verbose`` (:func:`add_verbose_flag`); options it does
      not know are Beam pipeline options.
    run: ``run(args, beam_args)`` -> exit code.
    argv: the arguments (default: ``sys.argv[1:]``).

  Returns:
    The exit code: that of `run`, or 2 with one ``<prog>: error: ...`` line on stderr.
  """
  filter_import_warnings()
  args, beam_args = parser.parse_known_args(argv)
  quiet_start(args.verbose)
  configure_logging(args.verbose)
  return run_reporting_errors(parser.prog, lambda: run(args, beam_args))
