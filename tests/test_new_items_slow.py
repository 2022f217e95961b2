"""A new title's nearest catalog items, with the real MiniLM on the embedded MovieLens.

Built from scratch the way the package builds a run (tfgrec data movielens -> build-graph -> a
short training -> tfgrec.train.exporter.build_module), so nothing outside the test's tmp dir is read.
"""
import os

import pandas as pd
import pytest

from tfgrec import cli
from tfgrec import config as config_lib
from tfgrec.train import exporter
from tfgrec import export
from tfgrec.train import trainer

tf = trainer.tf

TOY_STORIES = {"Toy Story (1995)", "Toy Story 2 (1999)", "Toy Story 3 (2010)"}


@pytest.mark.slow
def test_toy_story_4_finds_the_toy_stories(tmp_path):
  """About 10 minutes on 2 busy cores (MiniLM embeds the catalog, 3 epochs, the export)."""
  raw, graph = str(tmp_path / "raw"), str(tmp_path / "graph")
  assert cli.main(["data", "movielens", "--out", raw]) == 0
  assert cli.main(["build-graph", "--raw", raw, "--out", graph]) == 0
  config = config_lib.load_config(None, {
      "graph_dir": graph, "run_dir": str(tmp_path / "run"),
      "text": {"fine_tune": "off"},  # The embedded MiniLM, frozen.
      "train": {"epochs": 3, "patience": 0},
      "ranking": {"enabled": False}})
  trainer.train(config, progress=False)
  module = exporter.build_module(config, k=5)
  assert module.item_text is not None  # The catalog's MiniLM embeddings, for the blend.
  catalog = pd.read_parquet(os.path.join(graph, "catalog.parquet"))
  title = dict(zip(catalog["item_id"].astype(str), catalog["title"]))
  out = module.encode_items(tf.constant(["Toy Story 4 (2019)"]),
                            tf.constant([["Adventure", "Animation", "Children", "Comedy"]]))
  nearest = [title[i] for i in out["item_ids"].numpy().astype(str)[0]]
  print("Toy Story 4 (2019) ->", nearest)
  assert TOY_STORIES & set(nearest), nearest
