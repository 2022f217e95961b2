"""Item text embeddings computed once, in batches with a progress bar, and cached on disk.

With a frozen encoder (the CPU default) an item's text embedding never changes during training,
so it is computed once per (checkpoint, max_length, text) and reused by every run: the cache file
``<cache_dir>/text-<fingerprint>-L<max_length>.npz`` holds the SHA-1 of each text and its
embedding, and only texts not yet in it are encoded.
"""
import hashlib
import logging
import os
from typing import List, Optional, Sequence

import numpy as np

from tfgrec import storage

logger = logging.getLogger(__name__)


def _key(text: str) -> bytes:
  return hashlib.sha1(text.encode("utf-8")).digest()


def cache_path(cache_dir: str, fingerprint: str, max_length: int) -> str:
  return os.path.join(cache_dir, f"text-{fingerprint}-L{max_length}.npz")


def embed_texts(encoder, texts: Sequence[str], *, batch_size: int = 256,
                cache_dir: Optional[str] = None, fingerprint: Optional[str] = None,
                progress: bool = True) -> np.ndarray:
  """Embeds `texts` with `encoder` (a TextEncoder), reusing and extending the cache.

  Args:
    encoder: callable strings [B] -> [B, D] (a tfgrec.text.TextEncoder).
    texts: [N] strings. The empty string embeds to zeros (an item without text).
    batch_size: texts per encoder call; texts are sorted by length so batches pad little.
    cache_dir: where the cache lives; None: no cache.
    fingerprint: checkpoint fingerprint (required with cache_dir).
    progress: show a tqdm progress bar.

  Returns:
    [N, D] float32 embeddings, rows in the order of `texts`.
  """
  texts = list(texts)
  dim = int(encoder.dim)
  keys = [_key(t) for t in texts]
  known = {}
  path = None
  if cache_dir:
    if not fingerprint:
      raise ValueError("embed_texts: cache_dir needs the checkpoint fingerprint")
    path = cache_path(cache_dir, fingerprint, encoder.tokenize.max_length)
    if storage.exists(path):
      data = storage.load_npz(path)
      stored = data["keys"]
      # Keys are [N, 20] uint8 (a NumPy bytes array would drop a digest's trailing zeros).
      if data["embeddings"].shape[1] == dim and stored.dtype == np.uint8:
        known = {bytes(k): i for i, k in enumerate(stored)}
        cached = data["embeddings"]
  todo: List[int] = sorted({i for i, (t, k) in enumerate(zip(texts, keys))
                            if t and k not in known},
                           key=lambda i: (len(texts[i]), i))
  # Distinct texts only.
  seen, unique = set(), []
  for i in todo:
    if keys[i] not in seen:
      seen.add(keys[i])
      unique.append(i)
  new = np.zeros([len(unique), dim], np.float32)
  if unique:
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    bar = tqdm(total=len(unique), desc="text embeddings", unit="text", disable=not progress)
    for start in range(0, len(unique), batch_size):
      batch = [texts[i] for i in unique[start:start + batch_size]]
      new[start:start + len(batch)] = np.asarray(encoder(np.array(batch, dtype=object)))
      bar.update(len(batch))
    bar.close()
  out = np.zeros([len(texts), dim], np.float32)
  new_index = {keys[i]: j for j, i in enumerate(unique)}
  for row, (text, key) in enumerate(zip(texts, keys)):
    if not text:
      continue
    if key in new_index:
      out[row] = new[new_index[key]]
    else:
      out[row] = cached[known[key]]
  if path and unique:
    all_keys = list(known) + [keys[i] for i in unique]
    all_emb = np.concatenate([cached, new]) if known else new
    storage.save_npz(path, keys=np.frombuffer(b"".join(all_keys), np.uint8).reshape(-1, 20),
                     embeddings=all_emb)
    logger.info("text embedding cache %s: %d texts (%d new)", path, len(all_keys), len(unique))
  return out
