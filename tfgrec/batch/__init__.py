"""Batch recommendations from an exported model: `tfgrec recommend` (one process) and the Beam
job tfgrec.jobs.batch_recommend (RunInference), which share the per-batch logic here."""
from tfgrec.batch.recommend import BatchError
from tfgrec.batch.recommend import BatchRecommender
from tfgrec.batch.recommend import read_users
from tfgrec.batch.recommend import recommend_file
