"""Reads raw-log files (CSV, JSONL, Parquet; any Beam filesystem path) against the contract.

:func:`read_table_file` streams one file and yields columnar chunks of accepted rows
(``pandas.DataFrame``) and dead letters (dicts with the reason), so that callers (the Beam job,
tests, small scripts) never see a row twice and never lose one: every physical row ends up in
exactly one of the two, and the final :class:`FileCount` says how many rows the file had.

Blank lines in CSV and JSONL files are not rows and are not counted.

Interaction chunks carry each row's input position (``position``: the index of its file among the
job's sorted input files times :data:`POSITION_STRIDE`, plus its line or Parquet row number), a
stable order that needs no timestamp: a user's events without a time keep it.
"""
import csv
import dataclasses
import io
import json
import logging
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import pandas as pd

from tfgrec.data import contract

logger = logging.getLogger(__name__)

_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".deflate", ".lzma", ".xz", ".zz")
_FORMAT_BY_SUFFIX = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
DEFAULT_CHUNK_ROWS = 65536
# position = file_index * POSITION_STRIDE + line: 2**40 lines per file, 2**23 files.
POSITION_STRIDE = 2**40
_PROGRESS_EVERY = 500_000


class ContractError(ValueError):
  """A whole file cannot be read under the contract (e.g. a required column is absent)."""


@dataclasses.dataclass(frozen=True)
class FileCount:
  """Rows seen in one file (accepted + dead-lettered)."""
  table: str
  path: str
  rows: int


def detect_format(path: str) -> str:
  """Returns 'csv', 'jsonl' or 'parquet' from the file name (compression suffixes ignored)."""
  name = os.path.basename(path).lower()
  for suffix in _COMPRESSION_SUFFIXES:
    if name.endswith(suffix):
      name = name[:-len(suffix)]
      break
  for suffix, fmt in _FORMAT_BY_SUFFIX.items():
    if name.endswith(suffix):
      return fmt
  raise ContractError(
      f"cannot tell the format of {path!r} from its name: expected one of "
      f"{sorted(_FORMAT_BY_SUFFIX)} (optionally compressed), or pass the format explicitly")


def columns(table: str) -> List[str]:
  """Columns of the accepted-row chunks of `table`."""
  if table == "interactions":
    return ["user_id", "item_id", "timestamp", "event", "value", "position"]
  if table == "items":
    return ["item_id", "title", "description", "categories", "attributes", "order"]
  if table == "users":
    return ["user_id", "attributes", "order"]
  raise ValueError(f"unknown table {table!r}")


class _ChunkBuilder:
  """Accumulates canonical rows column by column and cuts DataFrames."""

  def __init__(self, table: str, chunk_rows: int, file_index: int = 0):
    self._table = table
    self._base = file_index * POSITION_STRIDE
    self._cols = columns(table)
    self._chunk_rows = chunk_rows
    self._data: Dict[str, list] = {c: [] for c in self._cols}
    self.size = 0

  def add(self, row: Dict[str, Any], order: Tuple[str, int]) -> Optional[pd.DataFrame]:
    for c in self._cols:
      if c == "order":
        self._data[c].append(order)
      elif c == "position":
        self._data[c].append(self._base + order[1])
      elif c == "attributes":
        self._data[c].append(json.dumps(row[c], sort_keys=True, ensure_ascii=False))
      else:
        self._data[c].append(row[c])
    self.size += 1
    return self.flush() if self.size >= self._chunk_rows else None

  def flush(self) -> Optional[pd.DataFrame]:
    if not self.size:
      return None
    frame = pd.DataFrame(self._data, columns=self._cols)
    if self._table == "interactions":
      frame = frame.astype({"timestamp": "int64", "value": "float64", "position": "int64"})
    self._data = {c: [] for c in self._cols}
    self.size = 0
    return frame


def dead_letter(table: str, path: str, line: int, rejection: contract.Rejection,
                raw: str) -> Dict[str, Any]:
  """The dead-letter record of one refused row."""
  return {
      "table": table,
      "source": f"{path}:{line}",
      "reason": rejection.reason,
      "field": rejection.field,
      "value": rejection.value,
      "detail": rejection.detail,
      "raw": raw if len(raw) <= 2000 else raw[:1997] + "...",
  }


Event = Union[pd.DataFrame, Dict[str, Any], FileCount]


def _open(path: str, binary_stream: Optional[io.IOBase]):
  if binary_stream is not None:
    return binary_stream
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  return FileSystems.open(path)


def read_table_file(path: str,
                    table: str,
                    fmt: Optional[str] = None,
                    *,
                    chunk_rows: int = DEFAULT_CHUNK_ROWS,
                    stream: Optional[io.IOBase] = None,
                    file_index: int = 0) -> Iterator[Event]:
  """Streams one raw file through the contract.

  Args:
    path: file path (local or any Beam filesystem, e.g. gs://); also names the rows' source.
    table: one of contract.TABLES.
    fmt: 'csv', 'jsonl' or 'parquet'; from the file name if None.
    chunk_rows: accepted rows per DataFrame chunk.
    stream: an already opened binary stream to read instead of opening `path`.
    file_index: the file's index among the sorted input files of its table; with the line, it
      makes the rows' `position` (interactions only).

  Yields:
    DataFrames of accepted rows (columns: `columns(table)`), dead-letter dicts (see
    `dead_letter`), and finally one FileCount.

  Raises:
    ContractError: the file as a whole does not follow the contract (e.g. no header column for
      a required field).
  """
  contract.fields(table)  # Validates the table name.
  if not 0 <= file_index < 2**23:
    raise ValueError(f"file_index must be in [0, 2**23), got {file_index}")
  fmt = fmt or detect_format(path)
  if fmt not in contract.FORMATS:
    raise ContractError(f"unknown format {fmt!r} for {path!r}; expected one of "
                        f"{list(contract.FORMATS)}")
  reader = {"csv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}[fmt]
  builder = _ChunkBuilder(table, chunk_rows, file_index)
  count = 0
  with _open(path, stream) as fh:
    for line, row, raw, rejection in reader(fh, path, table):
      count += 1
      if count % _PROGRESS_EVERY == 0:
        logger.info("%s: %s rows read from %s", table, f"{count:,}", path)
      if rejection is None:
        result = contract.validate_row(table, row)
        if isinstance(result, contract.Rejection):
          rejection = result
        else:
          chunk = builder.add(result, (path, line))
          if chunk is not None:
            yield chunk
          continue
      if raw is None:
        raw = json.dumps(row, default=str, ensure_ascii=False)
      yield dead_letter(table, path, line, rejection, raw)
  chunk = builder.flush()
  if chunk is not None:
    yield chunk
  yield FileCount(table, path, count)


_RowTuple = Tuple[int, Optional[Dict[str, Any]], Optional[str], Optional[contract.Rejection]]


def check_file(path: str, table: str, fmt: Optional[str] = None) -> str:
  """Checks what can be checked of a whole file before reading it: format and header.

  Returns:
    The file's format.

  Raises:
    ContractError: unknown format, or a CSV header / Parquet schema lacking a required column.
  """
  fmt = fmt or detect_format(path)
  if fmt == "jsonl":
    return fmt  # JSONL has no header: missing keys are per-row dead letters.
  with _open(path, None) as fh:
    if fmt == "csv":
      first = fh.readline().decode("utf-8", "replace")
      if first.strip():
        names = [h.strip() for h in next(csv.reader([first.lstrip("\ufeff")]))]
        _check_header(path, table, names)
    else:
      _check_header(path, table, _parquet_file(fh).schema_arrow.names)
  return fmt


def _parquet_file(fh):
  """A pyarrow ParquetFile over `fh`, reading only what it needs when `fh` can seek."""
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  seekable = getattr(fh, "seekable", None)
  if callable(seekable) and seekable():
    return pq.ParquetFile(fh)
  return pq.ParquetFile(io.BytesIO(fh.read()))  # E.g. a compressed stream: read it whole.


def _check_header(path: str, table: str, names: List[str]) -> None:
  missing = [f for f in contract.required_fields(table) if f not in names]
  if missing:
    raise ContractError(
        f"{table} file {path!r} has no column {missing[0]!r} (required by the raw-log contract; "
        f"columns found: {names}). See schemas/README.md.")


def _csv_rows(fh, path: str, table: str) -> Iterator[_RowTuple]:
  bad_lines: Dict[int, bytes] = {}
  pending: List[str] = []

  def lines():
    for number, raw in enumerate(fh, start=1):
      try:
        text = raw.decode("utf-8")
      except UnicodeDecodeError:
        bad_lines[number] = raw
        text = raw.decode("utf-8", "replace")
      pending.append(text)
      yield text

  reader = csv.reader(lines(), strict=False)
  try:
    header = next(reader)
  except StopIteration:
    return  # An empty file holds no rows.
  if header:
    header[0] = header[0].lstrip("\ufeff")
  header = [h.strip() for h in header]
  if bad_lines:
    raise ContractError(f"{table} file {path!r}: the header row is not valid UTF-8")
  _check_header(path, table, header)
  pending.clear()
  last_line = reader.line_num
  while True:
    try:
      record = next(reader)
    except StopIteration:
      return
    except csv.Error as e:
      first, last_line = last_line + 1, reader.line_num
      raw = "".join(pending)
      pending.clear()
      yield first, None, raw.rstrip("\r\n"), contract.Rejection(
          contract.MALFORMED_ROW, "", raw[:200], f"CSV syntax error: {e}")
      continue
    first, last_line = last_line + 1, reader.line_num
    raw = "".join(pending).rstrip("\r\n")
    pending.clear()
    if not record or (len(record) == 1 and not record[0].strip() and len(header) > 1):
      continue  # A blank line is not a row.
    undecodable = [n for n in range(first, last_line + 1) if n in bad_lines]
    if undecodable:
      bad = bad_lines[undecodable[0]]
      for n in undecodable:
        del bad_lines[n]
      yield first, None, raw, contract.Rejection(
          contract.UNDECODABLE_BYTES, "", repr(bad[:200]),
          "the row is not valid UTF-8; re-encode the file as UTF-8")
      continue
    if len(record) != len(header):
      yield first, None, raw, contract.Rejection(
          contract.MALFORMED_ROW, "", raw[:200],
          f"expected {len(header)} columns ({','.join(header)}), got {len(record)}")
      continue
    yield first, dict(zip(header, record)), raw, None


def _jsonl_rows(fh, path: str, table: str) -> Iterator[_RowTuple]:
  del table
  for number, raw in enumerate(fh, start=1):
    try:
      text = raw.decode("utf-8")
    except UnicodeDecodeError:
      yield number, None, raw.decode("utf-8", "replace").rstrip("\r\n"), contract.Rejection(
          contract.UNDECODABLE_BYTES, "", repr(raw[:200]),
          "the line is not valid UTF-8; re-encode the file as UTF-8")
      continue
    text = text.strip()
    if not text:
      continue
    try:
      row = json.loads(text)
    except json.JSONDecodeError as e:
      yield number, None, text, contract.Rejection(contract.MALFORMED_ROW, "", text[:200],
                                                    f"invalid JSON: {e.msg} at column {e.colno}")
      continue
    if not isinstance(row, dict):
      yield number, None, text, contract.Rejection(
          contract.MALFORMED_ROW, "", text[:200],
          f"each line must be a JSON object, got {type(row).__name__}")
      continue
    yield number, row, text, None


def _parquet_rows(fh, path: str, table: str) -> Iterator[_RowTuple]:
  parquet = _parquet_file(fh)
  _check_header(path, table, parquet.schema_arrow.names)
  number = 0
  for batch in parquet.iter_batches(batch_size=DEFAULT_CHUNK_ROWS):
    for row in batch.to_pylist():
      number += 1
      yield number, row, None, None


def read_table(paths: List[str], table: str, fmt: Optional[str] = None):
  """Reads whole files in process (small data, tests). Returns (frame, dead letters, rows_in).

  Rows' positions (interactions) number `paths` in the order given.
  """
  frames, dead, rows = [], [], 0
  for index, path in enumerate(paths):
    for event in read_table_file(path, table, fmt, file_index=index):
      if isinstance(event, pd.DataFrame):
        frames.append(event)
      elif isinstance(event, FileCount):
        rows += event.rows
      else:
        dead.append(event)
  frame = (pd.concat(frames, ignore_index=True) if frames else
           pd.DataFrame({c: [] for c in columns(table)}))
  return frame, dead, rows
