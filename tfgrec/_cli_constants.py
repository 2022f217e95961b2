"""Values the command-line parsers show, importable without TensorFlow, Beam or pandas.

``tfgrec --help`` and ``tfgrec <command> --help`` build every parser; importing the modules these
values come from would load TensorFlow (seconds, and its start-up logs) for a help text. Each
value here equals its source, which a test checks (tests/test_cli.py). BASELINES has its one
home here: `tfgrec evaluate` (tfgrec/train/evaluate.py) and the config default
(``evaluate.baselines``, tfgrec/config.py) import it. The split
and attribute values copy defaults of ``data.split`` and ``data.attributes`` whose dataclasses
load pandas; they go once the build-graph parser takes its defaults from the config.
"""
# tfgrec.data.contract.FORMATS: the formats of raw-log files.
FORMATS = ("csv", "jsonl", "parquet")
# tfgrec.data.prepare.SplitConfig(): the per-user split's defaults (config data.split).
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1
MIN_INTERACTIONS = 5
SPLIT_SEED = 0
# tfgrec.data.prepare.SALT_ENV: where --pseudonymize finds its salt.
SALT_ENV = "TFGREC_PSEUDONYM_SALT"
# The classic baselines `tfgrec evaluate` knows; every one is evaluated by default (config
# evaluate.baselines).
BASELINES = ("popularity", "ease", "ease_recency", "als", "mf", "graph_only", "text_only")
# tfgrec.data.attributes.AttributeConfig(): attribute columns -> nodes (config data.attributes).
ATTRIBUTE_BUCKETS = 8
ATTRIBUTE_MIN_COUNT = 2
ATTRIBUTE_MAX_VALUES = 1000
