"""The text tower: raw strings -> BERT -> mean pooling -> L2-normalized embedding.

Tokenization runs inside the TensorFlow graph (tensorflow-text's FastBertTokenizer, which
reproduces the Hugging Face BERT tokenization of the checkpoint's vocab), so an exported model
takes raw strings, and stock TensorFlow Serving (which links these ops) serves it.

  encoder = TextEncoder.from_checkpoint(checkpoint.resolve("embedded"))
  vectors = encoder(tf.constant(["Heat (1995) | Action, Crime"]))   # [1, 384], unit norm
"""
from typing import Dict, List, Optional

import tensorflow as tf
import tensorflow_text as tf_text

from tfgrec.text import checkpoint as ckpt_lib


@tf.keras.utils.register_keras_serializable(package="tfgrec")
class BertTokenize(tf.keras.layers.Layer):
  """Strings [B] -> {'input_ids': [B, L], 'attention_mask': [B, L]} (int32).

  Adds [CLS] and [SEP], truncates to `max_length` tokens, pads with [PAD] to the longest
  sequence of the batch (so short titles cost short sequences).
  """

  def __init__(self, *, vocab: List[str], max_length: int = 64, lower_case: bool = True,
               **kwargs):
    super().__init__(**kwargs)
    if max_length < 3:
      raise ValueError(f"max_length must be >= 3 ([CLS] + a token + [SEP]), got {max_length}")
    for token in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
      if token not in vocab:
        raise ValueError(f"vocab lacks the special token {token}")
    self._vocab = list(vocab)
    self.max_length = max_length
    self.lower_case = lower_case
    self._cls = vocab.index("[CLS]")
    self._sep = vocab.index("[SEP]")
    self._pad = vocab.index("[PAD]")
    self._tokenizer = tf_text.FastBertTokenizer(
        vocab=self._vocab, token_out_type=tf.int64, lower_case_nfd_strip_accents=lower_case)

  def call(self, strings: tf.Tensor) -> Dict[str, tf.Tensor]:
    strings = tf.reshape(tf.convert_to_tensor(strings, tf.string), [-1])
    tokens = self._tokenizer.tokenize(strings)
    if isinstance(tokens, tf.RaggedTensor) and tokens.ragged_rank > 1:
      tokens = tokens.merge_dims(-2, -1)
    tokens = tokens[:, :self.max_length - 2]
    batch = tf.shape(strings, out_type=tf.int64)[0]
    cls = tf.fill([batch, 1], tf.constant(self._cls, tf.int64))
    sep = tf.fill([batch, 1], tf.constant(self._sep, tf.int64))
    ids = tf.concat([cls, tokens, sep], axis=1)
    mask = tf.ones_like(ids)
    return {
        "input_ids": tf.cast(ids.to_tensor(default_value=self._pad), tf.int32),
        "attention_mask": tf.cast(mask.to_tensor(default_value=0), tf.int32),
    }

  def get_config(self):
    return {**super().get_config(), "vocab": self._vocab, "max_length": self.max_length,
            "lower_case": self.lower_case}


def mean_pool(hidden: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """Mean of `hidden` [B, L, D] over positions where `mask` [B, L] is 1 -> [B, D]."""
  mask = tf.cast(mask, hidden.dtype)[:, :, None]
  total = tf.reduce_sum(hidden * mask, axis=1)
  count = tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
  return total / count


class TextEncoder(tf.keras.layers.Layer):
  """Strings [B] -> L2-normalized sentence embeddings [B, D] from a BERT checkpoint.

  Args:
    bert: a ``transformers.TFBertModel``.
    vocab: the checkpoint's WordPiece vocabulary.
    max_length: tokens per text, [CLS] and [SEP] included.
    trainable_layers: how many of the top encoder layers train (0: frozen, the CPU default;
      -1: all of BERT, embeddings included).
  """

  def __init__(self, *, bert, vocab: List[str], max_length: int = 64,
               trainable_layers: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.bert = bert
    self.tokenize = BertTokenize(vocab=vocab, max_length=max_length)
    self.dim = int(bert.config.hidden_size)
    self.set_trainable_layers(trainable_layers)

  @classmethod
  def from_checkpoint(cls, checkpoint: Optional[ckpt_lib.Checkpoint] = None, **kwargs):
    checkpoint = checkpoint or ckpt_lib.resolve()
    bert = ckpt_lib.load_bert(checkpoint)
    return cls(bert=bert, vocab=checkpoint.vocab(), **kwargs)

  def set_trainable_layers(self, n: int) -> None:
    """Freezes BERT except its top `n` encoder layers (-1: everything trains)."""
    main = self.bert.bert
    layers = main.encoder.layer
    if n < -1 or n > len(layers):
      raise ValueError(f"trainable_layers must be in [-1, {len(layers)}], got {n}")
    self.trainable_layers = n
    self.bert.trainable = n != 0
    if n in (0, -1):
      return
    main.embeddings.trainable = False
    for i, layer in enumerate(layers):
      layer.trainable = i >= len(layers) - n
    if getattr(main, "pooler", None) is not None:
      main.pooler.trainable = False

  def call(self, strings: tf.Tensor, training: bool = False) -> tf.Tensor:
    inputs = self.tokenize(strings)
    hidden = self.bert(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                       training=training and self.trainable_layers != 0).last_hidden_state
    return tf.math.l2_normalize(mean_pool(hidden, inputs["attention_mask"]), axis=-1)
