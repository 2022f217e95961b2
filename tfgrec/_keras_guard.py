"""Makes sure TensorFlow runs with Keras 2 (`tf_keras`) before anything in tfgrec touches it.

TF-GNN and TensorFlow Recommenders are built on Keras 2. TensorFlow picks its Keras once, at
its first import, from the environment variable ``TF_USE_LEGACY_KERAS``. tfgrec therefore sets
the variable when it is imported first, and refuses to run when TensorFlow was already imported
with Keras 3 (nothing can switch it afterwards).
"""
import os
import sys

_FIX = (
    "Set TF_USE_LEGACY_KERAS=1 in the environment (or `import tfgrec` before `import tensorflow`) "
    "and start a new Python process; tfgrec needs Keras 2 (the tf-keras package), which TF-GNN and "
    "TensorFlow Recommenders are built on."
)
_FALSY = {"0", "false", "no", "off"}


def ensure_legacy_keras() -> None:
  """Sets ``TF_USE_LEGACY_KERAS=1`` or raises ImportError if Keras 3 is already active.

  Raises:
    ImportError: TensorFlow was imported before tfgrec with Keras 3 active, or the environment
      explicitly asks for Keras 3 (``TF_USE_LEGACY_KERAS=0``).
  """
  current = os.environ.get("TF_USE_LEGACY_KERAS")
  if current is not None and current.strip().lower() in _FALSY:
    raise ImportError(
        f"tfgrec cannot run with TF_USE_LEGACY_KERAS={current!r} (Keras 3). {_FIX}")
  if "tensorflow" not in sys.modules:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    return
  # TensorFlow is already imported: its Keras is fixed. Check which one it is.
  tf = sys.modules["tensorflow"]
  try:
    # Keras 3 has `keras.version()`; tf.keras as tf_keras (Keras 2) has none.
    version_fn = getattr(tf.keras, "version", None)
    version = str(version_fn()) if callable(version_fn) else "2"
  except Exception:  # pylint: disable=broad-except  # A broken keras install: reported below.
    version = "(unknown version)"
  if not version.startswith("2"):
    raise ImportError(
        f"TensorFlow was imported before tfgrec with Keras {version} active "
        f"(tf.keras is not Keras 2). {_FIX}")
  os.environ["TF_USE_LEGACY_KERAS"] = "1"
