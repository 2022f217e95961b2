"""One YAML config per run, read into frozen dataclasses; unknown keys are errors.

  config = load_config("run.yaml")            # or load_config(None): the packaged defaults
  config.model.dim, config.train.epochs        # typed, validated, immutable
  save_config(config, "out/run/config.yaml")   # the resolved config, every key written

Every default is written once, in the dataclasses below (and the configs of the constructors
they map onto); docs/config.md lists every key with its default and meaning, generated from them
(``python -m tfgrec.config > docs/config.md``; a test keeps it equal). The packaged
``tfgrec/configs/default.yaml`` (the demo on the embedded MovieLens) holds only what the demo sets
differently from them. A file only needs the keys it changes. The same file drives `tfgrec demo`
and every subcommand. Every section maps one-to-one onto a constructor or function:
``data.synthetic`` onto :class:`tfgrec.data.synthetic.SyntheticConfig`, ``data.split`` onto the
graph job's :class:`tfgrec.data.prepare.SplitConfig`, ``model`` with ``experimental.model`` onto
:class:`tfgrec.models.GraphTowerConfig` (``RunConfig.tower``), ``tasks`` onto the losses of
:class:`tfgrec.models.GraphRecommender`, ``train`` onto :func:`tfgrec.train.train`, ``export``
onto :func:`tfgrec.export.export_run`, ``serve`` onto :class:`tfgrec.serving.LocalModelServer` and
the client.

``experimental`` holds the variants only a benchmark turns (ablations, designs that lost); the
product keeps their defaults. A key moved there from its old place is an error that names its
new place (``MOVED``).
"""
import dataclasses
import inspect
import os
import re
import sys
import typing
from typing import Any, Dict, List, Optional, Tuple

import yaml

from tfgrec import _cli_constants
from tfgrec import storage
from tfgrec.data.attributes import AttributeConfig
from tfgrec.data.prepare import SplitConfig
from tfgrec.data.synthetic import SyntheticConfig
from tfgrec.models.graph_tower import GraphTowerConfig
from tfgrec.models.recommender import TaskConfig
from tfgrec.ranking.ranker import RankerConfig

DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "configs", "default.yaml")


class ConfigError(ValueError):
  """A config file names a key that does not exist or gives a value of the wrong type."""


@dataclasses.dataclass(frozen=True)
class TextConfig:
  """The text tower.

  Attributes:
    checkpoint: 'embedded' (all-MiniLM-L6-v2 shipped with the package), a local Hugging Face
      checkpoint directory, or a hub name (needs network).
    max_length: tokens per item text, [CLS] and [SEP] included.
    batch_size: texts per encoder call when embedding the catalog.
    cache_dir: where frozen text embeddings are cached (default: text_cache/ beside the
      graph directory, shared by every run on that graph).
    fine_tune: 'auto' (fine-tune on GPU, frozen on CPU), 'on' or 'off'.
    trainable_layers: top transformer layers trained when fine-tuning (0: all).
  """
  checkpoint: str = "embedded"
  max_length: int = 32
  batch_size: int = 128
  cache_dir: Optional[str] = None
  fine_tune: str = "auto"
  trainable_layers: int = 2

  def __post_init__(self):
    if self.fine_tune not in ("auto", "on", "off"):
      raise ConfigError(f"text.fine_tune must be 'auto', 'on' or 'off', got {self.fine_tune!r}")
    if self.max_length < 3 or self.batch_size < 1 or self.trainable_layers < 0:
      raise ConfigError(
          f"text: max_length >= 3, batch_size >= 1, trainable_layers >= 0 required, got "
          f"{self.max_length}, {self.batch_size}, {self.trainable_layers}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimization, validation and checkpoints.

  Attributes:
    epochs: upper bound on epochs (early stopping usually ends sooner).
    batch_size: (user, item) training pairs per step; every step runs the whole graph, so large
      batches make epochs cheap.
    learning_rate: Adam learning rate.
    patience: epochs without a better validation NDCG@k before stopping (0: never stop early).
    lr_decay_patience: multiply the learning rate by lr_decay_factor after every this many
      epochs without a better validation NDCG@k (0: a constant learning rate).
    lr_decay_factor: that factor, in (0, 1).
    validation_k: the K of the validation NDCG@K / Recall@K that picks the best epoch.
    clip_norm: clip each gradient to this global norm (0: no clipping).
    jit_compile: XLA-compile the train step.
    seed: seeds Python, NumPy and TensorFlow.
  """
  epochs: int = 40
  batch_size: int = 4096
  learning_rate: float = 0.01
  patience: int = 5
  lr_decay_patience: int = 2
  lr_decay_factor: float = 0.5
  validation_k: int = 20
  clip_norm: float = 1.0
  jit_compile: bool = False
  seed: int = 42

  def __post_init__(self):
    if self.epochs < 1 or self.batch_size < 2 or self.learning_rate <= 0:
      raise ConfigError(f"train: epochs >= 1, batch_size >= 2, learning_rate > 0 required, got "
                        f"{self.epochs}, {self.batch_size}, {self.learning_rate}")
    if self.lr_decay_patience < 0 or not 0.0 < self.lr_decay_factor < 1.0:
      raise ConfigError(f"train: lr_decay_patience >= 0 and lr_decay_factor in (0, 1) required, "
                        f"got {self.lr_decay_patience}, {self.lr_decay_factor}")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
  """Test-split evaluation.

  Attributes:
    ks: cut-offs of every metric.
    long_tail_head_share: the head is the most popular items holding this share of training
      interactions; the long-tail slice is every other item.
    short_history: users with at most this many training items form the short-history slice.
    baselines: baselines trained and evaluated next to the model (default: every one
      `tfgrec evaluate` knows, tfgrec.train.evaluate.BASELINES).
  """
  ks: Tuple[int, ...] = (10, 20, 50)
  long_tail_head_share: float = 0.5
  short_history: int = 20
  baselines: Tuple[str, ...] = _cli_constants.BASELINES


@dataclasses.dataclass(frozen=True)
class CandidatesConfig:
  """Stage 1: how many candidates each source proposes per request (0: the source is off).

  Attributes:
    ease: EASE on the recency-weighted history (tfgrec.sources.Ease).
    graph_filter: GF-CF linear filter on the item-item graph (tfgrec.sources.GraphFilter).
    sequence: time-aware causal self-attention over the history (tfgrec.sources.SequenceSource).
    graph_tower: the trained graph tower's item space, queried as the run's picked query
      (RankingConfig.tower_query).
    text: text neighbours of the recent history (the source of cold items).
    trending: most interacted with in windows ending at the reference time.
    fresh: first seen recently.
  """
  ease: int = 100
  graph_filter: int = 100
  sequence: int = 100
  graph_tower: int = 50
  text: int = 50
  trending: int = 50
  fresh: int = 50

  def __post_init__(self):
    bad = {k: v for k, v in dataclasses.asdict(self).items() if v < 0}
    if bad:
      raise ConfigError(f"ranking.candidates: counts must be >= 0, got {bad}")
    if not any(dataclasses.asdict(self).values()):
      raise ConfigError("ranking.candidates: every source is off (all counts 0)")


@dataclasses.dataclass(frozen=True)
class SequenceConfig:
  """The sequence source (tfgrec.sources.SequenceSource arguments).

  Attributes:
    max_len: the most recent events of a history the model reads.
    dim: width of the item and position embeddings.
    num_heads: attention heads per block (dim must be divisible by them).
    num_blocks: causal self-attention blocks.
    dropout: dropout in the blocks.
    epochs: training epochs (picked on validation NDCG@20 among 6, 10, 15, 20, 30;
      BENCHMARKS.md).
    batch_size: histories per training step.
    learning_rate: Adam's.
  """
  max_len: int = 50
  dim: int = 64
  num_heads: int = 2
  num_blocks: int = 2
  dropout: float = 0.2
  epochs: int = 15
  batch_size: int = 16
  learning_rate: float = 0.001


@dataclasses.dataclass(frozen=True)
class RankingConfig:
  """Two stages: candidate sources, then a learned ranker over their union.

  Attributes:
    enabled: train the sources and the ranker after the graph tower, evaluate and serve the
      two stages (false: the graph tower's retrieval alone, as before).
    candidates: N per source (0: off).
    sequence: the sequence source.
    drop_features: feature groups left out ("text", "category", "popularity", "user",
      "source:<name>").
    ranker: the ranker.
    ablations: `tfgrec evaluate` also scores drop-one ablations (rankers refit for each).
    ablation_ensemble: rankers per ablation (and in the "two-stage − none" reference row they
      are compared with; fewer than `ranker.ensemble` keeps evaluation short).
    item_neighbours: M, the item-item weights each item keeps in the EASE and graph-filter
      sources (a request reads history × M of them); 0: their own defaults, dense [I, I]
      matrices up to 20,000 items (a request reads all I² weights: 330 MB each for 9,000
      items, about 50–60 ms on 2 cores), the graph filter's 200 neighbours above. Measured on
      MovieLens (BENCHMARKS.md): M = 500 costs EASE 0.7% NDCG@20, and a batch of long
      histories becomes slower than the dense product, so dense stays the default.
    refit_trained_sources: `tfgrec evaluate` and `tfgrec export` retrain the trained sources
      (sequence) on the events the other sources are refit on (training + validation; every
      event), as they refit the closed-form ones (a couple of minutes each on MovieLens); off,
      they keep their training fit and read those events through the users' histories, as
      the graph tower does.
    release_attribute: the items column holding each item's release year or date (an
      attribute of the catalog); the fresh source and the ranker's item age count from the
      earlier of it and the item's first event. Unset, or a column the catalog lacks: from the
      first event alone.
    new_user_lists: the share of the ranker's training users that also give a list as a new
      user: the same reference time and labels, no history, and (when the graph has user
      attributes) the graph tower's state from their attributes as the served model computes
      it for a user it does not know. The ranker then learns that regime instead of meeting it
      first at serving time (0: off).
    tower_query: the graph-tower source scores as the run's picked query does (the user's own
      state with its weight, the readout's half-life, the items' popularity prior;
      tfgrec.train.query); off, with the recency-weighted readout of the history alone
      (half-life 5 events, no prior).
    new_item_budget: items the sources were fit without (new items) get a constant added to
      their ranker logit: the largest (in steps of 0.25) whose NDCG@K on the ranker's held-out
      lists, thinned to the share of new candidates of the lists it is added to, stays within
      this share of the NDCG@K without it (0: no boost; tfgrec/ranking/README.md "New items in
      the mixed list"). Half of the 1% of NDCG the known items may lose.
  """
  enabled: bool = True
  candidates: CandidatesConfig = CandidatesConfig()
  sequence: SequenceConfig = SequenceConfig()
  drop_features: Tuple[str, ...] = ()
  ranker: RankerConfig = RankerConfig()
  ablations: bool = True
  ablation_ensemble: int = 2
  item_neighbours: int = 0
  refit_trained_sources: bool = True
  release_attribute: Optional[str] = "year"
  new_user_lists: float = 0.2
  tower_query: bool = True
  new_item_budget: float = 0.005

  def __post_init__(self):
    if not 0.0 <= self.new_item_budget < 1.0:
      raise ConfigError(f"ranking.new_item_budget must be in [0, 1), got {self.new_item_budget}")
    if not 0.0 <= self.new_user_lists <= 1.0:
      raise ConfigError(f"ranking.new_user_lists must be in [0, 1], got {self.new_user_lists}")
    if self.ablation_ensemble < 1:
      raise ConfigError(f"ranking.ablation_ensemble must be >= 1, got {self.ablation_ensemble}")
    if self.item_neighbours < 0:
      raise ConfigError(f"ranking.item_neighbours must be >= 0, got {self.item_neighbours}")


DATA_SOURCES = ("movielens", "synthetic", "raw")


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where the raw logs come from (the demo's first stages).

  Attributes:
    source: 'movielens' (the embedded ml-latest-small, written to raw_dir), 'synthetic'
      (generated from `synthetic`, written to raw_dir) or 'raw' (your own logs, already in
      raw_dir, in the raw-log contract: `tfgrec data contract`).
    raw_dir: the raw-log directory (interactions.*, optional items.* and users.*).
    synthetic: the synthetic log's size and shape (source 'synthetic').
    split: the graph job's per-user temporal split.
    attributes: how the graph job turns the further columns of items and users into attribute
      nodes (tfgrec.data.attributes.AttributeConfig).
  """
  source: str = "movielens"
  raw_dir: str = "out/data"
  synthetic: SyntheticConfig = SyntheticConfig()
  split: SplitConfig = SplitConfig()
  attributes: AttributeConfig = AttributeConfig()

  def __post_init__(self):
    if self.source not in DATA_SOURCES:
      raise ConfigError(f"data.source must be one of {DATA_SOURCES}, got {self.source!r}")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """SavedModels for TF Serving.

  Attributes:
    base: the model base directory (TF Serving's --model_base_path is <base>/<name>).
    name: the model name (clients' model_spec.name).
    k: items returned by `recommend` and `similar_items`.
  """
  base: str = "out/models"
  name: str = "tfgrec"
  k: int = 20

  def __post_init__(self):
    if self.k < 1 or not self.name:
      raise ConfigError(f"export: k >= 1 and a name required, got k={self.k}, "
                        f"name={self.name!r}")


@dataclasses.dataclass(frozen=True)
class ServeConfig:
  """The local model server and the client.

  Attributes:
    host: the address the local server binds (127.0.0.1: this machine only).
    port: its gRPC port (0: any free port).
    timeout: the client's deadline per call, seconds.
  """
  host: str = "127.0.0.1"
  port: int = 8500
  timeout: float = 10.0

  def __post_init__(self):
    if not 0 <= self.port <= 65535 or self.timeout <= 0:
      raise ConfigError(f"serve: port in [0, 65535] and timeout > 0 required, got "
                        f"{self.port}, {self.timeout}")


@dataclasses.dataclass(frozen=True)
class NewItemConfig:
  """An item that is not in the catalog, described by its text only.

  Attributes:
    title: its title.
    categories: its categories.
  """
  title: str = "Toy Story 4 (2019)"
  categories: Tuple[str, ...] = ("Adventure", "Animation", "Children", "Comedy")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
  """What the demo asks the served model at the end.

  Attributes:
    new_user_titles: titles a brand-new user liked (most recent first); titles not in the
      catalog are reported and left out.
    new_item: a new item, known by its text alone.
  """
  new_user_titles: Tuple[str, ...] = ("Finding Nemo (2003)", "Shrek (2001)",
                                      "Monsters, Inc. (2001)")
  new_item: NewItemConfig = NewItemConfig()


_TOWER = GraphTowerConfig()  # The tower's defaults, written once there.


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The graph tower: tfgrec.models.GraphTowerConfig but its variants (experimental.model).

  Attributes: those of tfgrec.models.GraphTowerConfig, with its defaults.
  """
  dim: int = _TOWER.dim
  rounds: int = _TOWER.rounds
  heads: int = _TOWER.heads
  dropout: float = _TOWER.dropout
  use_categories: bool = _TOWER.use_categories
  use_attributes: bool = _TOWER.use_attributes
  use_text: bool = _TOWER.use_text
  layer_norm: bool = _TOWER.layer_norm
  l2: float = _TOWER.l2
  recency_half_lives: Tuple[float, ...] = _TOWER.recency_half_lives
  conv_recency_half_life: float = _TOWER.conv_recency_half_life
  attention_recent: int = _TOWER.attention_recent

  def __post_init__(self):
    GraphTowerConfig(**dataclasses.asdict(self))  # Its checks (with the variants' defaults).


@dataclasses.dataclass(frozen=True)
class TowerVariants:
  """Graph tower variants the product never changes (tfgrec.models.GraphTowerConfig).

  Attributes: those of tfgrec.models.GraphTowerConfig, with its defaults.
  """
  branches: str = _TOWER.branches
  attention_edge_sets: Optional[Tuple[str, ...]] = _TOWER.attention_edge_sets
  combine: str = _TOWER.combine
  update_attributes: bool = _TOWER.update_attributes

  def __post_init__(self):
    GraphTowerConfig(**dataclasses.asdict(self))  # Its checks (with the model's defaults).


@dataclasses.dataclass(frozen=True)
class ExperimentalConfig:
  """Variants only a benchmark turns: ablations and designs that lost (BENCHMARKS.md). The
  product keeps their defaults; they may change or go without notice.

  Attributes:
    model: the graph tower's variants.
  """
  model: TowerVariants = TowerVariants()


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything one run reads.

  Attributes:
    graph_dir: the graph directory written by `tfgrec build-graph`.
    run_dir: where checkpoints, logs, metrics and the report go.
  """
  graph_dir: str = "out/graph"
  run_dir: str = "out/run"
  data: DataConfig = DataConfig()
  text: TextConfig = TextConfig()
  model: ModelConfig = ModelConfig()
  tasks: TaskConfig = TaskConfig()
  train: TrainConfig = TrainConfig()
  evaluate: EvaluateConfig = EvaluateConfig()
  ranking: RankingConfig = RankingConfig()
  export: ExportConfig = ExportConfig()
  serve: ServeConfig = ServeConfig()
  demo: DemoConfig = DemoConfig()
  experimental: ExperimentalConfig = ExperimentalConfig()

  @property
  def tower(self) -> GraphTowerConfig:
    """The graph tower's config: ``model`` with ``experimental.model``."""
    return GraphTowerConfig(**dataclasses.asdict(self.model),
                            **dataclasses.asdict(self.experimental.model))


# Keys that moved, old path -> new path: a file that still has one gets an error naming the new
# place (instead of "unknown key").
MOVED = {f"model.{name}": f"experimental.model.{name}"
         for name in ("branches", "attention_edge_sets", "combine", "update_attributes")}


def _unknown_key(where: str, key: str, takes) -> ConfigError:
  """The error for `key` of section `where`: where it moved to, else what the section takes."""
  path = _join(where, key)
  if path in MOVED:
    return ConfigError(f"config key {path!r} moved to {MOVED[path]!r} (docs/config.md): "
                       f"write it under {MOVED[path].rpartition('.')[0]}")
  return ConfigError(f"unknown config key {path!r}; {where or 'the top level'} takes: "
                     f"{', '.join(takes)}")


def _build(cls, values: Any, where: str):
  """Builds dataclass `cls` from a mapping, checking keys and value types."""
  if values is None:
    values = {}
  if not isinstance(values, dict):
    raise ConfigError(f"{where or 'config'}: expected a mapping, got {values!r}")
  fields = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - set(fields))
  if unknown:
    raise _unknown_key(where, unknown[0], fields)
  hints = typing.get_type_hints(cls)
  kwargs = {}
  for name, value in values.items():
    kwargs[name] = _convert(hints[name], value, _join(where, name))
  try:
    return cls(**kwargs)
  except ConfigError:
    raise
  except (ValueError, TypeError) as e:
    raise ConfigError(f"{where or 'config'}: {e}") from e


def _join(where: str, name: str) -> str:
  return f"{where}.{name}" if where else name


def _convert(hint, value, where: str):
  origin = typing.get_origin(hint)
  if dataclasses.is_dataclass(hint):
    return _build(hint, value, where)
  if origin is typing.Union:  # Optional[X]
    if value is None:
      return None
    inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
    return _convert(inner, value, where)
  if origin is tuple:
    if not isinstance(value, (list, tuple)):
      raise ConfigError(f"{where}: expected a list, got {value!r}")
    inner = typing.get_args(hint)[0]
    return tuple(_convert(inner, v, where) for v in value)
  if hint is bool:
    if not isinstance(value, bool):
      raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value
  if hint is int:
    if isinstance(value, bool) or not isinstance(value, int):
      raise ConfigError(f"{where}: expected an integer, got {value!r}")
    return value
  if hint is float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)
  if hint is str:
    if not isinstance(value, str):
      raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value
  raise ConfigError(f"{where}: unsupported config type {hint}")


def config_from_dict(values: Optional[Dict[str, Any]], base: Optional[RunConfig] = None
                     ) -> RunConfig:
  """A RunConfig from nested dicts, over `base` (default: the packaged defaults)."""
  merged = to_dict(base) if base is not None else _default_dict()
  _merge(merged, values or {}, "")
  return _build(RunConfig, merged, "")


def _merge(into: Dict[str, Any], values: Dict[str, Any], where: str) -> None:
  if not isinstance(values, dict):
    raise ConfigError(f"{where or 'config'}: expected a mapping, got {values!r}")
  for key, value in values.items():
    if isinstance(value, dict) and isinstance(into.get(key), dict):
      _merge(into[key], value, _join(where, key))
    elif key not in into:
      raise _unknown_key(where, key, into)
    else:
      into[key] = value


def packaged_values() -> Dict[str, Any]:
  """The values of the packaged ``default.yaml``: what the demo sets differently from the
  dataclasses' defaults (a test checks it restates none of them)."""
  with open(DEFAULT_CONFIG, encoding="utf-8") as f:
    return yaml.safe_load(f) or {}


def _default_dict() -> Dict[str, Any]:
  merged = to_dict(RunConfig())
  _merge(merged, packaged_values(), "")
  return merged


def load_config(path: Optional[str] = None, overrides: Optional[Dict[str, Any]] = None
                ) -> RunConfig:
  """Reads a YAML run config over the packaged defaults; `overrides` (nested dict) win.

  Raises:
    FileNotFoundError: `path` does not exist.
    ConfigError: an unknown key, a value of the wrong type or out of range.
  """
  values: Dict[str, Any] = {}
  if path is not None:
    values = _read_yaml(path)
    if not isinstance(values, dict):
      raise ConfigError(f"{path}: expected a mapping at the top level")
  config = config_from_dict(values)
  if overrides:
    config = config_from_dict(overrides, base=config)
  return config


def to_dict(config) -> Dict[str, Any]:
  """Nested plain dict (tuples as lists), as written to YAML."""
  def plain(v):
    if dataclasses.is_dataclass(v):
      return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, tuple):
      return [plain(x) for x in v]
    return v
  return plain(config)


def _read_yaml(path: str) -> Any:
  """The YAML value of file `path` (local, or on any filesystem TensorFlow knows)."""
  if not storage.exists(path):
    raise FileNotFoundError(f"config file {path} does not exist")
  try:
    return yaml.safe_load(storage.read_text(path)) or {}
  except yaml.YAMLError as e:
    raise ConfigError(f"{path}: not valid YAML: {e}") from e


def save_config(config: RunConfig, path: str) -> None:
  """Writes the resolved config (every key) to `path` (local or remote, tfgrec.storage)."""
  text = ("# tfgrec run config (resolved: every key, defaults included)\n"
          + yaml.safe_dump(to_dict(config), sort_keys=False))
  storage.write_text(path, text)


def field_docs(cls) -> Dict[str, str]:
  """The meaning of each field of config dataclass `cls`, from its docstring's ``Attributes:``
  (``a, b: text`` documents both; ModelConfig and TowerVariants take GraphTowerConfig's)."""
  docs = {}
  for source in ((GraphTowerConfig, cls) if cls in (ModelConfig, TowerVariants) else (cls,)):
    docs.update(_attributes(inspect.getdoc(source) or ""))
  return {f.name: docs.get(f.name, "") for f in dataclasses.fields(cls)}


def _attributes(doc: str) -> Dict[str, str]:
  """{name: text} of the ``Attributes:`` section of a cleaned Google docstring."""
  docs: Dict[str, str] = {}
  names: List[str] = []
  inside = False
  for line in doc.splitlines():
    if not inside:
      inside = line == "Attributes:"
      continue
    if line and not line.startswith(" "):
      break  # The next section.
    entry = re.match(r"  (\w+(?:, \w+)*): ?(.*)$", line)
    if entry:
      names = entry.group(1).split(", ")
      docs.update((name, entry.group(2)) for name in names)
    elif line.strip():
      docs.update((name, f"{docs[name]} {line.strip()}") for name in names)
  return docs


def reference() -> str:
  """docs/config.md: every key of the run config with its default and meaning, generated from
  the dataclasses (``python -m tfgrec.config > docs/config.md``; a test keeps the file equal)."""
  lines = [
      "# Run config reference", "",
      "<!-- Generated from the dataclasses of tfgrec/config.py by "
      "`python -m tfgrec.config > docs/config.md`; tests/test_config.py keeps it equal. Edit "
      "the dataclasses, not this file. -->", "",
      "Every key of the YAML run config (`--config FILE`), with its default and meaning. A file "
      "only needs the keys it changes; an unknown key is an error that names it. The defaults "
      "are written once, in the dataclasses of `tfgrec/config.py` and the configs they hold; "
      "the packaged `tfgrec/configs/default.yaml` (the demo) holds only what the demo sets "
      "differently, and every run writes its resolved config, every key, to "
      "`<run_dir>/config.yaml`. `experimental` holds the variants only a benchmark turns "
      "(ablations, designs that lost): the product keeps their defaults."]

  def cell(text: str) -> str:
    return text.replace("|", "\\|")

  def section(value, where: str, depth: int) -> None:
    cls = type(value)
    summary = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
    title = f"`{where}`" if where else "The top level"
    summary += f" (`{cls.__module__}.{cls.__qualname__}`)"
    lines.extend(["", f"{'#' * depth} {title}", "", cell(summary)])
    docs = field_docs(cls)
    nested = []
    if any(not dataclasses.is_dataclass(getattr(value, f.name))
           for f in dataclasses.fields(cls)):
      lines.extend(["", "| key | default | meaning |", "|---|---|---|"])
    for f in dataclasses.fields(cls):
      v = getattr(value, f.name)
      if dataclasses.is_dataclass(v):
        nested.append((v, _join(where, f.name)))
        continue
      text = yaml.safe_dump(to_dict(v), default_flow_style=True, width=10**6).strip()
      text = text[:-len("\n...")] if text.endswith("\n...") else text
      lines.append(f"| `{_join(where, f.name)}` | `{cell(text)}` | {cell(docs[f.name])} |")
    for v, path in nested:
      section(v, path, depth + 1 if where else depth)

  section(RunConfig(), "", 2)
  lines.extend(["", "## Moved keys", "",
                "A file with a key's old place is an error naming its new place.", "",
                "| old | new |", "|---|---|"])
  lines.extend(f"| `{old}` | `{new}` |" for old, new in MOVED.items())
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  from tfgrec import config as _config  # pylint: disable=g-import-not-at-top
  sys.stdout.write(_config.reference())  # Its classes named tfgrec.config.*, not __main__.*.
