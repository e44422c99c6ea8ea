"""Content hashing and file identities: what reuse keys and dataset manifests are made of. No Airflow import."""
