"""Frozen value objects, URL parsing and path rules. No Airflow import, no I/O."""
