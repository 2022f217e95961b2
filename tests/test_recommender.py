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
