"""One training step of the graph recommender on a real graph: the tower's forward pass and the
loss + gradient, for variants of the run config.

  python benchmarks/bench_tower_step.py --config my.yaml --variant default \
      --variant tasks.retrieval_groups=1 --variant experimental.model.branches=conv

A variant is `default` or comma-separated `section.key=value` overrides of the config (values in
YAML). Prints seconds per call, median of --repeats calls in a tf.function, on one batch of the
run's training pairs. The graph, text cache and vocabularies are the config's (build the graph
and embed the text first, e.g. with `tfgrec train`).
"""
import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.

import argparse
import dataclasses

import yaml

import timing  # benchmarks/timing.py, beside this script


def overrides_of(variant: str) -> dict:
  """'a.b=1,c.d.e=x' -> {'a': {'b': 1}, 'c': {'d': {'e': 'x'}}}; 'default' -> {}."""
  nested = {}
  if variant == "default":
    return nested
  for assignment in variant.split(","):
    key, sep, value = assignment.partition("=")
    if not sep or "." not in key:
      raise ValueError(f"a variant is section.key=value[,...], got {assignment!r}")
    *path, name = key.split(".")
    node = nested
    for part in path:
      node = node.setdefault(part, {})
    node[name] = yaml.safe_load(value)
  return nested
  for assignment in variant.split(","):
    key, sep, value = assignment.partition("=")
    if not sep or "." not in key:
      raise ValueError(f"a variant is section.key=value[,...], got {assignment!r}")
    section, name = key.split(".", 1)
    nested.setdefault(section, {})[name] = yaml.safe_load(value)
  return nested


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", default=None, help="run config (default: packaged)")
  parser.add_argument("--variant", action="append", default=None,
                      help="'default' or section.key=value[,...] (repeatable)")
  parser.add_argument("--repeats", type=int, default=10)
  args = parser.parse_args()
  from tfgrec import _entry  # pylint: disable=g-import-not-at-top
  _entry.quiet_start(verbose=False)  # TensorFlow's C++ logs stay out of the figures.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfgrec import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfgrec.models import graph_tower  # pylint: disable=g-import-not-at-top
  from tfgrec.train import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  from tfgrec.train import trainer  # pylint: disable=g-import-not-at-top
  _entry.configure_graph_optimizer()  # As `tfgrec train` runs.

  base = config_lib.load_config(args.config)
  inputs = inputs_lib.load_inputs(base, progress=False)

  def timed(fn):
    return timing.median_seconds(fn, args.repeats)

  print(f"graph {base.graph_dir}: {len(inputs.pairs['user']):,} training pairs, batch "
        f"{base.train.batch_size}")
  print(f"{'variant':50s} {'tower fwd':>10s} {'loss + grad':>12s}")
  for variant in args.variant or ["default"]:
    config = config_lib.config_from_dict(overrides_of(variant), base=base)
    tf.keras.utils.set_random_seed(config.train.seed)
    # The graph's edge features follow the variant's tower (e.g. model.attention_recent).
    inputs = dataclasses.replace(inputs, graph=graph_tower.prepare_graph(inputs.raw_graph,
                                                                         config.tower))
    model = inputs_lib.build_model(config, inputs)
    dataset = trainer.dataset_of(config, inputs)
    trainer.build(model, dataset)
    batch = next(iter(dataset))
    tower = tf.function(lambda model=model: model.node_embeddings(training=True))

    @tf.function
    def gradient(batch, model=model):
      with tf.GradientTape() as tape:
        loss = model.compute_loss(batch, training=True)
      return tape.gradient(loss, model.trainable_variables)

    print(f"{variant:50s} {timed(tower):8.3f} s {timed(lambda: gradient(batch)):10.3f} s",
          flush=True)


if __name__ == "__main__":
  main()
