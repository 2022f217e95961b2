"""Evaluation: full-ranking metrics over the catalog and classic baselines."""
from tfgrec.eval.metrics import evaluate
from tfgrec.eval.metrics import Interactions
from tfgrec.eval.baselines import ease_scorer
from tfgrec.eval.baselines import EvalData
from tfgrec.eval.baselines import load_eval_data
from tfgrec.eval.baselines import popularity_scorer
