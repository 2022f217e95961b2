"""Attribute node sets: the further columns of the items and users tables as graph nodes.

Every value of an attribute column is a node of the ``item_attribute`` (items table) or
``user_attribute`` (users table) node set, joined by edges to the items (users) that have it:

* **numeric** columns (every present value parses as a finite number, more distinct values than
  ``buckets``, not named in ``categorical``) are bucketized by quantiles; the Beam job computes
  the boundaries (approximate quantiles over the table's rows). Bucket ``i`` holds
  ``boundaries[i - 1] <= v < boundaries[i]``.
* **categorical** columns get a vocabulary: the values present at least ``min_count`` times (the
  ``max_values`` most frequent at most).
* every column has one out-of-vocabulary node, ``<column>=<other>``: rarer values, a number that
  does not parse in a numeric column, and values first seen later (a new item at request time)
  all map to it.
* a missing value (absent, null, empty) gives no edge; columns named in ``ignore`` stay out.

The spec (``attributes.json`` in the graph directory) is the one home of this mapping: the graph
job writes it from the data, and :func:`node_ids` maps any row with it, at build time and for
new items or users later.

  spec = {"items": {"year": {"kind": "numeric", "boundaries": [1985.0, 1995.0]},
                    "brand": {"kind": "categorical", "values": ["acme", "zeta"]}},
          "users": {}}
  vocabulary(spec["items"])
  # ['brand=acme', 'brand=zeta', 'brand=<other>', 'year<1985', 'year=[1985,1995)',
  #  'year>=1995', 'year=<other>']
  node_ids(spec["items"], {"year": "1990", "brand": "new co", "colour": "red"})
  # ['brand=<other>', 'year=[1985,1995)']    (colour: not a column of the spec)
"""
import bisect
import dataclasses
import json
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

NUMERIC, CATEGORICAL = "numeric", "categorical"
OTHER = "<other>"
TABLES = ("items", "users")
SPEC_FILENAME = "attributes.json"


@dataclasses.dataclass(frozen=True)
class AttributeConfig:
  """How the graph job turns attribute columns into nodes (see the module docstring).

  Attributes:
    ignore: columns left out of the graph (both tables), e.g. ["price"].
    categorical: columns read as categories even when every value is a number (e.g. a zip code).
    buckets: quantile buckets of a numeric column (0: every column categorical).
    min_count: values present fewer times go to the column's out-of-vocabulary node.
    max_values: the most frequent values kept per categorical column.
  """
  ignore: Tuple[str, ...] = ()
  categorical: Tuple[str, ...] = ()
  buckets: int = 8
  min_count: int = 2
  max_values: int = 1000

  def __post_init__(self):
    object.__setattr__(self, "ignore", tuple(self.ignore))
    object.__setattr__(self, "categorical", tuple(self.categorical))
    if self.buckets < 0 or self.buckets == 1:
      raise ValueError(f"attributes.buckets must be 0 (off) or >= 2, got {self.buckets}")
    if self.min_count < 1 or self.max_values < 1:
      raise ValueError(f"attributes.min_count and max_values must be >= 1, got "
                       f"{self.min_count}, {self.max_values}")


def is_missing(value: Any) -> bool:
  """Absent, null, NaN or an empty / blank string."""
  if value is None:
    return True
  if isinstance(value, float) and math.isnan(value):
    return True
  return isinstance(value, str) and not value.strip()


def as_number(value: Any) -> Optional[float]:
  """The finite number `value` spells, or None."""
  if isinstance(value, bool):
    return None
  try:
    number = float(value)
  except (TypeError, ValueError):
    return None
  return number if math.isfinite(number) else None


def text_of(value: Any) -> str:
  """The canonical text of a categorical value (numbers as written, without a '.0' tail)."""
  if isinstance(value, float) and value.is_integer():
    return str(int(value))
  return str(value).strip()


def parse_attributes(value: Any) -> Dict[str, Any]:
  """A row's attributes: the job's JSON text, a mapping, or nothing."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return {}
  if isinstance(value, Mapping):
    return dict(value)
  if isinstance(value, (str, bytes)):
    parsed = json.loads(value or "{}")
    if not isinstance(parsed, dict):
      raise ValueError(f"attributes must be a JSON object, got {value!r}")
    return parsed
  raise ValueError(f"attributes must be a mapping or JSON text, got {value!r}")


def present(attributes: Mapping[str, Any], ignore: Sequence[str] = ()) -> List[Tuple[str, Any]]:
  """(column, value) pairs of one row that can give an edge (not missing, not ignored)."""
  return [(str(column), value) for column, value in sorted(attributes.items())
          if column not in ignore and not is_missing(value)]


def _label(number: float) -> str:
  return f"{number:g}"


def bucket_labels(column: str, boundaries: Sequence[float]) -> List[str]:
  """Node ids of a numeric column's buckets, lowest first."""
  if not boundaries:
    return [f"{column}=any"]
  b = [_label(x) for x in boundaries]
  return ([f"{column}<{b[0]}"] + [f"{column}=[{lo},{hi})" for lo, hi in zip(b[:-1], b[1:])]
          + [f"{column}>={b[-1]}"])


def other_id(column: str) -> str:
  return f"{column}={OTHER}"


def vocabulary(table_spec: Mapping[str, Mapping[str, Any]]) -> List[str]:
  """Node ids of a table's attribute node set, in node order (columns sorted; each column's
  out-of-vocabulary node last)."""
  ids = []
  for column in sorted(table_spec):
    entry = table_spec[column]
    if entry["kind"] == NUMERIC:
      ids += bucket_labels(column, entry["boundaries"])
    else:
      ids += [f"{column}={v}" for v in entry["values"]]
    ids.append(other_id(column))
  return ids


def node_ids(table_spec: Mapping[str, Mapping[str, Any]],
             attributes: Mapping[str, Any]) -> List[str]:
  """The attribute nodes of one row (sorted by column): missing values and columns the spec
  does not hold give none; values outside the vocabulary give the column's <other> node."""
  out = []
  for column, value in present(attributes):
    entry = table_spec.get(column)
    if entry is None:
      continue
    if entry["kind"] == NUMERIC:
      number = as_number(value)
      if number is None:
        out.append(other_id(column))
        continue
      boundaries = entry["boundaries"]
      out.append(bucket_labels(column, boundaries)[bisect.bisect_right(boundaries, number)])
    else:
      text = text_of(value)
      out.append(f"{column}={text}" if text in set(entry["values"]) else other_id(column))
  return out


def column_spec(config: AttributeConfig, column: str, value_counts: Sequence[Tuple[str, int]],
                distinct: int, all_numeric: bool,
                quantiles: Optional[Sequence[float]]) -> Dict[str, Any]:
  """One column's spec from the job's summaries.

  Args:
    config: the job's AttributeConfig.
    column: the column's name.
    value_counts: the most frequent (value text, rows) of the column.
    distinct: how many distinct values the column has.
    all_numeric: every present value parses as a finite number.
    quantiles: approximate quantiles (min, ..., max; config.buckets + 1 values) of its numbers.
  """
  numeric = (config.buckets and all_numeric and column not in config.categorical
             and distinct > config.buckets and quantiles)
  if numeric:
    interior = sorted({float(q) for q in list(quantiles)[1:-1]})
    return {"kind": NUMERIC, "boundaries": interior}
  kept = sorted(((v, n) for v, n in value_counts if n >= config.min_count),
                key=lambda vn: (-vn[1], vn[0]))[:config.max_values]
  return {"kind": CATEGORICAL, "values": sorted(v for v, _ in kept)}


def release_time(value: Any) -> int:
  """Epoch seconds of a release-time attribute: a year (1000..9999: 1 January, UTC), epoch
  seconds or an ISO-8601 date; NO_TIME (-1) when missing or unreadable."""
  import datetime  # pylint: disable=g-import-not-at-top
  from tfgrec.data import contract  # pylint: disable=g-import-not-at-top
  if is_missing(value):
    return contract.NO_TIME
  number = as_number(value)
  if number is not None and number.is_integer() and 1000 <= number <= 9999:
    return int(datetime.datetime(int(number), 1, 1, tzinfo=datetime.timezone.utc).timestamp())
  rejection = contract.validate_row(
      "interactions", {"user_id": "u", "item_id": "i", "timestamp": value})
  return contract.NO_TIME if isinstance(rejection, contract.Rejection) else int(
      rejection["timestamp"])


def release_times(attributes: Sequence[Any], column: str) -> "np.ndarray":
  """[N] int64 release times (NO_TIME where unknown) of rows with `attributes` (JSON text or
  mappings), read from `column` (see release_time)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  return np.array([release_time(parse_attributes(a).get(column)) for a in attributes],
                  np.int64)


def write_spec(spec: Mapping[str, Any]) -> bytes:
  return (json.dumps(spec, indent=2, sort_keys=True) + "\n").encode("utf-8")


def empty_spec(config: Optional[AttributeConfig] = None) -> Dict[str, Any]:
  return {"config": dataclasses.asdict(config or AttributeConfig()),
          **{table: {} for table in TABLES}}


def read_spec(graph_dir: str) -> Dict[str, Any]:
  """The graph directory's attributes.json (an empty spec for a graph built without one)."""
  import os  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.path.join(graph_dir, SPEC_FILENAME)
  if not tf.io.gfile.exists(path):
    return empty_spec()
  with tf.io.gfile.GFile(path, "r") as f:
    return json.loads(f.read())
