"""Full-ranking metrics checked by hand on a 4-item catalog."""
import math

import numpy as np
import pytest

from tfgrec.eval import metrics


def _csr(rows, num_users):
  users = [u for u, items in enumerate(rows) for _ in items]
  items = [i for row in rows for i in row]
  return metrics.Interactions.from_pairs(np.array(users), np.array(items), num_users)


def test_metrics_by_hand():
  # Scores rank items 3 > 2 > 1 > 0 for both users. User 0 trained on item 3 (excluded), so
  # its ranking is 2, 1, 0; its held-out items are {1, 0}. User 1's held-out item is {3}.
  scores = np.array([[0.0, 1.0, 2.0, 3.0]] * 2)
  train = _csr([[3], []], 2)
  test = _csr([[1, 0], [3]], 2)
  out = metrics.evaluate(lambda users: scores[users], test, [train], num_items=4, ks=[2],
                         train_popularity=np.array([0, 0, 0, 1]), num_train_users=2)
  # User 0: top-2 = [2, 1]: one hit at rank 1. recall 1/2, DCG 1/log2(3), IDCG 1 + 1/log2(3),
  # HR 1, MRR 1/2. User 1: top-2 = [3, 2]: hit at rank 0: recall 1, NDCG 1, HR 1, MRR 1.
  dcg0 = 1 / math.log2(3)
  assert out["recall@2"] == pytest.approx((0.5 + 1.0) / 2)
  assert out["ndcg@2"] == pytest.approx((dcg0 / (1 + dcg0) + 1.0) / 2, rel=1e-6)
  assert out["hr@2"] == pytest.approx(1.0)
  assert out["mrr@2"] == pytest.approx((0.5 + 1.0) / 2)
  assert out["coverage@2"] == pytest.approx(3 / 4)  # Items 1, 2, 3.
  # Novelty: -log2((pop + 1) / 3): items 0-2 -> log2(3), item 3 -> log2(3/2).
  want = ((math.log2(3) * 2) / 2 + (math.log2(1.5) + math.log2(3)) / 2) / 2
  assert out["novelty@2"] == pytest.approx(want, rel=1e-6)
  assert out["users"] == 2


def test_users_without_relevant_items_are_skipped_and_restriction_works():
  test = _csr([[0, 2], [], [1]], 3)
  assert test.sizes().tolist() == [2, 0, 1]
  cold = test.restrict_items(np.array([False, True, True]))
  assert cold.sizes().tolist() == [1, 0, 1]
  assert cold.indices.tolist() == [2, 1]
  scores = np.tile(np.array([[3.0, 2.0, 1.0]]), (3, 1))
  out = metrics.evaluate(lambda u: scores[u], cold, [], num_items=3, ks=[1])
  assert out["users"] == 2 and out["hr@1"] == 0.0
  out = metrics.evaluate(lambda u: scores[u], cold, [], num_items=3, ks=[3])
  assert out["hr@3"] == 1.0
