"""Datastores: an fsspec filesystem plus a root, with the atomic primitives the registry needs. No Airflow import."""

from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore

__all__ = ["COMPLETE_MARKER", "Datastore"]
