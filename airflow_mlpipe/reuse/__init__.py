"""Step reuse: reuse keys over content, the reuse index in the default datastore, leases for dedup, explanations.
No Airflow import."""
