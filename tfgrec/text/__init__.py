"""The text tower: BERT checkpoints (embedded, local, hub), in-graph tokenization, embeddings."""
# Checkpoints: 'embedded' all-MiniLM-L6-v2, a local Hugging Face directory, or a hub name.
from tfgrec.text.checkpoint import Checkpoint
from tfgrec.text.checkpoint import CheckpointError
from tfgrec.text.checkpoint import load_bert
from tfgrec.text.checkpoint import resolve as resolve_checkpoint
# Strings -> token ids inside the graph; strings -> L2-normalized mean-pooled embeddings.
from tfgrec.text.encoder import BertTokenize
from tfgrec.text.encoder import TextEncoder
# Batched, cached embedding of many texts (frozen encoder).
from tfgrec.text.cache import embed_texts
# A tiny random checkpoint for tests.
from tfgrec.text.tiny import write_tiny_checkpoint
