"""A tiny, randomly initialized BERT checkpoint for tests (no 90 MB download, seconds to run).

It is a real Hugging Face checkpoint directory (config.json, vocab.txt, model.safetensors with
PyTorch tensor names), so tests exercise the same loading path as the embedded MiniLM.
"""
import json
import os
import string
from typing import Iterable

import numpy as np

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_vocab(words: Iterable[str] = ()) -> list:
  chars = list(string.ascii_lowercase + string.digits + string.punctuation)
  vocab = _SPECIAL + chars + [f"##{c}" for c in string.ascii_lowercase + string.digits]
  for w in words:
    w = w.lower()
    if w not in vocab:
      vocab.append(w)
  return vocab


def write_tiny_checkpoint(path: str, *, words: Iterable[str] = (), hidden: int = 32,
                          layers: int = 2, heads: int = 2, intermediate: int = 64,
                          max_positions: int = 64, seed: int = 0) -> str:
  """Writes a tiny BERT checkpoint to `path`; returns `path`."""
  import safetensors.numpy  # pylint: disable=g-import-not-at-top
  vocab = tiny_vocab(words)
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
    f.write("".join(f"{t}\n" for t in vocab))
  config = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": len(vocab),
            "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": intermediate, "max_position_embeddings": max_positions,
            "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02, "pad_token_id": 0}
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
  rng = np.random.default_rng(seed)

  def normal(*shape):
    return (rng.normal(0, 0.02, shape)).astype(np.float32)

  state = {
      "embeddings.word_embeddings.weight": normal(len(vocab), hidden),
      "embeddings.position_embeddings.weight": normal(max_positions, hidden),
      "embeddings.token_type_embeddings.weight": normal(2, hidden),
      "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
      "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32),
      "pooler.dense.weight": normal(hidden, hidden),
      "pooler.dense.bias": np.zeros(hidden, np.float32),
  }
  for i in range(layers):
    p = f"encoder.layer.{i}."
    for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense"):
      state[p + name + ".weight"] = normal(hidden, hidden)  # PyTorch Linear: [out, in].
      state[p + name + ".bias"] = np.zeros(hidden, np.float32)
    state[p + "intermediate.dense.weight"] = normal(intermediate, hidden)
    state[p + "intermediate.dense.bias"] = np.zeros(intermediate, np.float32)
    state[p + "output.dense.weight"] = normal(hidden, intermediate)
    state[p + "output.dense.bias"] = np.zeros(hidden, np.float32)
    for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
      state[p + ln + ".weight"] = np.ones(hidden, np.float32)
      state[p + ln + ".bias"] = np.zeros(hidden, np.float32)
  safetensors.numpy.save_file(state, os.path.join(path, "model.safetensors"))
  return path
