"""Graph <-> text InfoNCE."""
import math

import numpy as np

from tfgrec import tasks

tf = tasks.alignment.tf


def test_aligned_pairs_cost_less_than_shuffled_ones():
  rng = np.random.default_rng(0)
  text = rng.normal(size=[32, 16]).astype(np.float32)
  graph = text + 0.3 * rng.normal(size=[32, 16]).astype(np.float32)  # A noisy view of the same.
  aligned = float(tasks.info_nce(graph, text, temperature=0.1))
  shuffled = float(tasks.info_nce(graph, text[rng.permutation(32)], temperature=0.1))
  assert aligned < 0.5 * shuffled, (aligned, shuffled)


def test_two_nodes_by_hand():
  # Orthogonal unit views: logits = [[1, 0], [0, 1]] / t; each row's loss is
  # log(1 + exp(-1 / t)), in both directions.
  a = np.eye(2, dtype=np.float32)
  t = 0.5
  expected = math.log(1 + math.exp(-1 / t))
  assert abs(float(tasks.info_nce(a, a, temperature=t)) - expected) < 1e-5


def test_duplicate_rows_are_not_negatives():
  # Rows 0 and 1 are the same node: with ids, row 1 is not a negative of row 0.
  a = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
  with_ids = float(tasks.info_nce(a, a, temperature=0.1, ids=tf.constant([7, 7, 8])))
  without = float(tasks.info_nce(a, a, temperature=0.1))
  assert with_ids < 0.01 < without


def test_task_layer_config_round_trip():
  layer = tasks.AlignmentTask(temperature=0.2)
  again = tasks.AlignmentTask.from_config(layer.get_config())
  assert again.temperature == 0.2
