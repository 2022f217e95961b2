"""The YAML run config: packaged defaults, overrides, unknown keys and wrong types."""
import dataclasses

import pytest

from tfgrec import config as config_lib
from tfgrec.models import graph_tower


def test_packaged_defaults_match_the_dataclass_defaults():
  # The packaged YAML documents every key; it must not drift from the code's defaults.
  assert config_lib.load_config() == config_lib.RunConfig()


def test_a_file_changes_only_its_keys(tmp_path):
  path = tmp_path / "run.yaml"
  path.write_text("model:\n  dim: 32\n  heads: 2\ntrain:\n  epochs: 3\n")
  config = config_lib.load_config(str(path))
  assert (config.model.dim, config.model.heads, config.train.epochs) == (32, 2, 3)
  assert config.model.rounds == graph_tower.GraphTowerConfig().rounds
  # The model section is the tower's own config, one-to-one.
  assert config.model == graph_tower.GraphTowerConfig(dim=32, heads=2)
  over = config_lib.load_config(str(path), {"train": {"epochs": 5}})
  assert over.train.epochs == 5 and over.model.dim == 32


def test_saved_config_reads_back_identical(tmp_path):
  config = config_lib.load_config(None, {"model": {"recency_half_lives": [3, 9]},
                                         "evaluate": {"ks": [5]}})
  path = str(tmp_path / "config.yaml")
  config_lib.save_config(config, path)
  assert config_lib.load_config(path) == config
  assert config.model.recency_half_lives == (3.0, 9.0)


@pytest.mark.parametrize("text, message", [
    ("modle:\n  dim: 3\n", "unknown config key 'modle'"),
    ("model:\n  dims: 3\n", "unknown config key 'model.dims'"),
    ("model:\n  dim: many\n", "model.dim: expected an integer, got 'many'"),
    ("train:\n  jit_compile: 1\n", "train.jit_compile: expected true or false"),
    ("model:\n  branches: neither\n", "branches must be one of"),
    ("tasks:\n  temperature: 0\n", "temperature"),
    ("ranking:\n  new_user_lists: 1.5\n", "ranking.new_user_lists must be in .0, 1.,? got 1.5"),
    ("ranking:\n  new_item_budget: 1.0\n", "ranking.new_item_budget must be in .0, 1.,? got 1.0"),
    ("- a list\n", "expected a mapping"),
])
def test_bad_configs_name_the_key_and_value(tmp_path, text, message):
  path = tmp_path / "bad.yaml"
  path.write_text(text)
  with pytest.raises(config_lib.ConfigError, match=message.replace("(", r"\(")):
    config_lib.load_config(str(path))


def test_missing_file_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope.yaml"):
    config_lib.load_config(str(tmp_path / "nope.yaml"))


def test_configs_are_frozen():
  with pytest.raises(dataclasses.FrozenInstanceError):
    config_lib.RunConfig().train.epochs = 3  # type: ignore[misc]
