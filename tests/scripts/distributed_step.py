"""One training step under MirroredStrategy (two logical CPUs) and under the default strategy.

  python tests/scripts/distributed_step.py GRAPH_DIR BERT_DIR OUT.npz

Splits the CPU into two logical devices (possible only before TensorFlow initializes them, hence
its own process), builds the same model twice from the same initial weights, and takes one SGD
step: the mirrored run on the global batch [x; x] (each replica gets x), the default run on x.
Every loss of the model is an average over the global batch, so the replicas' summed gradients
equal the one-device gradient on x and both steps must move the weights alike (an in-batch
softmax sees other negatives in a batch of 2n than in one of n, hence x on one device rather
than [x; x]). Writes the weight changes of both runs to OUT.npz.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tfgrec  # noqa: E402,F401  # Keras 2 before TensorFlow loads.

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _CPU, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from tfgrec import config as config_lib  # noqa: E402
from tfgrec.train import inputs as inputs_lib  # noqa: E402
from tfgrec.train import trainer  # noqa: E402


def main(graph_dir: str, bert_dir: str, out: str) -> None:
  config = config_lib.load_config(None, {
      "graph_dir": graph_dir, "run_dir": os.path.join(os.path.dirname(out), "unused_run"),
      "text": {"checkpoint": bert_dir, "max_length": 16, "fine_tune": "off"},
      "model": {"dim": 16, "heads": 2, "rounds": 1, "dropout": 0.0},
      # Every loss on, with weights that make each one count in the step.
      "tasks": {"ranking_weight": 1.0, "alignment_weight": 1.0, "retrieval_weight": 1.0},
  })
  inputs = inputs_lib.load_inputs(config, progress=False)
  half = next(iter(trainer.dataset_of(config, inputs, batch_size=64)))
  doubled = {k: tf.concat([v, v], axis=0) for k, v in half.items()}  # [x; x]
  batches = {"default": tf.data.Dataset.from_tensors(half),
             "mirrored": tf.data.Dataset.from_tensors(doubled)}

  initial = None
  deltas = {}
  strategies = {
      "default": tf.distribute.get_strategy(),
      "mirrored": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
  }
  for name, strategy in strategies.items():
    trainer.set_seeds(0)
    with strategy.scope():
      model = inputs_lib.build_model(config, inputs)
      model.compile(optimizer=tf.keras.optimizers.SGD(0.5))
      trainer.build(model, batches[name])
    if initial is None:
      initial = [w.numpy() for w in model.trainable_weights]
    else:
      for w, w0 in zip(model.trainable_weights, initial):
        w.assign(w0)
    assert strategy.num_replicas_in_sync == (2 if name == "mirrored" else 1)
    model.fit(batches[name], epochs=1, verbose=0)
    deltas[name] = np.concatenate([(w.numpy() - w0).ravel()
                                   for w, w0 in zip(model.trainable_weights, initial)])
  np.savez(out, **deltas)


if __name__ == "__main__":
  main(*sys.argv[1:4])
