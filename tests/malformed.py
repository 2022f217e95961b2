"""A deliberately malformed raw-log set: each kind of bad row, mixed with good ones, per format.

`write(dir)` writes interactions and items in CSV, JSONL and Parquet and returns the expected
dead letters as {(table, file name, line or row number): reason} and the number of good rows per
table.
"""
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

_GOOD = [("u1", "i1", "1700000000", "rating", "4"), ("u1", "i2", "1700000100", "rating", "3"),
         ("u2", "i1", "2023-11-14T22:15:00Z", "view", ""), ("u2", "i3", "1700000300", "", ""),
         ("u3", "i2", "1700000400", "rating", "5"), ("u3", "i4", "1700000500.7", "view", "1.5")]


def _csv(path, expected):
  lines = [b"user_id,item_id,timestamp,event,value"]
  bad = [
      (b"u9,i1,1700000000,rating,\xff\xfe", "undecodable_bytes"),
      (b"u9,i1,1700000000", "malformed_row"),
      (b",i1,1700000000,rating,4", "empty_id"),
      (b"u9,   ,1700000000,rating,4", "empty_id"),
      (b"u9,i1,-1,rating,4", "bad_timestamp"),  # -1 is the marker of "no time".
      (b"u9,i1,yesterday,rating,4", "bad_timestamp"),
      (b"u9,i1,1700000000000,rating,4", "bad_timestamp"),
      (b"u9,i1,1700000000,rating,four", "non_numeric_value"),
      (b"u9,i1,1700000000,rating,inf", "non_finite_value"),
      (b"\"u\t9\",i1,1700000000,rating,4", "bad_id"),
  ]
  rows = []
  for i, good in enumerate(_GOOD):
    rows.append((",".join(good).encode(), None))
    if i < len(bad):
      rows.append(bad[i])
  rows.extend(bad[len(_GOOD):])
  rows.append((",".join(_GOOD[0]).encode(), None))  # An exact duplicate: collapsed, not dead.
  rows.append((b"", None))  # A blank line: not a row.
  for n, (line, reason) in enumerate(rows, start=2):
    lines.append(line)
    if reason:
      expected[("interactions", os.path.basename(path), n)] = reason
  with open(path, "wb") as f:
    f.write(b"\n".join(lines) + b"\n")
  return len(_GOOD) + 1


def _jsonl(path, expected):
  good = [dict(zip(("user_id", "item_id", "timestamp", "event", "value"), g)) for g in _GOOD]
  for g in good:
    g["user_id"] = "j" + g["user_id"]  # Other users than the CSV's: no duplicates across files.
    if not g["value"]:
      del g["value"]
  good[0]["timestamp"] = 1700000000  # Numbers as numbers.
  good[1]["user_id"] = 17  # An integer id.
  bad = [
      (b'{"user_id": "u9", "item_id": "\xff", "timestamp": 1700000000}', "undecodable_bytes"),
      (b'{"user_id": "u9", "item_id": "i1", "timestamp": ', "malformed_row"),
      (b'["u9", "i1", 1700000000]', "malformed_row"),
      (b'{"item_id": "i1", "timestamp": 1700000000}', "missing_field"),
      (b'{"user_id": null, "item_id": "i1", "timestamp": 1700000000}', "missing_field"),
      (b'{"user_id": "", "item_id": "i1", "timestamp": 1700000000}', "empty_id"),
      (b'{"user_id": true, "item_id": "i1", "timestamp": 1700000000}', "bad_id"),
      (b'{"user_id": "u9", "item_id": "i1", "timestamp": "soon"}', "bad_timestamp"),
      (b'{"user_id": "u9", "item_id": "i1", "timestamp": 1700000000, "value": "x"}',
       "non_numeric_value"),
      (b'{"user_id": "u9", "item_id": "i1", "timestamp": 1700000000, "event": {"a": 1}}',
       "bad_field_type"),
  ]
  lines = []
  for g in good:
    lines.append(json.dumps(g).encode())
  for line, reason in bad:
    lines.append(line)
    expected[("interactions", os.path.basename(path), len(lines))] = reason
  with open(path, "wb") as f:
    f.write(b"\n".join(lines) + b"\n")
  return len(good)


def _parquet(path, expected):
  users = ["p1", "p1", None, "", "p2", "p2", "p3"]
  items = ["i1", "i5", "i1", "i1", "i2", "i3", "i1"]
  times = ["1700000000", "1700000100", "1700000000", "1700000000", "never", "1700000200",
           "1700000300"]
  values = ["4", "2", "1", "1", "1", "abc", "inf"]
  reasons = [None, None, "missing_field", "empty_id", "bad_timestamp", "non_numeric_value",
             "non_finite_value"]
  table = pa.table({"user_id": users, "item_id": items, "timestamp": times, "value": values})
  pq.write_table(table, path)
  for n, reason in enumerate(reasons, start=1):
    if reason:
      expected[("interactions", os.path.basename(path), n)] = reason
  return sum(r is None for r in reasons)


def _lines(path, expected, table, lines, bad):
  """Writes text lines; `bad` maps line numbers (1-based) to the expected reason."""
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  for number, reason in bad.items():
    expected[(table, os.path.basename(path), number)] = reason


def _items_csv(path, expected):
  _lines(path, expected, "items", [
      "item_id,title,description,categories,brand",
      "i1,Heat (1995),A heist.,Action|Crime,acme",
      "i2,Up (2009),,Animation,",
      ",No id,,Drama,",
      "i1,Heat again,,Action,",
      "i7,Cold item nobody saw,,Drama|Action,"], {4: "empty_id", 5: "duplicate_id"})
  return 3


def _items_jsonl(path, expected):
  _lines(path, expected, "items", [
      json.dumps({"item_id": "i3", "title": "Brazil (1985)", "categories": ["Sci-Fi"]}),
      json.dumps({"item_id": "i8", "title": "Bad cats", "categories": [1, 2]}),
      json.dumps({"item_id": "i9", "title": {"no": "string"}})],
         {2: "bad_field_type", 3: "bad_field_type"})
  return 1


def _users_csv(path, expected):
  _lines(path, expected, "users", [
      "user_id,country,plan", "u1,DE,premium", "u2,FR,", ",IT,free", "u1,ES,free",
      "never-active,PT,free"], {4: "empty_id", 5: "duplicate_id"})
  return 3


def write(out_dir):
  """Writes the set; returns (expected dead letters, good rows per table)."""
  expected = {}
  good = {"interactions": 0, "items": 0, "users": 0}
  good["interactions"] += _csv(os.path.join(out_dir, "interactions-a.csv"), expected)
  good["interactions"] += _jsonl(os.path.join(out_dir, "interactions-b.jsonl"), expected)
  good["interactions"] += _parquet(os.path.join(out_dir, "interactions-c.parquet"), expected)
  good["items"] += _items_csv(os.path.join(out_dir, "items-a.csv"), expected)
  good["items"] += _items_jsonl(os.path.join(out_dir, "items-b.jsonl"), expected)
  good["users"] += _users_csv(os.path.join(out_dir, "users.csv"), expected)
  return expected, good
