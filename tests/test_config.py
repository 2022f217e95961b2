"""The YAML run config: defaults written once, their reference, overrides, moved keys, unknown
keys and wrong types."""
import dataclasses
import os
import typing

import pytest

from tfgrec import config as config_lib
from tfgrec.models import graph_tower

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                    "config.md")


def _leaves(values, where=""):
  """{'a.b': value} of a nested dict."""
  out = {}
  for key, value in values.items():
    path = f"{where}.{key}" if where else key
    out.update(_leaves(value, path) if isinstance(value, dict) else {path: value})
  return out


def test_packaged_defaults_match_the_dataclass_defaults():
  # The dataclasses are the one home of every default: the packaged YAML holds only what the
  # demo sets differently, never a default again.
  defaults = _leaves(config_lib.to_dict(config_lib.RunConfig()))
  packaged = _leaves(config_lib.packaged_values())
  assert set(packaged) <= set(defaults)
  assert not [k for k, v in packaged.items() if defaults[k] == v], "restates a default"
  assert _leaves(config_lib.to_dict(config_lib.load_config())) == {**defaults, **packaged}
  assert config_lib.load_config() == config_lib.RunConfig()  # Nothing differs today.


def test_the_reference_lists_every_key_with_its_default_and_meaning():
  reference = config_lib.reference()
  with open(DOCS, encoding="utf-8") as f:
    assert f.read() == reference, (
        "docs/config.md is stale: .venv/bin/python -m tfgrec.config > docs/config.md")

  def check(value, where):
    for name, meaning in config_lib.field_docs(type(value)).items():
      path = f"{where}.{name}" if where else name
      if dataclasses.is_dataclass(getattr(value, name)):
        check(getattr(value, name), path)
      else:
        assert meaning, f"{path} has no meaning in its dataclass's docstring (Attributes:)"
        assert f"| `{path}` |" in reference, path

  check(config_lib.RunConfig(), "")


def test_model_and_its_variants_are_the_towers_config():
  # model + experimental.model map onto GraphTowerConfig: its fields, types and defaults.
  tower = typing.get_type_hints(graph_tower.GraphTowerConfig)
  parts = {**typing.get_type_hints(config_lib.ModelConfig),
           **typing.get_type_hints(config_lib.TowerVariants)}
  assert parts == tower
  assert len(dataclasses.fields(config_lib.ModelConfig)) + len(
      dataclasses.fields(config_lib.TowerVariants)) == len(tower)
  assert config_lib.RunConfig().tower == graph_tower.GraphTowerConfig()


def test_a_file_changes_only_its_keys(tmp_path):
  path = tmp_path / "run.yaml"
  path.write_text("model:\n  dim: 32\n  heads: 2\ntrain:\n  epochs: 3\n")
  config = config_lib.load_config(str(path))
  assert (config.model.dim, config.model.heads, config.train.epochs) == (32, 2, 3)
  assert config.model.rounds == graph_tower.GraphTowerConfig().rounds
  # The model section with experimental.model is the tower's own config, one-to-one.
  assert config.tower == graph_tower.GraphTowerConfig(dim=32, heads=2)
  over = config_lib.load_config(str(path), {"train": {"epochs": 5}})
  assert over.train.epochs == 5 and over.model.dim == 32


def test_experimental_variants_reach_the_tower(tmp_path):
  path = tmp_path / "run.yaml"
  path.write_text("experimental:\n  model:\n    branches: conv\n    combine: concat\n"
                  "model:\n  rounds: 2\n")
  config = config_lib.load_config(str(path))
  assert config.tower == graph_tower.GraphTowerConfig(rounds=2, branches="conv",
                                                      combine="concat")


@pytest.mark.parametrize("old", sorted(config_lib.MOVED))
def test_a_moved_key_names_its_new_place(tmp_path, old):
  section, _, name = old.rpartition(".")
  path = tmp_path / "old.yaml"
  path.write_text(f"{section}:\n  {name}: null\n")
  with pytest.raises(config_lib.ConfigError,
                     match=f"config key '{old}' moved to '{config_lib.MOVED[old]}'"):
    config_lib.load_config(str(path))
  with pytest.raises(config_lib.ConfigError, match=f"'{old}' moved"):  # Overrides too.
    config_lib.load_config(None, {section: {name: None}})


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
    ("experimental:\n  model:\n    branches: neither\n",
     "experimental.model: branches must be one of"),
    ("experimental:\n  model:\n    combines: mean\n",
     "unknown config key 'experimental.model.combines'"),
    ("model:\n  dim: 10\n", "model: dim (10) must be divisible by heads (4)"),
    ("tasks:\n  temperature: 0\n", "temperature"),
    ("ranking:\n  new_user_lists: 1.5\n", "ranking.new_user_lists must be in .0, 1.,? got 1.5"),
    ("ranking:\n  new_item_budget: 1.0\n", "ranking.new_item_budget must be in .0, 1.,? got 1.0"),
    ("- a list\n", "expected a mapping"),
])
def test_bad_configs_name_the_key_and_value(tmp_path, text, message):
  path = tmp_path / "bad.yaml"
  path.write_text(text)
  with pytest.raises(config_lib.ConfigError,
                     match=message.replace("(", r"\(").replace(")", r"\)")):
    config_lib.load_config(str(path))


def test_missing_file_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope.yaml"):
    config_lib.load_config(str(tmp_path / "nope.yaml"))


def test_configs_are_frozen():
  with pytest.raises(dataclasses.FrozenInstanceError):
    config_lib.RunConfig().train.epochs = 3  # type: ignore[misc]
