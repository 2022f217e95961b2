"""tfgrec: a recommender on the TensorFlow stack.

Interaction logs and an item catalog become a heterogeneous TF-GNN graph (Apache Beam), a graph
model with a BERT text tower learns user and item representations (TensorFlow Recommenders
tasks), and the result is served from TensorFlow Serving over gRPC.

Importing tfgrec sets ``TF_USE_LEGACY_KERAS=1`` so that TensorFlow loads Keras 2 (tf-keras),
which TF-GNN and TFRS need; it must therefore be imported before TensorFlow.
"""
from tfgrec._keras_guard import ensure_legacy_keras as _ensure_legacy_keras

_ensure_legacy_keras()

__version__ = "0.1.0"
