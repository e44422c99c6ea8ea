"""Script steps without Airflow: the step spec, source snapshots, run records, pipeline parameters."""
