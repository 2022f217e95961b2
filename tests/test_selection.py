"""Early stopping with the best weights (tfgrec.eval.selection.BestEpoch) on hand-written values,
and the one NDCG formula (tfgrec.eval.metrics.ndcg) checked by hand."""
import math

import numpy as np
import pytest

from tfgrec.eval import metrics
from tfgrec.eval import selection


class _Model:
  """A stand-in for a Keras model: its weights are the epoch it was last trained to."""

  def __init__(self):
    self.weights = [np.zeros(2)]

  def get_weights(self):
    return [w.copy() for w in self.weights]

  def set_weights(self, weights):
    self.weights = [w.copy() for w in weights]


def _run(values, patience):
  """Feeds `values` (epochs 1, 2, ...) until `stop`: (BestEpoch, model, [(improved, waited)])."""
  model, best, steps = _Model(), selection.BestEpoch(patience), []
  for epoch, value in enumerate(values, start=1):
    model.weights = [np.full(2, float(epoch))]
    steps.append((best.update(epoch, value, model), best.waited))
    if best.stop:
      break
  return best, model, steps


def test_improves_plateaus_stops_at_patience_and_restores_the_best():
  # Better at epochs 1, 2 and 4; 0.3 again at 5 is no improvement (strictly better only).
  best, model, steps = _run([0.1, 0.2, 0.15, 0.3, 0.3, 0.25, 0.29, 0.5], patience=3)
  assert steps == [(True, 0), (True, 0), (False, 1), (True, 0), (False, 1), (False, 2),
                   (False, 3)]  # Stopped after epoch 7: the eighth value is never read.
  assert best.stop and (best.best_epoch, best.best_value, best.epoch) == (4, 0.3, 7)
  np.testing.assert_array_equal(model.weights[0], [7.0, 7.0])
  best.restore(model)
  np.testing.assert_array_equal(model.weights[0], [4.0, 4.0])


def test_patience_zero_never_stops_and_nan_never_improves():
  best, _, steps = _run([0.4, float("nan"), 0.3, 0.2, 0.1, 0.0], patience=0)
  assert [s[0] for s in steps] == [True, False, False, False, False, False]
  assert not best.stop and best.waited == 5 and best.best_epoch == 1
  # A NaN before any value counts as an epoch waited; the first number is the best.
  best, _, steps = _run([float("nan"), 0.0], patience=5)
  assert steps == [(False, 1), (True, 0)]


def test_a_resumed_best_carries_its_epoch_and_value():
  best = selection.BestEpoch(2, best_epoch=3, best_value=0.5)
  assert best.waited == 0 and not best.stop
  assert not best.update(4, 0.5) and best.waited == 1
  assert not best.update(5, 0.4) and best.stop
  assert best.update(6, 0.6) and (best.best_epoch, best.waited, best.stop) == (6, 0, False)
  with pytest.raises(ValueError, match="no weights kept"):
    best.restore(_Model())  # The weights went elsewhere (update had no model).


def test_bad_arguments_name_the_value():
  with pytest.raises(ValueError, match="patience must be >= 0, got -1"):
    selection.BestEpoch(-1)
  with pytest.raises(ValueError, match="got 2 and None"):
    selection.BestEpoch(1, best_epoch=2)


def test_ndcg_by_hand_binary_and_graded():
  d1, d2 = 1 / math.log2(3), 1 / math.log2(4)
  np.testing.assert_allclose(metrics.dcg_discounts(3), [1.0, d1, d2])
  gains = np.array([[0, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32)
  # k = 3: row 0 hits at ranks 1 and 2 (rank 3 is cut) of 3 relevant items; row 1 one hit of 2
  # relevant (one outside the ranking: a miss); row 2 none of 1; row 3 has no relevant item.
  got = metrics.ndcg(gains, np.array([3, 2, 1, 0]), 3)
  np.testing.assert_allclose(got, [(d1 + d2) / (1 + d1 + d2), 1 / (1 + d1), 0.0, 0.0])
  np.testing.assert_allclose(metrics.ideal_dcg(np.array([0, 1, 5]), 3), [0.0, 1.0, 1 + d1 + d2])
  # Graded: gains 2 at rank 0 and 3 at rank 1; the ideal is the grades sorted.
  graded = np.array([[2.0, 3.0, 0.0]])
  ratio = metrics.dcg(graded, 3) / metrics.dcg(-np.sort(-graded, axis=1), 3)
  np.testing.assert_allclose(ratio, [(2 + 3 * d1) / (3 + 2 * d1)])
  with pytest.raises(ValueError, match="k must be >= 1, got 0"):
    metrics.dcg_discounts(0)
  with pytest.raises(ValueError, match="got 4 and 2"):
    metrics.ndcg(gains, np.array([1, 1]), 3)
