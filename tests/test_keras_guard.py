"""Importing tfgrec selects Keras 2, and refuses to run under Keras 3 with a fix in the message."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, **env):
  full_env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  full_env.update(env, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                        text=True, timeout=300, check=False)


def test_import_tfgrec_first_gives_keras_2():
  r = _run("import tfgrec, tensorflow as tf; print(tf.keras.__name__)")
  assert r.returncode == 0, r.stderr
  assert r.stdout.strip().startswith("tf_keras"), r.stdout


def test_tensorflow_with_keras_2_first_is_accepted():
  r = _run("import tensorflow as tf; import tfgrec; print(tf.keras.__name__)",
           TF_USE_LEGACY_KERAS="1")
  assert r.returncode == 0, r.stderr
  assert r.stdout.strip().startswith("tf_keras"), r.stdout


def test_tensorflow_with_keras_3_first_is_refused_with_the_fix():
  r = _run("import tensorflow as tf; import tfgrec")
  assert r.returncode != 0
  assert "ImportError" in r.stderr
  assert "TF_USE_LEGACY_KERAS=1" in r.stderr


@pytest.mark.parametrize("value", ["0", "false"])
def test_environment_asking_for_keras_3_is_refused(value):
  r = _run("import tfgrec", TF_USE_LEGACY_KERAS=value)
  assert r.returncode != 0
  assert f"TF_USE_LEGACY_KERAS={value!r}" in r.stderr
