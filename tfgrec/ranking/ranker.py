"""Stage 2: a DCN-v2 ranker over each user's candidate list, trained with a listwise softmax loss.

DCN-v2 (Wang et al., WWW 2021, "DCN V2: Improved Deep & Cross Network"): the standardized
features x0 [F] go through cross layers x_{l+1} = x0 ⊙ (W x_l + b) + x_l (``tfrs.layers.dcn.Cross``),
which build bounded-degree feature crosses explicitly, then an MLP, then one logit per candidate.

Loss, under ``tfrs.tasks.Ranking``: the listwise softmax cross-entropy (ListNet's top-one
probability, Cao et al. 2007) of each user's list,

  loss(user) = − sum_c y_c / (sum_c' y_c') · log softmax(logits)_c       over valid candidates c

with y_c = 1 for a candidate the user interacted with in the label slice. It optimizes the order
of the list as a whole (what NDCG scores), where a pointwise loss would fit each label alone.
Users with no positive candidate carry weight 0. tensorflow-ranking, which has this loss, does
not install with TensorFlow >= 2.16.

New items (`boost_new_items`): a candidate item the sources were fit without (no event among
theirs) gets a constant added to its logit. The ranker learns from a few hundred lists in which
such items are rare positives, and alone it almost never places one in the top K; the boost is
the largest offset the ranker's held-out lists accept within a small NDCG budget
(`new_items.fit_new_item_boost`, ``ranking.new_item_budget``), so a new item enters a user's top
K only where the ranker finds it nearly as likely as the K-th known item.
"""
import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfgrec.ranking import features as features_lib


@dataclasses.dataclass(frozen=True)
class RankerConfig:
  """The stage-2 ranker (Ranker) and its training (tfgrec.ranking.train_ranker);
  the run config's `ranking.ranker` section.

  Attributes:
    cross_layers: the DCN-v2 ranker's cross layers.
    projection_dim: their rank (None: full rank).
    hidden: the widths of the MLP after them.
    dropout: dropout in the MLP.
    l2: L2 regularization of the weights (1e-4 overfits the ~600 training lists of MovieLens;
      BENCHMARKS.md).
    epochs: at most this many epochs; the best by held-out NDCG@k is kept.
    patience: stop after this many epochs without improvement.
    batch_lists: candidate lists (users) per step.
    learning_rate: Adam's.
    holdout: share of the training lists held out to pick the epoch.
    k: the cut-off of the held-out NDCG.
    ensemble: rankers trained with seeds seed, seed + 1, ... (each its own hold-out); their
      mean logit ranks.
    seed: shuffling, the hold-out and initialization.
  """
  cross_layers: int = 1
  projection_dim: Optional[int] = None
  hidden: Tuple[int, ...] = (32, 16)
  dropout: float = 0.1
  l2: float = 3e-3
  epochs: int = 40
  patience: int = 6
  batch_lists: int = 32
  learning_rate: float = 0.003
  holdout: float = 0.15
  k: int = 20
  ensemble: int = 5
  seed: int = 0

  def __post_init__(self):
    if self.epochs < 1 or self.batch_lists < 1 or self.learning_rate <= 0 or not (
        0 <= self.holdout < 1) or self.ensemble < 1:
      raise ValueError(f"epochs >= 1, batch_lists >= 1, learning_rate > 0, "
                        f"0 <= holdout < 1, ensemble >= 1 required, got {self.epochs}, "
                        f"{self.batch_lists}, {self.learning_rate}, {self.holdout}, "
                        f"{self.ensemble}")



@tf.keras.utils.register_keras_serializable(package="tfgrec")
class ListwiseSoftmax(tf.keras.losses.Loss):
  """Listwise softmax cross-entropy (module docstring).

  >>> loss = ListwiseSoftmax(reduction="none")
  >>> round(float(loss([[1.0, 0.0]], [[0.0, 0.0]])[0]), 4)  # -log(1/2)
  0.6931

  Call args:
    y_true: [B, C] relevance (>= 0); a row without relevance has loss 0.
    y_pred: [B, C] logits; invalid candidates carry `features.MASKED` (softmax weight 0).
  """

  def __init__(self, name: str = "listwise_softmax", **kwargs):
    super().__init__(name=name, **kwargs)

  def call(self, y_true, y_pred):
    y_true = tf.cast(y_true, tf.float32)
    y_pred = tf.cast(y_pred, tf.float32)
    target = tf.math.divide_no_nan(y_true, tf.reduce_sum(y_true, axis=-1, keepdims=True))
    return -tf.reduce_sum(target * tf.nn.log_softmax(y_pred, axis=-1), axis=-1)


def boost_new_items(logits, candidates, valid, new_items, boost):
  """Logits with `boost` added at the valid candidates that are new items (module docstring).

  Args:
    logits: [B, C] ranker logits.
    candidates: [B, C] item indices (any value at invalid slots).
    valid: [B, C] bool.
    new_items: [num_items] bool (or 0/1): the items the sources were fit without.
    boost: a scalar.

  Returns:
    [B, C] float32 tensor; invalid slots unchanged.
  """
  logits = tf.convert_to_tensor(logits, tf.float32)
  new = tf.gather(tf.cast(new_items, tf.float32), tf.maximum(tf.cast(candidates, tf.int32), 0))
  return tf.where(tf.convert_to_tensor(valid, tf.bool), logits + tf.cast(boost, tf.float32) * new,
                  logits)


class Ranker(tfrs.Model):
  """DCN-v2 + MLP over candidate features, one logit per candidate (module docstring).

  Init args:
    num_features: F.
    feature_mean, feature_std: [F] standardization of the features (from training lists).
    cross_layers: how many DCN-v2 cross layers (0: MLP only).
    projection_dim: low-rank cross layers (None: full rank).
    hidden: MLP widths.
    dropout: dropout after each MLP layer while training.
    l2: weight decay of the cross and MLP kernels.

  Call args:
    inputs: {"features": [B, C, F] float32, "valid": [B, C] bool}.

  Returns:
    [B, C] float32 logits; `features.MASKED` at invalid candidates.
  """

  def __init__(self, *, num_features: int, feature_mean: Optional[np.ndarray] = None,
               feature_std: Optional[np.ndarray] = None, cross_layers: int = 2,
               projection_dim: Optional[int] = None, hidden: Sequence[int] = (64, 32),
               dropout: float = 0.1, l2: float = 1e-5):
    super().__init__()
    if int(num_features) <= 0:
      raise ValueError(f"num_features must be > 0, got {num_features}")
    if int(cross_layers) < 0:
      raise ValueError(f"cross_layers must be >= 0, got {cross_layers}")
    if any(int(h) <= 0 for h in hidden):
      raise ValueError(f"hidden widths must be > 0, got {list(hidden)}")
    if not 0 <= dropout < 1:
      raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    self.num_features = int(num_features)
    self._init_args = dict(num_features=self.num_features, cross_layers=int(cross_layers),
                           projection_dim=None if projection_dim is None else int(projection_dim),
                           hidden=[int(h) for h in hidden], dropout=float(dropout), l2=float(l2))
    mean = np.zeros(num_features) if feature_mean is None else np.asarray(feature_mean)
    std = np.ones(num_features) if feature_std is None else np.asarray(feature_std)
    if mean.shape != (num_features,) or std.shape != (num_features,):
      raise ValueError(f"feature_mean and feature_std must be [{num_features}], got "
                       f"{mean.shape} and {std.shape}")
    self.feature_mean = tf.Variable(mean.astype(np.float32), trainable=False,
                                    name="feature_mean")
    self.feature_std = tf.Variable(np.maximum(std, 1e-6).astype(np.float32), trainable=False,
                                   name="feature_std")
    reg = tf.keras.regularizers.l2(l2) if l2 else None
    self.cross = [tfrs.layers.dcn.Cross(projection_dim=projection_dim, kernel_regularizer=reg)
                  for _ in range(int(cross_layers))]
    self.mlp = []
    for width in hidden:
      self.mlp.append(tf.keras.layers.Dense(int(width), activation="relu",
                                            kernel_regularizer=reg))
      if dropout:
        self.mlp.append(tf.keras.layers.Dropout(dropout))
    self.logit = tf.keras.layers.Dense(1)
    self.task = tfrs.tasks.Ranking(loss=ListwiseSoftmax())

  def call(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    x = tf.convert_to_tensor(inputs["features"], tf.float32)
    valid = tf.convert_to_tensor(inputs["valid"], tf.bool)
    shape = tf.shape(x)
    x = tf.reshape(x, [-1, self.num_features])
    x = (x - self.feature_mean) / self.feature_std
    x0 = x
    for layer in self.cross:
      x = layer(x0, x)
    for layer in self.mlp:
      x = layer(x, training=training)
    logits = tf.reshape(self.logit(x), shape[:2])
    return tf.where(valid, logits, features_lib.MASKED)

  def get_config(self) -> dict:
    """The constructor's arguments; the standardization is in the weights (feature_mean and
    feature_std are variables), so from_config + set_weights rebuilds the same ranker."""
    return dict(self._init_args)

  @classmethod
  def from_config(cls, config: dict) -> "Ranker":
    return cls(**config)

  def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
    labels = tf.cast(inputs["labels"], tf.float32)
    logits = self(inputs, training=training)
    weight = tf.cast(tf.reduce_sum(labels, axis=-1) > 0, tf.float32)
    return self.task(labels=labels, predictions=logits, sample_weight=weight,
                     compute_metrics=False)


class RankerEnsemble(tf.keras.Model):
  """The mean logit of several Rankers trained on the same lists with different seeds (and
  held-out users). Averaging members cuts the variance of a ranker fit on a few hundred lists
  (bagging, Breiman 1996); listwise logits are on one scale, so the plain mean is used.

  Init args:
    members: the Rankers (same features).

  Call args / Returns: as `Ranker`.
  """

  def __init__(self, members: Sequence[Ranker]):
    super().__init__()
    members = list(members)
    if not members:
      raise ValueError("an ensemble needs at least one member")
    widths = {m.num_features for m in members}
    if len(widths) != 1:
      raise ValueError(f"members read different feature counts: {sorted(widths)}")
    self.members = members
    self.num_features = widths.pop()

  def get_config(self) -> dict:
    return {"members": [m.get_config() for m in self.members]}

  @classmethod
  def from_config(cls, config: dict) -> "RankerEnsemble":
    return cls([Ranker.from_config(m) for m in config["members"]])

  def call(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    valid = tf.convert_to_tensor(inputs["valid"], tf.bool)
    logits = tf.add_n([m(inputs, training=training) for m in self.members]) / len(self.members)
    return tf.where(valid, logits, features_lib.MASKED)
