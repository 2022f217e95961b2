"""The tower's per-edge-set layers alone on a synthetic bipartite edge set: TF-GNN's
MultiHeadAttentionConv, tfgrec's GraphAttentionConv (the same function) and tfgrec's GCNConv.

  python benchmarks/bench_graph_attention.py --users 610 --items 9000 --edges 80000

Prints milliseconds per call, forward and forward + gradient, for each receiver side (items
attend over their users, users over their items), median of --repeats calls in a tf.function.
The sizes default to the MovieLens training graph's interaction edge set.

Current figures: BENCHMARKS.md, *Graph layers*.
"""
import tfgrec  # noqa: F401  # Keras 2 before TensorFlow loads.

import argparse

import numpy as np

import timing  # benchmarks/timing.py, beside this script


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--users", type=int, default=610)
  parser.add_argument("--items", type=int, default=9000)
  parser.add_argument("--edges", type=int, default=80_000)
  parser.add_argument("--dim", type=int, default=64)
  parser.add_argument("--heads", type=int, default=4)
  parser.add_argument("--repeats", type=int, default=10)
  args = parser.parse_args()
  from tfgrec import _entry  # pylint: disable=g-import-not-at-top
  _entry.quiet_start(verbose=False)  # TensorFlow's C++ logs stay out of the figures.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_gnn as tfgnn  # pylint: disable=g-import-not-at-top
  from tensorflow_gnn.models import multi_head_attention  # pylint: disable=g-import-not-at-top
  from tfgrec import layers  # pylint: disable=g-import-not-at-top
  _entry.configure_graph_optimizer()  # As `tfgrec train` runs.
  tf.get_logger().setLevel("ERROR")  # One tf.function per layer: retracing is intended here.

  rng = np.random.default_rng(0)
  users = rng.integers(0, args.users, args.edges).astype(np.int32)
  items = (rng.zipf(1.3, args.edges) % args.items).astype(np.int32)  # Popular items, long tail.
  graph = tfgnn.GraphTensor.from_pieces(
      node_sets={
          "user": tfgnn.NodeSet.from_fields(sizes=[args.users], features={
              "hidden_state": tf.random.normal([args.users, args.dim])}),
          "item": tfgnn.NodeSet.from_fields(sizes=[args.items], features={
              "hidden_state": tf.random.normal([args.items, args.dim])})},
      edge_sets={"interacted": tfgnn.EdgeSet.from_fields(
          sizes=[args.edges], features={"recency": tf.random.uniform([args.edges, 3])},
          adjacency=tfgnn.Adjacency.from_indices(("user", users), ("item", items)))})
  graph = layers.add_gcn_normalization(graph)

  def timed(fn):
    return 1000 * timing.median_seconds(fn, args.repeats)

  per_head = args.dim // args.heads
  print(f"edges {args.edges:,}  users {args.users:,}  items {args.items:,}  dim {args.dim}  "
        f"heads {args.heads}")
  print(f"{'layer':34s} {'receiver':>8s} {'forward':>10s} {'fwd + grad':>11s}")
  for tag, receiver in ((tfgnn.TARGET, "items"), (tfgnn.SOURCE, "users")):
    candidates = {
        "tfgnn MultiHeadAttentionConv": multi_head_attention.MultiHeadAttentionConv(
            num_heads=args.heads, per_head_channels=per_head, receiver_tag=tag,
            activation=None, sender_edge_feature="recency"),
        "tfgrec GraphAttentionConv": layers.GraphAttentionConv(
            num_heads=args.heads, per_head_channels=per_head, receiver_tag=tag,
            sender_edge_feature="recency"),
        "tfgrec GCNConv": layers.GCNConv(args.dim, receiver_tag=tag, skip=False),
    }
    for name, layer in candidates.items():
      forward = tf.function(lambda layer=layer: layer(graph, edge_set_name="interacted"))

      @tf.function
      def gradient(layer=layer):
        with tf.GradientTape() as tape:
          out = layer(graph, edge_set_name="interacted")
          loss = tf.reduce_sum(out * out)
        return tape.gradient(loss, layer.trainable_variables)

      print(f"{name:34s} {receiver:>8s} {timed(forward):8.1f} ms {timed(gradient):8.1f} ms",
            flush=True)


if __name__ == "__main__":
  main()
