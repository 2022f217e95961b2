"""The text tower on a tiny random BERT checkpoint (the real MiniLM only in slow tests)."""
import hashlib
import os

import numpy as np
import pytest

from tfgrec import text
from tfgrec.text import checkpoint as ckpt_lib
from tfgrec.text import encoder as encoder_lib

tf = encoder_lib.tf


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
  return text.write_tiny_checkpoint(str(tmp_path_factory.mktemp("tiny_bert")),
                                    words=["heat", "crime", "space"])


@pytest.fixture(scope="module")
def tiny_encoder(tiny_dir):
  return text.TextEncoder.from_checkpoint(text.resolve_checkpoint(tiny_dir), max_length=16)


def test_tiny_checkpoint_loads_through_safetensors(tiny_dir):
  import safetensors.numpy
  ckpt = text.resolve_checkpoint(tiny_dir)
  bert = text.load_bert(ckpt)
  want = safetensors.numpy.load_file(os.path.join(tiny_dir, "model.safetensors"))
  got = {w.name: w.numpy() for w in bert.weights}
  word = next(v for k, v in got.items() if "word_embeddings" in k)
  np.testing.assert_allclose(word, want["embeddings.word_embeddings.weight"])
  query = next(v for k, v in got.items() if "layer_._0/attention/self/query/kernel" in k)
  np.testing.assert_allclose(query, want["encoder.layer.0.attention.self.query.weight"].T)


def test_encoder_gives_unit_vectors_and_pads_per_batch(tiny_encoder):
  out = tiny_encoder(tf.constant(["Heat | Crime", "space", ""]))
  assert out.shape == (3, 32)
  np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=1), 1.0, rtol=1e-5)
  ids = tiny_encoder.tokenize(tf.constant(["heat", "a b c d e f g h i j k l m n o p q r"]))
  assert ids["input_ids"].shape == (2, 16)  # Truncated to max_length.
  assert ids["attention_mask"].numpy()[0].tolist() == [1, 1, 1] + [0] * 13
  # Same text, same vector, whatever the batch it is in (padding is masked out).
  alone = tiny_encoder(tf.constant(["Heat | Crime"]))
  np.testing.assert_allclose(alone.numpy()[0], out.numpy()[0], atol=1e-5)


def test_tokenizer_matches_hugging_face_on_the_embedded_vocab():
  transformers = pytest.importorskip("transformers")
  path = ckpt_lib.embedded_dir()
  with open(os.path.join(path, "vocab.txt"), encoding="utf-8") as f:
    vocab = [line.rstrip("\n") for line in f]
  layer = encoder_lib.BertTokenize(vocab=vocab, max_length=64)
  hf = transformers.BertTokenizerFast(vocab_file=os.path.join(path, "vocab.txt"),
                                      do_lower_case=True)
  titles = ["Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001) | Comedy, Romance",
            "Seven (a.k.a. Se7en) (1995) | Mystery, Thriller", "Léon: The Professional", ""]
  ids = layer(tf.constant(titles))
  for row, title in enumerate(titles):
    want = hf(title)["input_ids"]
    got = ids["input_ids"].numpy()[row][: ids["attention_mask"].numpy()[row].sum()].tolist()
    assert got == want, title


def test_trainable_layers(tiny_encoder):
  tiny_encoder.set_trainable_layers(1)
  names = [w.name for w in tiny_encoder.trainable_weights]
  assert names and all("layer_._1/" in n for n in names)
  tiny_encoder.set_trainable_layers(0)
  assert not tiny_encoder.trainable_weights
  with pytest.raises(ValueError, match="trainable_layers must be in"):
    tiny_encoder.set_trainable_layers(5)


def test_cache_encodes_each_text_once(tiny_encoder, tmp_path):
  calls = []

  class Counting:
    dim = tiny_encoder.dim
    tokenize = tiny_encoder.tokenize

    def __call__(self, batch):
      calls.append(len(batch))
      return tiny_encoder(tf.constant(batch.tolist()))

  fp = "abc"
  texts = ["heat", "space", "heat", ""]
  a = text.embed_texts(Counting(), texts, cache_dir=str(tmp_path), fingerprint=fp, progress=False)
  assert sum(calls) == 2  # Two distinct non-empty texts.
  assert not a[3].any() and np.allclose(a[0], a[2])
  b = text.embed_texts(Counting(), texts + ["crime"], cache_dir=str(tmp_path), fingerprint=fp,
                       progress=False)
  assert sum(calls) == 3  # Only "crime" was new.
  np.testing.assert_allclose(b[:4], a)
  # A text whose SHA-1 ends in a zero byte is found again too (it was once stored truncated).
  zero_end = next(t for t in (f"title {i}" for i in range(10_000))
                  if hashlib.sha1(t.encode()).digest()[-1] == 0)
  text.embed_texts(Counting(), [zero_end], cache_dir=str(tmp_path), fingerprint=fp,
                   progress=False)
  text.embed_texts(Counting(), [zero_end, "heat"], cache_dir=str(tmp_path), fingerprint=fp,
                   progress=False)
  assert sum(calls) == 4


def test_checkpoint_errors_name_the_problem(tmp_path, tiny_dir):
  (tmp_path / "config.json").write_text("{}")
  (tmp_path / "vocab.txt").write_text("[PAD]\n")
  with pytest.raises(text.CheckpointError, match="has no weights"):
    text.resolve_checkpoint(str(tmp_path))
  with pytest.raises(text.CheckpointError, match="does not exist"):
    text.resolve_checkpoint(str(tmp_path / "nope" / "x" / "y"))
  a, b = text.resolve_checkpoint(tiny_dir), text.resolve_checkpoint(tiny_dir)
  assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 16


@pytest.mark.slow
def test_embedded_minilm_puts_related_titles_closer():
  enc = text.TextEncoder.from_checkpoint(text.resolve_checkpoint("embedded"))
  v = enc(tf.constant(["Star Wars | Sci-Fi, Space", "Alien planet rocket | Space adventure",
                       "Wedding kiss | Romance"])).numpy()
  assert v.shape == (3, 384)
  assert v[0] @ v[1] > v[0] @ v[2]
