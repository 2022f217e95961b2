"""The raw-log contract: per-field checks, and the checked-in schema files match the code."""
import glob
import json
import math
import os

import pytest

from tfgrec.data import contract

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(ROOT, "schemas")


def _reason(table, row):
  result = contract.validate_row(table, row)
  return result.reason if isinstance(result, contract.Rejection) else None


def test_good_interaction_is_canonicalized():
  row = contract.validate_row("interactions", {
      "user_id": 17, "item_id": " m1 ", "timestamp": "2023-11-14T22:13:20Z", "value": "4.5"})
  assert row == {"user_id": "17", "item_id": "m1", "timestamp": 1700000000,
                 "event": "interaction", "value": 4.5}


def test_absent_value_is_nan_and_iso_without_offset_is_utc():
  row = contract.validate_row("interactions", {
      "user_id": "u", "item_id": "i", "timestamp": "2023-11-14T22:13:20", "event": "view"})
  assert row["timestamp"] == 1700000000
  assert math.isnan(row["value"])
  assert row["event"] == "view"


@pytest.mark.parametrize("row,reason,field", [
    ({"item_id": "i", "timestamp": 1}, "missing_field", "user_id"),
    ({"user_id": " ", "item_id": "i", "timestamp": 1}, "empty_id", "user_id"),
    ({"user_id": "a\tb", "item_id": "i", "timestamp": 1}, "bad_id", "user_id"),
    ({"user_id": "u", "item_id": 1.5, "timestamp": 1}, "bad_id", "item_id"),
    ({"user_id": "u", "item_id": "i", "timestamp": "tomorrow"}, "bad_timestamp", "timestamp"),
    ({"user_id": "u", "item_id": "i", "timestamp": 1.7e12}, "bad_timestamp", "timestamp"),
    ({"user_id": "u", "item_id": "i", "timestamp": -5}, "bad_timestamp", "timestamp"),
    ({"user_id": "u", "item_id": "i", "timestamp": 1, "value": "x"}, "non_numeric_value",
     "value"),
    ({"user_id": "u", "item_id": "i", "timestamp": 1, "value": "-inf"}, "non_finite_value",
     "value"),
])
def test_bad_interactions_name_field_and_value(row, reason, field):
  result = contract.validate_row("interactions", row)
  assert isinstance(result, contract.Rejection)
  assert (result.reason, result.field) == (reason, field)
  assert result.reason in contract.REASONS
  assert field in result.message()


def test_items_categories_from_string_or_list():
  a = contract.validate_row("items", {"item_id": "i", "title": "T", "categories": "B|A| |A"})
  b = contract.validate_row("items", {"item_id": "i", "title": "T", "categories": ["A", "B"]})
  assert a["categories"] == b["categories"] == ("A", "B")
  assert _reason("items", {"item_id": "i", "categories": [1]}) == "bad_field_type"


def test_extra_item_columns_are_attributes():
  row = contract.validate_row("items", {"item_id": "i", "brand": "acme", "size": None})
  assert row["attributes"] == {"brand": "acme"}


def test_unknown_table_is_an_error():
  with pytest.raises(ValueError, match="unknown table 'events'"):
    contract.validate_row("events", {})


def test_checked_in_contract_matches_code():
  with open(os.path.join(SCHEMAS, "raw_logs.v2.json")) as f:
    assert json.load(f) == contract.contract_dict()


def test_checked_in_graph_schema_matches_code_and_every_pbtxt_parses():
  from tfgrec.graph import schema as schema_lib
  paths = glob.glob(os.path.join(SCHEMAS, "*.pbtxt"))
  assert paths
  for path in paths:
    with open(path) as f:
      assert f.readline().startswith("# proto-file: tensorflow_gnn/proto/graph_schema.proto")
    schema_lib.tfgnn.validate_schema(schema_lib.read_schema(path))
  written = schema_lib.read_schema(os.path.join(SCHEMAS, "graph_schema.pbtxt"))
  assert written == schema_lib.graph_schema()


@pytest.mark.parametrize("row", [
    {"user_id": "u", "item_id": "i"},  # No timestamp key (JSONL) or column (CSV, Parquet).
    {"user_id": "u", "item_id": "i", "timestamp": None},  # JSON / Parquet null.
    {"user_id": "u", "item_id": "i", "timestamp": ""},  # An empty CSV cell.
    {"user_id": "u", "item_id": "i", "timestamp": "  "},
    {"user_id": "u", "item_id": "i", "timestamp": math.nan},  # A pandas null.
])
def test_absent_null_or_empty_timestamp_is_no_time(row):
  result = contract.validate_row("interactions", row)
  assert not isinstance(result, contract.Rejection), result
  assert result["timestamp"] == contract.NO_TIME == -1


@pytest.mark.parametrize("value", ["yesterday", "-1", -1, "NaN", 1.7e12, True])
def test_a_present_but_malformed_timestamp_is_still_dead_lettered(value):
  # "-1" included: the no-time marker cannot be passed in as a time.
  result = contract.validate_row("interactions", {"user_id": "u", "item_id": "i",
                                                  "timestamp": value})
  assert isinstance(result, contract.Rejection)
  assert (result.reason, result.field) == ("bad_timestamp", "timestamp")


def test_contract_version_2_makes_timestamp_optional():
  assert contract.CONTRACT_VERSION == 2
  assert contract.required_fields("interactions") == ["user_id", "item_id"]
  timestamp = {f.name: f for f in contract.fields("interactions")}["timestamp"]
  assert not timestamp.required and timestamp.default == contract.NO_TIME
  assert contract.contract_dict()["no_time"]["value"] == contract.NO_TIME
  # One checked-in contract file, named by the version the code reports.
  names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(SCHEMAS, "raw_logs.*")))
  assert names == [f"raw_logs.v{contract.CONTRACT_VERSION}.json"]
