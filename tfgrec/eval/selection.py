"""Early stopping with the best epoch's weights: the one home of the rule that picks an epoch.

`BestEpoch` follows a monitored value (higher is better) epoch after epoch: an epoch is the new
best when its value beats the best so far strictly, the epochs since the best are counted, and
training stops once `patience` of them passed without a better one. It can keep the best epoch's
weights in memory and put them back. Two trainings use it:

* tfgrec.train.callbacks.ValidationCallback (the graph tower): validation NDCG@k over the
  catalog; the best weights go to disk (a run resumes with its best epoch and value), and the
  learning rate is lowered on the epochs waited.
* tfgrec.ranking.fitting (the ranker): NDCG@k of its held-out candidate lists; the best weights
  stay in memory and are restored after the last epoch.

Example:
  best = BestEpoch(patience=2)
  for epoch, value in enumerate([0.1, 0.3, 0.2, 0.25], start=1):
    best.update(epoch, value, model)  # New best at epochs 1 and 2.
    if best.stop:  # Epoch 4: two epochs without a better value.
      break
  best.restore(model)  # Epoch 2's weights.
"""
import math
from typing import Any, List, Optional


class BestEpoch:
  """The best epoch by a monitored value, the epochs waited since, and its weights.

  Args:
    patience: epochs without a better value after which `stop` is true (0: never).
    best_epoch: a resumed training's best epoch (1-based; 0: none yet).
    best_value: that epoch's value (None: none yet).

  Attributes:
    patience: as given.
    best_epoch: the best epoch so far (1-based; 0 before any).
    best_value: its value (-inf before any).
    best_weights: the model's weights at the best epoch when `update` was given the model
      (`get_weights()`), else None.
    epoch: the last epoch `update` saw (the resumed best epoch before any).
  """

  def __init__(self, patience: int, *, best_epoch: int = 0, best_value: Optional[float] = None):
    if patience < 0:
      raise ValueError(f"patience must be >= 0, got {patience}")
    if best_epoch < 0 or (best_epoch > 0) != (best_value is not None):
      raise ValueError(f"best_epoch >= 1 and best_value go together (a resumed best) or neither, "
                       f"got {best_epoch} and {best_value}")
    self.patience = int(patience)
    self.best_epoch = int(best_epoch)
    self.best_value = -math.inf if best_value is None else float(best_value)
    self.best_weights: Optional[List[Any]] = None
    self.epoch = self.best_epoch

  def update(self, epoch: int, value: float, model=None) -> bool:
    """Records epoch `epoch`'s value; True when it is the new best.

    Args:
      epoch: the epoch (1-based): the next one, or a resumed training's first.
      value: its monitored value (higher is better); NaN never improves.
      model: something with `get_weights()` (a Keras model): its weights are kept when the epoch
        is the new best (None: nothing kept, e.g. when the caller saves them itself).

    Returns:
      Whether `value` beats the best so far strictly.
    """
    self.epoch = int(epoch)
    if not value > self.best_value:
      return False
    self.best_epoch, self.best_value = int(epoch), float(value)
    if model is not None:
      self.best_weights = model.get_weights()
    return True

  @property
  def waited(self) -> int:
    """Epochs since the best one (0 at a new best; every epoch seen before any best)."""
    return self.epoch - self.best_epoch

  @property
  def stop(self) -> bool:
    """True once `patience` epochs passed without a better value (never with patience 0)."""
    return bool(self.patience) and self.waited >= self.patience

  def restore(self, model) -> None:
    """Sets `model`'s weights (`set_weights`) to those kept at the best epoch."""
    if self.best_weights is None:
      raise ValueError(f"no weights kept: the best epoch is {self.best_epoch} (0: no epoch had a "
                       f"value above -inf), and update() keeps them only when given the model")
    model.set_weights(self.best_weights)
