"""The raw-log contract: the tables tfgrec reads, their fields, and how each value is checked.

This module is the single source of the contract. ``schemas/raw_logs.v2.json`` is its
machine-readable export (``tfgrec data contract`` prints it; a test keeps the two equal) and
``schemas/README.md`` explains it with an example of each table.

Three tables; only ``interactions`` is required; ids are strings:

* interactions: ``user_id``, ``item_id``, ``timestamp`` (optional: integer epoch seconds or
  ISO-8601), ``event`` (default ``interaction``), ``value`` (optional float).
* items: ``item_id``, ``title``, ``description``, ``categories`` (CSV: ``|``-separated; JSONL and
  Parquet: a list of strings), further attributes.
* users: ``user_id``, further (categorical) attributes.

Every row is checked by :func:`validate_row`, which returns either the canonical row or a
:class:`Rejection` carrying the reason code, the field and the offending value. Reason codes are
stable strings (they key ``stats.json`` and the dead-letter files).

Events without a time. An interaction whose ``timestamp`` is absent, null or empty is accepted
as an event without a time; its canonical timestamp is :data:`NO_TIME` (-1, outside the range a
real timestamp may take, so "no time" can never be confused with a time). A timestamp that is
present but malformed is still dead-lettered (``bad_timestamp``). What the graph job makes of
events without a time (input order, a seeded random split, tied recency) is described in
:mod:`tfgrec.data.prepare` and ``schemas/README.md``.

Version history: 1, ``timestamp`` required; 2, ``timestamp`` optional (:data:`NO_TIME`).
"""
import dataclasses
import datetime
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

CONTRACT_VERSION = 2

# Reason codes of dead-lettered rows.
UNDECODABLE_BYTES = "undecodable_bytes"  # the row's bytes are not UTF-8.
MALFORMED_ROW = "malformed_row"  # CSV row with the wrong number of columns, invalid JSON, ...
MISSING_FIELD = "missing_field"  # a required field (user_id, item_id) is absent or null.
EMPTY_ID = "empty_id"  # an id is the empty string (or only white space).
BAD_ID = "bad_id"  # an id of the wrong type or with control characters.
BAD_TIMESTAMP = "bad_timestamp"  # not epoch seconds nor ISO-8601, or out of range.
NON_NUMERIC_VALUE = "non_numeric_value"  # `value` is not a number.
NON_FINITE_VALUE = "non_finite_value"  # `value` is NaN or infinite.
BAD_FIELD_TYPE = "bad_field_type"  # e.g. a JSON object where a string belongs.
DUPLICATE_ID = "duplicate_id"  # a second catalog / users row with an id already seen.

REASONS = (UNDECODABLE_BYTES, MALFORMED_ROW, MISSING_FIELD, EMPTY_ID, BAD_ID, BAD_TIMESTAMP,
           NON_NUMERIC_VALUE, NON_FINITE_VALUE, BAD_FIELD_TYPE, DUPLICATE_ID)

TABLES = ("interactions", "items", "users")
FORMATS = ("csv", "jsonl", "parquet")
CATEGORY_SEPARATOR = "|"
DEFAULT_EVENT = "interaction"
# Timestamps outside [1970-01-01, 2200-01-01) are rejected: a value above the bound is almost
# always milliseconds or microseconds passed as seconds.
MIN_TIMESTAMP = 0
MAX_TIMESTAMP = 7258118400
# The canonical timestamp of an interaction without a time (absent, null or empty in the log).
# Below MIN_TIMESTAMP, so no real time equals it; downstream files (split parquet files, the
# graph's `timestamp` edge feature) carry it as is: `timestamp < 0` means "no time".
NO_TIME = -1

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclasses.dataclass(frozen=True)
class Field:
  """One field of a table.

  Attributes:
    name: column (CSV, Parquet) or key (JSONL) name.
    kind: one of ``id``, ``timestamp``, ``string``, ``float``, ``categories``.
    required: whether a row without it is dead-lettered.
    doc: what the field means.
    default: value used when an optional field is absent.
  """
  name: str
  kind: str
  required: bool
  doc: str
  default: Any = None


_TABLE_FIELDS: Dict[str, Tuple[Field, ...]] = {
    "interactions": (
        Field("user_id", "id", True, "Who acted. Any string; numbers are read as strings."),
        Field("item_id", "id", True, "What was acted on. Need not be in the catalog."),
        Field("timestamp", "timestamp", False,
              "When: integer epoch seconds (fractions are truncated) or ISO-8601 "
              "(no offset means UTC). Absent, null or empty: an event without a time (kept in "
              "input order; its user is split at random with a seed; it counts as older than "
              "every timed event of its user). Present but malformed: dead-lettered.", NO_TIME),
        Field("event", "string", False, "Kind of interaction, e.g. rating, view, purchase.",
              DEFAULT_EVENT),
        Field("value", "float", False,
              "Strength of the interaction, e.g. a rating or a dwell time. Absent: 1.0 in the "
              "graph."),
    ),
    "items": (
        Field("item_id", "id", True, "Catalog id, matching interactions.item_id."),
        Field("title", "string", False, "Title; with categories and description, the item text."),
        Field("description", "string", False, "Longer free text."),
        Field("categories", "categories", False,
              "Categories: CSV '|'-separated; JSONL and Parquet a list of strings."),
    ),
    "users": (
        Field("user_id", "id", True, "User id, matching interactions.user_id."),
    ),
}

_TABLE_DOCS = {
    "interactions": "One row per event. Required.",
    "items": ("The item catalog. Optional. Catalog items without interactions are cold items: "
              "graph nodes with text, recommendable. Further columns are kept as attributes."),
    "users": "User attributes. Optional. Further columns are kept as categorical attributes.",
}


def fields(table: str) -> Tuple[Field, ...]:
  """Returns the fields of `table` (one of TABLES)."""
  try:
    return _TABLE_FIELDS[table]
  except KeyError:
    raise ValueError(f"unknown table {table!r}; expected one of {list(TABLES)}") from None


def required_fields(table: str) -> List[str]:
  return [f.name for f in fields(table) if f.required]


def contract_dict() -> Dict[str, Any]:
  """The contract as plain data: what ``schemas/raw_logs.v2.json`` holds."""
  return {
      "name": "tfgrec raw-log contract",
      "version": CONTRACT_VERSION,
      "formats": {
          "csv": "UTF-8, header row, RFC 4180 quoting; categories '|'-separated.",
          "jsonl": "UTF-8, one JSON object per line; categories a list of strings.",
          "parquet": "Any Parquet file; categories a list<string> column (or a '|' string).",
      },
      "compression": "gzip/bz2/etc. by file extension (Beam filesystems), e.g. .csv.gz",
      "timestamp_range": [MIN_TIMESTAMP, MAX_TIMESTAMP],
      "no_time": {
          "value": NO_TIME,
          "doc": ("An interaction whose timestamp is absent, null or empty has no time: it is "
                  "accepted and stored with timestamp -1 in the split files and the graph."),
      },
      "tables": {
          table: {
              "doc": _TABLE_DOCS[table],
              "required": table == "interactions",
              "extra_fields": ("ignored" if table == "interactions" else "kept as attributes"),
              "fields": [dataclasses.asdict(f) for f in fields(table)],
          } for table in TABLES
      },
      "dead_letter_reasons": list(REASONS),
  }


@dataclasses.dataclass(frozen=True)
class Rejection:
  """Why a row was refused.

  Attributes:
    reason: one of REASONS.
    field: the field at fault ('' for the whole row).
    value: the offending value, as text (truncated to 200 characters).
    detail: a human-readable sentence with the fix.
  """
  reason: str
  field: str
  value: str
  detail: str

  def message(self) -> str:
    return f"{self.reason}: field {self.field!r} = {self.value!r}: {self.detail}"


def _show(value: Any) -> str:
  text = value if isinstance(value, str) else repr(value)
  return text if len(text) <= 200 else text[:197] + "..."


class _Reject(Exception):

  def __init__(self, reason: str, field: str, value: Any, detail: str):
    super().__init__(detail)
    self.rejection = Rejection(reason, field, _show(value), detail)


def _is_missing(value: Any) -> bool:
  if value is None:
    return True
  return isinstance(value, float) and math.isnan(value)


def parse_id(name: str, value: Any) -> str:
  """Canonical id string; raises _Reject."""
  if _is_missing(value):
    raise _Reject(MISSING_FIELD, name, value, f"{name} is required")
  if isinstance(value, bool):
    raise _Reject(BAD_ID, name, value, f"{name} must be a string or an integer, got a boolean")
  if isinstance(value, int):
    return str(value)
  if isinstance(value, float):
    if value.is_integer():
      return str(int(value))
    raise _Reject(BAD_ID, name, value, f"{name} must be a string or an integer, got {value!r}")
  if isinstance(value, bytes):
    try:
      value = value.decode("utf-8")
    except UnicodeDecodeError:
      raise _Reject(UNDECODABLE_BYTES, name, value, f"{name} is not valid UTF-8") from None
  if not isinstance(value, str):
    raise _Reject(BAD_ID, name, value,
                  f"{name} must be a string or an integer, got {type(value).__name__}")
  text = value.strip()
  if not text:
    raise _Reject(EMPTY_ID, name, value, f"{name} is empty")
  if _CONTROL.search(text):
    raise _Reject(BAD_ID, name, value, f"{name} contains control characters (tab, newline, ...)")
  return text


def is_no_time(value: Any) -> bool:
  """Whether a raw timestamp value means "no time": None, NaN, NaT or an empty string."""
  if _is_missing(value) or (isinstance(value, str) and not value.strip()):
    return True
  return type(value).__name__ == "NaTType"  # pandas.NaT from a Parquet null timestamp.


def parse_timestamp(value: Any, name: str = "timestamp") -> int:
  """Epoch seconds from an integer, a number string or ISO-8601; raises _Reject.

  Args:
    value: the raw value. None, NaN, NaT or an empty string means no time: NO_TIME (-1).
    name: the field's name, for messages.

  Returns:
    Epoch seconds in [MIN_TIMESTAMP, MAX_TIMESTAMP), or NO_TIME.
  """
  if is_no_time(value):
    return NO_TIME
  seconds: Optional[float] = None
  if isinstance(value, bool):
    pass
  elif isinstance(value, (int, float)):
    seconds = float(value) if not isinstance(value, int) else value
  elif isinstance(value, datetime.datetime):
    if value.tzinfo is None:
      value = value.replace(tzinfo=datetime.timezone.utc)
    seconds = value.timestamp()
  elif isinstance(value, str):
    text = value.strip()
    try:
      seconds = int(text)
    except ValueError:
      try:
        seconds = float(text)
      except ValueError:
        try:
          parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
          raise _Reject(BAD_TIMESTAMP, name, value,
                        "expected epoch seconds or ISO-8601 (e.g. 2024-05-01T12:00:00Z)") from None
        if parsed.tzinfo is None:
          parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        seconds = parsed.timestamp()
  if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
    raise _Reject(BAD_TIMESTAMP, name, value, "expected epoch seconds or ISO-8601")
  if not MIN_TIMESTAMP <= seconds < MAX_TIMESTAMP:
    raise _Reject(BAD_TIMESTAMP, name, value,
                  "out of range 1970..2200 for epoch seconds (milliseconds? divide by 1000)")
  return int(seconds)


def parse_float(value: Any, name: str = "value") -> float:
  """Float from a number or a number string; NaN means absent. Raises _Reject."""
  if _is_missing(value) or (isinstance(value, str) and not value.strip()):
    return math.nan
  if isinstance(value, bool):
    raise _Reject(NON_NUMERIC_VALUE, name, value, f"{name} must be a number, got a boolean")
  try:
    number = float(value.strip() if isinstance(value, str) else value)
  except (TypeError, ValueError):
    raise _Reject(NON_NUMERIC_VALUE, name, value, f"{name} must be a number") from None
  if not math.isfinite(number):
    raise _Reject(NON_FINITE_VALUE, name, value, f"{name} must be finite")
  return number


def parse_text(value: Any, name: str) -> str:
  if _is_missing(value):
    return ""
  if isinstance(value, str):
    return value.strip()
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    return str(value)
  raise _Reject(BAD_FIELD_TYPE, name, value, f"{name} must be a string, got {type(value).__name__}")


def parse_categories(value: Any, name: str = "categories") -> Tuple[str, ...]:
  """Sorted, de-duplicated category names from a '|'-string or a list of strings."""
  if _is_missing(value):
    return ()
  if isinstance(value, str):
    parts = value.split(CATEGORY_SEPARATOR)
  elif isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
    parts = list(value)
    for part in parts:
      if not isinstance(part, str):
        raise _Reject(BAD_FIELD_TYPE, name, value,
                      f"{name} must be a list of strings, found {type(part).__name__}")
  else:
    raise _Reject(BAD_FIELD_TYPE, name, value,
                  f"{name} must be a '|'-separated string or a list of strings")
  out = set()
  for part in parts:
    text = part.strip()
    if not text:
      continue
    if _CONTROL.search(text):
      raise _Reject(BAD_FIELD_TYPE, name, value, f"{name} contains control characters")
    out.add(text)
  return tuple(sorted(out))


def _attributes(row: Mapping[str, Any], known: Tuple[Field, ...]) -> Dict[str, str]:
  names = {f.name for f in known}
  attrs = {}
  for key, value in row.items():
    if key in names or _is_missing(value):
      continue
    attrs[str(key)] = value if isinstance(value, str) else _show(value)
  return attrs


Row = Dict[str, Any]


def validate_row(table: str, row: Mapping[str, Any]) -> Union[Row, Rejection]:
  """Checks one raw row against the contract.

  Args:
    table: one of TABLES.
    row: field name -> raw value (strings from CSV; JSON or Parquet values otherwise).

  Returns:
    The canonical row (interactions: user_id, item_id, timestamp (NO_TIME when absent, null or
    empty), event, value with NaN for absent; items: item_id, title, description, categories (tuple), attributes (dict); users:
    user_id, attributes), or a Rejection.
  """
  try:
    if table == "interactions":
      for f in ("user_id", "item_id"):
        if f not in row:
          raise _Reject(MISSING_FIELD, f, None, f"{f} is required")
      return {
          "user_id": parse_id("user_id", row["user_id"]),
          "item_id": parse_id("item_id", row["item_id"]),
          "timestamp": parse_timestamp(row.get("timestamp")),
          "event": parse_text(row.get("event"), "event") or DEFAULT_EVENT,
          "value": parse_float(row.get("value")),
      }
    if table == "items":
      if "item_id" not in row:
        raise _Reject(MISSING_FIELD, "item_id", None, "item_id is required")
      return {
          "item_id": parse_id("item_id", row["item_id"]),
          "title": parse_text(row.get("title"), "title"),
          "description": parse_text(row.get("description"), "description"),
          "categories": parse_categories(row.get("categories")),
          "attributes": _attributes(row, fields("items")),
      }
    if table == "users":
      if "user_id" not in row:
        raise _Reject(MISSING_FIELD, "user_id", None, "user_id is required")
      return {
          "user_id": parse_id("user_id", row["user_id"]),
          "attributes": _attributes(row, fields("users")),
      }
  except _Reject as e:
    return e.rejection
  raise ValueError(f"unknown table {table!r}; expected one of {list(TABLES)}")
