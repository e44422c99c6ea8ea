"""Airflow provider registration (entry point group ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_mlpipe.version import __version__

CONN_TYPE = "mlpipe_datastore"
INTEGRATION = "ML pipelines (airflow-mlpipe)"


# The connection form's extra fields. Airflow 3 builds them from "conn-fields"; DatastoreHook returns the same for
# older UIs. An extra "url" (connections made before the URL moved to Host) is still honoured.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "endpoint_url": {
        "label": "S3 endpoint URL (S3-compatible stores)",
        "schema": {"type": ["string", "null"]},
    },
    "region_name": {"label": "S3 region", "schema": {"type": ["string", "null"]}},
    "connection_string": {
        "label": "Azure connection string",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "sas_token": {"label": "Azure SAS token", "schema": {"type": ["string", "null"], "format": "password"}},
    "storage_options": {
        "label": "Further fsspec storage options (JSON object)",
        "schema": {"type": ["string", "null"]},
    },
}
# The datastore's URL is the form's first field (Host, relabelled); the connection's own Description describes it.
# The port is unused; the Test button sends it as 0, which the plugin's middleware drops (plugins/connection_form.py).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port", "extra"],
    "relabeling": {
        "host": "Datastore URL (required)",
        "login": "Account name (Azure) / access key id (S3)",
        "password": "Account key (Azure) / secret access key (S3)",
    },
    "placeholders": {
        "host": "az://container/prefix · s3://bucket/prefix · file:///data",
        "login": "only when the URL's store needs it",
    },
}


def _ui_field_behaviour_dashed() -> dict[str, Any]:
    return {k.replace("_", "-"): v for k, v in UI_FIELD_BEHAVIOUR.items()}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-mlpipe",
        "name": "ML pipelines (airflow-mlpipe)",
        "description": "Azure ML SDK v1 style ML pipelines on Airflow: datastores over fsspec, versioned "
        "datasets, reusable script steps on local, Docker and Kubernetes compute.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_mlpipe.hooks.datastore.DatastoreHook",
                "hook-name": "ML pipeline datastore",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": _ui_field_behaviour_dashed(),
            }
        ],
        "hook-class-names": ["airflow_mlpipe.hooks.datastore.DatastoreHook"],
        "extra-links": [
            "airflow_mlpipe.operators.links.StepRunLink",
            "airflow_mlpipe.operators.links.ReusedFromLink",
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_mlpipe.sensors.reuse"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["airflow_mlpipe.triggers.reuse"]}],
    }
