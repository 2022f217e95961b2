"""The cold-item and new-user encoders as artifacts: saved by the final fit, packaged by export.

  save_item_encoder(NewItemEncoder(...), "<run_dir>/final/item_encoder")   # the final fit
  encoder = SavedItemEncoder("<run_dir>/final/item_encoder")               # the export
  embedding, text = encoder.encode(title, categories, attributes)          # as NewItemEncoder

An encoder holds the graph tower's layers that embed a new item (or user) and the side node
states of the served graph; the text tower inside it tokenizes in the graph (tensorflow-text
ops, registered by tfgrec.saved_models.load). Saving it with the run means the export needs
neither the tower nor the graph: it loads the encoder and embeds it in the serving module,
whose SavedModel then holds the same variables.
"""
from typing import Optional, Tuple

from tfgrec import saved_models
from tfgrec import storage

tf = storage.tf

_INFO = "encoder.json"
_STRINGS = tf.TensorSpec([None], tf.string)
_STRING_ROWS = tf.TensorSpec([None, None], tf.string)


class _ItemEncoderSignature(tf.Module):
  """A NewItemEncoder with one traced `encode` (the artifact's signature)."""

  def __init__(self, encoder):
    super().__init__(name="item_encoder_artifact")
    self.encoder = encoder

  @tf.function(input_signature=[_STRINGS, _STRING_ROWS, _STRING_ROWS])
  def encode(self, title, categories, attributes):
    embedding, text = self.encoder.encode(title, categories, attributes)
    out = {"embedding": embedding}
    if text is not None:
      out["text"] = text
    return out


class _UserEncoderSignature(tf.Module):
  """A NewUserEncoder with one traced `encode` (the artifact's signature)."""

  def __init__(self, encoder):
    super().__init__(name="user_encoder_artifact")
    self.encoder = encoder

  @tf.function(input_signature=[_STRING_ROWS])
  def encode(self, attributes):
    embedding, has = self.encoder(attributes)
    return {"embedding": embedding, "has_attributes": has}


def save_item_encoder(encoder, path: str) -> None:
  """Saves a tfgrec.export.NewItemEncoder (`dim`, `text_dim`, `encode`) at `path`."""
  module = _ItemEncoderSignature(encoder)
  saved_models.save(module, path, {"encode": module.encode.get_concrete_function()})
  storage.write_json(storage.join(path, _INFO), {"kind": "item", "dim": int(encoder.dim),
                                                 "text_dim": int(encoder.text_dim)})


def save_user_encoder(encoder, path: str) -> None:
  """Saves a tfgrec.export.NewUserEncoder (`dim`, `__call__`) at `path`."""
  module = _UserEncoderSignature(encoder)
  saved_models.save(module, path, {"encode": module.encode.get_concrete_function()})
  storage.write_json(storage.join(path, _INFO), {"kind": "user", "dim": int(encoder.dim)})


def _load(path: str, kind: str):
  info_path = storage.join(path, _INFO)
  if not storage.exists(info_path):
    raise FileNotFoundError(f"{path} holds no saved encoder ({_INFO} is missing)")
  info = storage.read_json(info_path)
  if info.get("kind") != kind:
    raise ValueError(f"{path} holds a {info.get('kind')!r} encoder, not a {kind!r} one")
  return info, saved_models.load(path)


class SavedItemEncoder(tf.Module):
  """The item encoder `save_item_encoder` wrote, with NewItemEncoder's interface.

  Attributes:
    dim: D, the width of the item embeddings.
    text_dim: T, the width of the text embeddings `encode` returns (0: none).
  """

  def __init__(self, path: str):
    super().__init__(name="new_item_encoder")
    info, self.restored = _load(path, "item")
    self.dim = int(info["dim"])
    self.text_dim = int(info["text_dim"])

  def encode(self, title, categories, attributes=None
             ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """title [B], categories [B, C], attributes [B, A] ('' padding) -> (embedding [B, D] unit
    norm, text [B, T] or None)."""
    title = tf.reshape(tf.convert_to_tensor(title, tf.string), [-1])
    categories = tf.convert_to_tensor(categories, tf.string)
    if attributes is None:
      attributes = tf.fill(tf.stack([tf.shape(title)[0], 0]), "")
    out = self.restored.encode(title, categories, tf.convert_to_tensor(attributes, tf.string))
    return out["embedding"], out.get("text")

  def __call__(self, title, categories, attributes=None) -> tf.Tensor:
    return self.encode(title, categories, attributes)[0]


class SavedUserEncoder(tf.Module):
  """The user encoder `save_user_encoder` wrote, with NewUserEncoder's interface.

  Attributes:
    dim: D, the width of the embeddings.
  """

  def __init__(self, path: str):
    super().__init__(name="new_user_encoder")
    info, self.restored = _load(path, "user")
    self.dim = int(info["dim"])

  def __call__(self, attributes) -> Tuple[tf.Tensor, tf.Tensor]:
    """attributes [B, A] -> (embedding [B, D] unit norm or zeros, has_attributes [B] bool)."""
    out = self.restored.encode(tf.convert_to_tensor(attributes, tf.string))
    return out["embedding"], out["has_attributes"]
