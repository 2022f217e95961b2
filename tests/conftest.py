"""Shared fixtures: small raw-log sets written to temporary directories."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfgrec  # noqa: E402,F401  # Keras 2 before TensorFlow loads.
from tfgrec import _entry  # noqa: E402

# As the CLI's compute commands run (tfgrec._entry.configure_graph_optimizer): Grappler off.
_entry.configure_graph_optimizer()

import pytest  # noqa: E402

from tests import malformed  # noqa: E402
from tfgrec.data import synthetic, writers  # noqa: E402

SMALL = synthetic.SyntheticConfig(users=40, items=80, interactions=1200, seed=7)


@pytest.fixture(scope="session")
def small_raw(tmp_path_factory):
  """A small synthetic raw-log directory (CSV) with interactions and items."""
  out = tmp_path_factory.mktemp("small_raw")
  writers.write_tables(synthetic.generate(SMALL), str(out), "csv")
  return str(out)


@pytest.fixture(scope="session")
def malformed_raw(tmp_path_factory):
  """Good and bad rows in every format; returns (dir, expected dead letters, good counts)."""
  out = tmp_path_factory.mktemp("malformed_raw")
  expected, good = malformed.write(str(out))
  return str(out), expected, good


def pytest_collection_modifyitems(config, items):
  """The longest files first, longest first (module-level `pytest.mark.minutes(m)`: about how
  long the file takes on a worker of `make test`). `make test` runs whole files on two workers
  (pytest-xdist `--dist loadfile --no-loadscope-reorder`, which keeps this order): a long file
  that starts last ends the run late."""
  del config

  def minutes(item):
    marker = item.get_closest_marker("minutes")
    return -float(marker.args[0]) if marker else 0.0

  items.sort(key=minutes)  # Stable: each file's tests stay together, in their order.
