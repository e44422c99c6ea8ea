"""Versioned File and Tabular datasets, step outputs, and the dataset registry. No Airflow import."""
