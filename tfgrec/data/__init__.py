"""Raw logs: the contract, readers and writers, example sources, and the per-user split.

No TensorFlow here: these modules run in every Beam worker and in small scripts.
"""
# The raw-log contract (schemas/README.md) and per-row validation.
from tfgrec.data.contract import contract_dict
from tfgrec.data.contract import Rejection
from tfgrec.data.contract import REASONS
from tfgrec.data.contract import TABLES
from tfgrec.data.contract import validate_row
# Reading raw files (CSV, JSONL, Parquet; any Beam filesystem) into accepted chunks + dead letters.
from tfgrec.data.readers import ContractError
from tfgrec.data.readers import read_table
from tfgrec.data.readers import read_table_file
# Attribute columns -> attribute nodes: the config, the spec (attributes.json) and its mapping.
from tfgrec.data.attributes import AttributeConfig
from tfgrec.data.attributes import node_ids as attribute_node_ids
from tfgrec.data.attributes import vocabulary as attribute_vocabulary
# Writing contract tables.
from tfgrec.data.writers import write_tables
# Example data: embedded / GroupLens MovieLens, synthetic logs with planted structure.
from tfgrec.data.movielens import load as load_movielens
from tfgrec.data.synthetic import generate as generate_synthetic
from tfgrec.data.synthetic import SyntheticConfig
# Dedupe, temporal split, edge collapsing, item text.
from tfgrec.data.prepare import item_text
from tfgrec.data.prepare import SplitConfig
