"""Sensors of airflow-mlpipe."""
