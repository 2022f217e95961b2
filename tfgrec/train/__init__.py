"""Training runs: inputs from a graph directory, model.fit with validation, checkpoints, resume."""
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
# Callbacks.
from tfgrec.train.callbacks import HistoryCallback
from tfgrec.train.callbacks import ValidationCallback
