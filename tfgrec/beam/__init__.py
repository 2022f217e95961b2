"""Apache Beam transforms and the graph-building job (driver: tfgrec.jobs.build_graph)."""
# The job: configuration, pipeline construction, running it.
from tfgrec.beam.build_graph import BuildGraphConfig
from tfgrec.beam.build_graph import build_pipeline
from tfgrec.beam.build_graph import run as run_build_graph
# Its transforms, reusable in other pipelines.
from tfgrec.beam.transforms import DedupeById
from tfgrec.beam.transforms import ReadRawTable
from tfgrec.beam.transforms import SplitInteractions
from tfgrec.beam.transforms import WriteDeadLetters
from tfgrec.beam.transforms import WriteSplitShards
