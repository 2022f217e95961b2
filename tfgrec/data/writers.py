"""Writes contract tables (interactions, items, users) as CSV, JSONL or Parquet."""
import json
import os
from typing import Dict

import pandas as pd

from tfgrec.data import contract

EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


def table_path(out_dir: str, table: str, fmt: str) -> str:
  return os.path.join(out_dir, f"{table}.{EXTENSIONS[fmt]}")


def write_table(frame: pd.DataFrame, path: str, fmt: str) -> str:
  """Writes one table; `categories` holds lists (joined with '|' in CSV).

  Args:
    frame: the table, with the contract's column names.
    path: output file.
    fmt: 'csv', 'jsonl' or 'parquet'.

  Returns:
    `path`.
  """
  if fmt not in contract.FORMATS:
    raise ValueError(f"format must be one of {list(contract.FORMATS)}, got {fmt!r}")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  if fmt == "csv":
    out = frame.copy()
    if "categories" in out:
      out["categories"] = out["categories"].map(contract.CATEGORY_SEPARATOR.join)
    out.to_csv(path, index=False)
  elif fmt == "jsonl":
    with open(path, "w", encoding="utf-8") as f:
      for record in frame.to_dict(orient="records"):
        record = {k: (list(v) if k == "categories" else v) for k, v in record.items()
                  if not (isinstance(v, float) and v != v)}
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
  else:
    out = frame.copy()
    if "categories" in out:
      out["categories"] = out["categories"].map(list)
    out.to_parquet(path, index=False)
  return path


def write_tables(tables: Dict[str, pd.DataFrame], out_dir: str, fmt: str = "csv") -> Dict[str, str]:
  """Writes each table to <out_dir>/<table>.<ext>; returns table -> path."""
  return {name: write_table(frame, table_path(out_dir, name, fmt), fmt)
          for name, frame in tables.items()}
