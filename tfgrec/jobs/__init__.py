"""Command-line drivers of tfgrec's Apache Beam jobs.

Each module parses the job's own options, passes every other option to Beam as a pipeline option
(so the same command runs on DirectRunner, Dataflow, Flink or Spark), runs the job of
``tfgrec.beam`` and prints its summary:

  python -m tfgrec.jobs.build_graph --raw logs/ --out graph/       # = tfgrec build-graph
  python -m tfgrec.jobs.batch_recommend --model models/tfgrec --users users.txt --output recs.jsonl

``pipelines/build_graph.py`` and ``pipelines/batch_recommend.py`` are the same mains as scripts.
Everything a pipeline ships to workers lives in ``tfgrec.beam``, so ``--setup_file=./setup.py``
(which packages ``tfgrec``) is all a remote runner needs. Importing a driver module is light: no
TensorFlow or Beam until a job runs.
"""
