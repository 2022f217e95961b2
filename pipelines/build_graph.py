"""Beam job: raw logs -> TF-GNN graph directory. Run from the repository root:

  python pipelines/build_graph.py --raw data/ --out graph/                        # DirectRunner
  python pipelines/build_graph.py --raw gs://b/raw --out gs://b/graph --runner=DataflowRunner \\
      --project=P --region=R --temp_location=gs://b/tmp --setup_file=./setup.py

A script over the installed library (the driver is tfgrec/jobs/build_graph.py, the job
tfgrec/beam/build_graph.py); the same as `tfgrec build-graph` and
`python -m tfgrec.jobs.build_graph`.
"""
import sys

from tfgrec.jobs import build_graph

if __name__ == "__main__":
  sys.exit(build_graph.main())
