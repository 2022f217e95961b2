"""Stage 2: candidate features and the learned ranker over the stage-1 sources' candidates.

`features.CandidateFeatures` turns a request (history, history times, now) into the union of
the sources' candidates and each candidate's features, in TensorFlow (the same function serves
training lists and the SavedModel); `ranker.Ranker` is a DCN-v2 model trained with a listwise
softmax loss under `tfrs.tasks.Ranking`. Offline, `lists` builds and scores candidate lists,
`fitting` fits the sources and the rankers, `new_items` prices the boost of items the sources
were fit without. A library: no run directory or run config here (tfgrec.train binds it to a
run). See README.md.

Protocol (the time discipline; model README "Two stages"):

1. Ranker training lists. The sources are fit on the events before the label slice (a graph
   directory's training split); each user with label events becomes one list: history = the
   user's training events, ``now`` = the time of the user's first label event, candidates and
   features from `features.CandidateFeatures` (popularity from events at or before ``now``),
   labels = 1 for candidates among the user's label items.
   A share of those users (``ranking.new_user_lists``) give a second list as new users: the
   same ``now`` and labels, no history, and the graph tower's state from their attributes as
   the query of its source (what the served model computes for a user it does not know).
2. The ranker is fit on those lists, a share of the users held out to pick the epoch (NDCG@K
   over the list, relevant items outside the candidates counting as misses).
3. New items: the boost added to the logits of items the sources were fit without
   (`new_items.fit_new_item_boost`) is chosen on each ranker's held-out lists, the items without a
   training event being the new ones there.
4. To predict later events (the test split, or serving), the sources are refit on every event
   known by then and the ranker is kept; the new items are then those without any of these
   events. They are fewer than in the held-out lists, so the boost is fit again on the held-out
   lists with their new candidates thinned to the share the later lists have
   (`new_items.new_item_keep_share`; the lists' candidates only, no label is read).
"""
# Candidates and features of a request.
from tfgrec.ranking.features import CandidateFeatures
from tfgrec.ranking.features import FeatureConfig
# Offline: candidate lists, fitting the sources and the rankers, new items.
from tfgrec.ranking.fitting import fit_sources
from tfgrec.ranking.fitting import train_ranker
from tfgrec.ranking.lists import build_lists
from tfgrec.ranking.lists import Lists
from tfgrec.ranking.new_items import fit_new_item_boost
# The DCN-v2 ranker, its settings and its listwise loss.
from tfgrec.ranking.ranker import ListwiseSoftmax
from tfgrec.ranking.ranker import Ranker
from tfgrec.ranking.ranker import RankerConfig
from tfgrec.ranking.ranker import RankerEnsemble
