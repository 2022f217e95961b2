"""Reading raw files: every bad row becomes a dead letter with its reason; nothing is lost."""
import os

import pandas as pd
import pytest

from tfgrec.data import readers


def _by_file(expected, table, name):
  return {line: reason for (t, n, line), reason in expected.items() if t == table and n == name}


@pytest.mark.parametrize("name", ["interactions-a.csv", "interactions-b.jsonl",
                                  "interactions-c.parquet"])
def test_each_bad_row_is_dead_lettered_with_its_reason(malformed_raw, name):
  raw_dir, expected, _ = malformed_raw
  path = os.path.join(raw_dir, name)
  frame, dead, rows = readers.read_table([path], "interactions")
  got = {int(d["source"].rsplit(":", 1)[1]): d["reason"] for d in dead}
  assert got == _by_file(expected, "interactions", name)
  assert rows == len(frame) + len(dead)  # The accounting balances.
  for d in dead:
    assert d["table"] == "interactions" and d["detail"]
    assert d["source"].startswith(path + ":")


def test_csv_columns_and_types(malformed_raw):
  raw_dir, _, _ = malformed_raw
  frame, _, _ = readers.read_table([os.path.join(raw_dir, "interactions-a.csv")], "interactions")
  assert list(frame.columns) == readers.columns("interactions")
  assert frame["timestamp"].dtype == "int64" and frame["value"].dtype == "float64"
  # The fractional epoch is truncated, the ISO date converted, the empty event defaulted.
  assert 1700000500 in set(frame["timestamp"])
  iso = frame[(frame["user_id"] == "u2") & (frame["item_id"] == "i1")]["timestamp"]
  assert list(iso) == [1700000100]
  assert set(frame["event"]) == {"rating", "view", "interaction"}


def test_items_keep_extra_columns_as_attributes(malformed_raw):
  raw_dir, expected, _ = malformed_raw
  frame, dead, rows = readers.read_table([os.path.join(raw_dir, "items-a.csv")], "items")
  assert rows == 5
  heat = frame[frame["title"] == "Heat (1995)"].iloc[0]
  assert heat["categories"] == ("Action", "Crime")
  assert heat["attributes"] == '{"brand": "acme"}'
  assert [d["reason"] for d in dead] == ["empty_id"]  # Duplicates are found later, across files.


def test_header_without_a_required_column_names_file_and_column(tmp_path):
  path = tmp_path / "interactions.csv"
  path.write_text("user,item_id,timestamp\nu,i,1\n")
  with pytest.raises(readers.ContractError, match="interactions.csv' has no column 'user_id'"):
    list(readers.read_table_file(str(path), "interactions"))


def test_unknown_extension_is_an_error(tmp_path):
  with pytest.raises(readers.ContractError, match="cannot tell the format"):
    readers.detect_format(str(tmp_path / "interactions.xlsx"))
  assert readers.detect_format("gs://b/interactions-0001.jsonl.gz") == "jsonl"


def test_chunks_are_cut_at_chunk_rows(tmp_path):
  path = tmp_path / "interactions.csv"
  pd.DataFrame({"user_id": ["u"] * 10, "item_id": list("abcdefghij"), "timestamp": range(10)}
               ).to_csv(path, index=False)
  events = list(readers.read_table_file(str(path), "interactions", chunk_rows=4))
  sizes = [len(e) for e in events if isinstance(e, pd.DataFrame)]
  assert sizes == [4, 4, 2]
  assert events[-1].rows == 10


def test_interactions_without_a_timestamp_column_are_accepted(tmp_path):
  # Contract v2: timestamp is optional; the header check no longer asks for it.
  csv_path = tmp_path / "interactions.csv"
  csv_path.write_text("user_id,item_id,event\nu1,a,view\nu1,b,view\n")
  jsonl_path = tmp_path / "interactions.jsonl"
  jsonl_path.write_text('{"user_id": "u2", "item_id": "a"}\n'
                        '{"user_id": "u2", "item_id": "b", "timestamp": null}\n'
                        '{"user_id": "u2", "item_id": "c", "timestamp": "soon"}\n')
  frame, dead, rows = readers.read_table([str(csv_path), str(jsonl_path)], "interactions")
  assert rows == 5 and len(frame) == 4
  assert frame["timestamp"].tolist() == [-1, -1, -1, -1]
  assert [d["reason"] for d in dead] == ["bad_timestamp"]  # Present but malformed.
  assert readers.check_file(str(csv_path), "interactions") == "csv"


def test_parquet_null_timestamps_are_no_time(tmp_path):
  path = tmp_path / "interactions.parquet"
  pd.DataFrame({"user_id": ["u", "u", "u"], "item_id": ["a", "b", "c"],
                "timestamp": [1700000000, None, 1700000100]}).to_parquet(path)
  frame, dead, _ = readers.read_table([str(path)], "interactions")
  assert not dead and frame["timestamp"].tolist() == [1700000000, -1, 1700000100]


def test_positions_follow_file_and_line(tmp_path):
  # position = index of the file among the paths * 2**40 + line (the header is line 1).
  a, b = tmp_path / "interactions-a.csv", tmp_path / "interactions-b.csv"
  a.write_text("user_id,item_id,timestamp\nu,x,\n\nu,y,\n")
  b.write_text("user_id,item_id,timestamp\nu,z,\n")
  frame, _, _ = readers.read_table([str(a), str(b)], "interactions")
  assert frame["item_id"].tolist() == ["x", "y", "z"]
  assert frame["position"].tolist() == [2, 4, readers.POSITION_STRIDE + 2]
  assert frame["position"].dtype == "int64"
