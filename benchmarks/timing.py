"""The benchmarks' clock: the median wall time of repeated calls, after one untimed warm-up."""
import time
from typing import Callable

import numpy as np


def median_seconds(call: Callable[[], object], repeats: int) -> float:
  """Median seconds of `repeats` calls of `call()`, after one call that traces and warms up."""
  call()
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    call()
    seconds.append(time.perf_counter() - start)
  return float(np.median(seconds))
