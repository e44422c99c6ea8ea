"""Triggers that run in Airflow's triggerer while a task is deferred."""
