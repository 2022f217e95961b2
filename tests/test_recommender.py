"""Pieces of GraphRecommender checked by hand."""
import numpy as np

from tfgrec.models import recommender

tf = recommender.tf


def test_leave_one_out_readout_by_hand():
  # A user with items a = (1, 0) weight 1 and b = (0, 2) weight 0.5: sums = (1, 0) + 0.5 * (0, 1).
  sums = tf.constant([[1.0, 0.5], [1.0, 0.5], [3.0, 0.0]])
  totals = tf.constant([1.5, 1.5, 1.0])
  own_weight = tf.constant([1.0, 0.5, 1.0])
  own_item = tf.constant([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
  out = recommender.leave_one_out_readout(sums, totals, own_weight, own_item).numpy()
  np.testing.assert_allclose(out[0], [0.0, 1.0])  # Without a: only b's direction remains.
  np.testing.assert_allclose(out[1], [1.0, 0.0])  # Without b: only a.
  np.testing.assert_allclose(out[2], [0.0, 0.0])  # A one-item history: nothing left.


def test_user_text_profile_weighs_recent_items_more():
  text = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
  # User 0 saw item 0 long ago (rank 10) and item 1 last (rank 0).
  profile = recommender.user_text_profile(np.array([0, 0]), np.array([0, 1]), np.array([10, 0]),
                                          text, num_users=2, half_life=5.0)
  assert profile[0, 1] > 3 * profile[0, 0]
  np.testing.assert_allclose(np.linalg.norm(profile[0]), 1.0, rtol=1e-6)
  assert not profile[1].any()  # No history.


def test_retrieval_groups_take_the_softmax_within_each_group():
  import types  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  query = rng.normal(size=(5, 3)).astype(np.float32)
  candidate = rng.normal(size=(5, 3)).astype(np.float32)
  items = np.array([4, 7, 4, 1, 2], np.int32)  # Items 0 and 2 repeat across the two groups.
  probability = np.array([0.1, 0.2, 0.1, 0.3, 0.3], np.float32)
  task = recommender.tfrs.tasks.Retrieval(
      loss=tf.keras.losses.CategoricalCrossentropy(
          from_logits=True, reduction=tf.keras.losses.Reduction.NONE),
      temperature=0.5, remove_accidental_hits=True)

  def loss(groups, rows=5):
    fake = types.SimpleNamespace(
        retrieval=task, task_weights=recommender.TaskConfig(retrieval_groups=groups))
    return recommender.GraphRecommender._retrieval_loss(  # pylint: disable=protected-access
        fake, tf.constant(query[:rows]), tf.constant(candidate[:rows]),
        tf.constant(items[:rows]), tf.constant(probability[:rows]), None).numpy()

  def by_hand(rows):
    logits = query[rows] @ candidate[rows].T / 0.5 - np.log(probability[rows])[None, :]
    same = items[rows][:, None] == items[rows][None, :]
    logits = np.where(same & ~np.eye(len(rows), dtype=bool), -np.inf, logits)
    return -np.diag(logits) + np.log(np.exp(logits).sum(axis=1))

  np.testing.assert_allclose(loss(1), by_hand(np.arange(5)), rtol=1e-5, atol=1e-5)
  # Two groups of a batch of 5: pairs 0-1, then 2-4; item 4 is no accidental hit across groups.
  np.testing.assert_allclose(loss(2), np.concatenate([by_hand(np.arange(2)),
                                                      by_hand(np.arange(2, 5))]), rtol=1e-5, atol=1e-5)
  assert not np.allclose(loss(2), loss(1))
  # Fewer pairs than groups (a small last batch): one group, no empty softmax.
  np.testing.assert_allclose(loss(4, rows=3), by_hand(np.arange(3)), rtol=1e-5, atol=1e-5)
