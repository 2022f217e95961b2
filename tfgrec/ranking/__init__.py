"""Stage 2: candidate features and the learned ranker over the stage-1 sources' candidates.

`features.CandidateFeatures` turns a request (history, history times, now) into the union of
the sources' candidates and each candidate's features, in TensorFlow (the same function serves
training lists and the SavedModel); `ranker.Ranker` is a DCN-v2 model trained with a listwise
softmax loss under `tfrs.tasks.Ranking`; `pipeline` holds the offline protocol (training lists,
the ranker's fit, scoring). See README.md.
"""
# Candidates and features of a request.
from tfgrec.ranking.features import CandidateFeatures
from tfgrec.ranking.features import FeatureConfig
# Offline protocol: lists, training, scoring.
from tfgrec.ranking.pipeline import build_lists
from tfgrec.ranking.pipeline import fit_sources
from tfgrec.ranking.pipeline import Lists
from tfgrec.ranking.pipeline import RankerConfig
from tfgrec.ranking.pipeline import train_ranker
# The DCN-v2 ranker and its listwise loss.
from tfgrec.ranking.ranker import ListwiseSoftmax
from tfgrec.ranking.ranker import Ranker
from tfgrec.ranking.ranker import RankerEnsemble
