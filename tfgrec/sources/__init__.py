"""Stage-1 candidate sources: each proposes items from a user's history up to a reference time.

Every source is a `tf.Module` with one interface (`base.CandidateSource`): `fit` on training
events, then `scores` / `top_n` in TensorFlow (stock ops, savable for TF Serving) or
`score_numpy` for offline evaluation. See README.md for the formulas and the papers.
"""
# The interface, the events it is fit on, and the history helpers every source shares.
from tfgrec.sources.base import CandidateSource
from tfgrec.sources.base import Events
from tfgrec.sources.base import history_ranks
from tfgrec.sources.base import load_source
from tfgrec.sources.base import NO_TIME
from tfgrec.sources.base import save_source
from tfgrec.sources.base import user_scorer
from tfgrec.sources.base import UserHistories
# Items near the recent history in an embedding space: text neighbours, graph-tower retrieval.
from tfgrec.sources.embedding import EmbeddingNeighbours
# Closed-form item-item models on a recency-weighted history: GF-CF and EASE.
from tfgrec.sources.graph_filter import Ease
from tfgrec.sources.graph_filter import GraphFilter
# Time context: trending in windows ending at the reference time, and fresh items; the
# time-windowed item counts they (and the ranker's popularity features) read.
from tfgrec.sources.time_context import EventIndex
from tfgrec.sources.time_context import Fresh
from tfgrec.sources.time_context import Trending
# Time-aware causal self-attention over the user's latest events (SASRec with time buckets).
from tfgrec.sources.sequence import SequenceSource
