"""How long `tfgrec export` takes on a trained run, and where the time goes.

  python benchmarks/bench_export.py --run out/run [--repeat 2]

Export only packages the final fit's artifacts (tfgrec.train.exporter): it checks them against
the manifest, assembles the serving module and saves it with its warmup requests. The phases
are timed in this process (TensorFlow imported first, not counted); the SavedModel is written
to a temporary folder and its size reported. Current figures: BENCHMARKS.md, *Export*.
"""
import tfgrec  # noqa: F401  # Sets TF_USE_LEGACY_KERAS before TensorFlow loads.

import argparse
import os
import platform
import shutil
import tempfile
import time

from tfgrec import _entry
from tfgrec import config as config_lib


def _size(path: str) -> int:
  return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path)
             for f in files)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", required=True, help="a trained run directory (tfgrec train)")
  parser.add_argument("--k", type=int, default=20)
  parser.add_argument("--repeat", type=int, default=1, help="exports in a row (timed each)")
  args = parser.parse_args()
  _entry.configure_graph_optimizer()  # As `tfgrec export` runs.
  from tfgrec.export import export  # pylint: disable=g-import-not-at-top
  from tfgrec.train import exporter, final_fit, layout  # pylint: disable=g-import-not-at-top
  from tfgrec.train import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config(layout.RunLayout(args.run).config, {"run_dir": args.run})
  print(f"machine: {platform.machine()}, {os.cpu_count()} cores; run {args.run}")
  print("| phase | seconds |\n|---|---:|")
  for repeat in range(args.repeat):
    work = tempfile.mkdtemp(prefix="bench_export_")
    try:
      start = time.time()
      manifest_lib.verify(layout.RunLayout(args.run), config)
      checked = time.time()
      module = exporter.build_module(config, args.k)
      built = time.time()
      path = export.save_module(module, work, "tfgrec")
      saved = time.time()
      size = _size(path)
      two_stage = final_fit.read(config, verify=False)[2]["two_stage"]
      rows = [("check the manifest", checked - start), ("assemble the module", built - checked),
              ("save with warmup", saved - built), ("export in all", saved - start)]
      for name, seconds in rows:
        print(f"| {name} (run {repeat + 1}) | {seconds:.1f} |")
      print(f"SavedModel: {size / 2**20:.0f} MB, {'two stages' if two_stage else 'tower only'}, "
            f"signatures {export.signatures_line(path)}")
    finally:
      shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  main()
