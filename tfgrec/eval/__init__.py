"""Evaluation: full-ranking metrics over the catalog, slices, classic baselines and reports."""
# Full-ranking metrics (Recall, NDCG, HR, MRR, coverage, novelty at K) on per-user item sets.
from tfgrec.eval.metrics import evaluate
from tfgrec.eval.metrics import Interactions
# A graph directory's splits in index space (their home: tfgrec.data.splits).
from tfgrec.data.splits import EvalData
from tfgrec.data.splits import load_eval_data
# The baselines scored by the same harness.
from tfgrec.eval.baselines import als_scorer
from tfgrec.eval.baselines import ease_scorer
from tfgrec.eval.baselines import popularity_scorer
from tfgrec.eval.baselines import text_only_scorer
# Slices: cold items, long-tail items, short-history users, and all of them evaluated at once.
from tfgrec.eval.slices import cold_items
from tfgrec.eval.slices import evaluate_slices
from tfgrec.eval.slices import long_tail_items
from tfgrec.eval.slices import short_history_users
# Reports: report.md with tables and figures, and the plain-text headline table.
from tfgrec.eval.report import headline_table
from tfgrec.eval.report import write_report
