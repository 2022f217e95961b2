"""Losses beyond tfrs's: graph <-> text alignment."""
from tfgrec.tasks.alignment import AlignmentTask
from tfgrec.tasks.alignment import info_nce
