"""Beam job: recommendations for many users from an exported model (RunInference). From the root:

  python pipelines/batch_recommend.py --model models/tfgrec --users users.txt --output recs.jsonl
  python pipelines/batch_recommend.py --model gs://b/models/tfgrec \\
      --users 'gs://b/logs/*.parquet' --output gs://b/recs/recs --num-shards 64 \\
      --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp \\
      --setup_file=./setup.py

A script over the installed library (the driver is tfgrec/jobs/batch_recommend.py, the job
tfgrec/beam/batch_recommend.py); the same as `python -m tfgrec.jobs.batch_recommend`.
"""
import sys

from tfgrec.jobs import batch_recommend

if __name__ == "__main__":
  sys.exit(batch_recommend.main())
