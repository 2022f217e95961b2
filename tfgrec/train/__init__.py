"""Runs, the orchestration layer: inputs from a graph directory, model.fit with validation,
checkpoints and resume, the two stages, the final fit that makes every artifact, evaluation, and
the export that packages a run. It owns the run directory's layout and manifest; the library
packages below it (data, graph, layers, models, sources, ranking, export) know nothing of runs."""
# Inputs and the model of a run.
from tfgrec.train.inputs import build_model
from tfgrec.train.inputs import known_graph
from tfgrec.train.inputs import known_history
from tfgrec.train.inputs import load_inputs
from tfgrec.train.inputs import read_graph
from tfgrec.train.inputs import RunInputs
# The run.
from tfgrec.train.trainer import choose_strategy
from tfgrec.train.trainer import load_trained
from tfgrec.train.trainer import train
from tfgrec.train.trainer import TrainResult
# The final fit (every artifact the served model holds), its manifest, and the export.
from tfgrec.train.exporter import build_module
from tfgrec.train.exporter import export_run
from tfgrec.train.layout import RunLayout
from tfgrec.train.manifest import Manifest
from tfgrec.train.manifest import ManifestError
# Callbacks.
from tfgrec.train.callbacks import HistoryCallback
from tfgrec.train.callbacks import ValidationCallback
