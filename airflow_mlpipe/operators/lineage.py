"""OpenLineage for the step operators: what an attempt read and wrote, as OpenLineage datasets.

The openlineage provider calls ``get_openlineage_facets_on_complete`` after a task succeeds, in the task's own
process; the step operators answer from the attempt they just finished (its pinned inputs and its outputs, the
earlier run's folders for a reused step). Nothing here is imported unless the provider asks, so no OpenLineage
package is needed to use the operators.

Dataset names follow OpenLineage's naming spec: ``file`` + absolute path, ``s3://<bucket>`` + key,
``wasbs://<container>@<account>.blob.core.windows.net`` + blob path (``abfss://...dfs.core.windows.net`` for ADLS
Gen2 URLs), ``gs://<bucket>`` + object path.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.datasets.manifest import Manifest
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore

Location = tuple[str, str]  # (datastore, path)


def locations(spec: StepSpec, record: Mapping[str, Any]) -> dict[str, list[Location]]:
    """The folders (or files) an attempt read and the ones its outputs are in."""
    inputs: list[Location] = []
    for spec_input in spec.inputs:
        source = spec_input.get("source") or {}
        if source.get("type") == "folder":
            inputs.append((str(source["datastore"]), str(source["path"])))
            continue
        manifest = Manifest.from_dict((spec_input.get("pin") or {}).get("manifest") or {})
        by_store: dict[str, list[str]] = {}
        for entry in manifest.entries:
            by_store.setdefault(entry.datastore, []).append(entry.path)
        for store, paths in by_store.items():
            base = posixpath.commonpath(paths) if len(paths) > 1 else paths[0]
            inputs.append((store, base))
    outputs = [(str(o["datastore"]), str(o["path"])) for o in record.get("outputs") or ()]
    return {"inputs": inputs, "outputs": outputs}


def openlineage_facets(found: Mapping[str, list[Location]] | None) -> Any:
    """An ``OperatorLineage`` for the provider (empty when the task recorded nothing)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    found = found or {}
    return OperatorLineage(
        inputs=[dataset(*where) for where in found.get("inputs", [])],
        outputs=[dataset(*where) for where in found.get("outputs", [])],
    )


def dataset(datastore: str, path: str) -> Any:
    from airflow.providers.common.compat.openlineage.facet import Dataset

    namespace, name = dataset_name(Datastore.get(datastore), path)
    return Dataset(namespace=namespace, name=name)


def dataset_name(store: Datastore, path: str) -> tuple[str, str]:
    """(namespace, name) of ``path`` in ``store`` by OpenLineage's naming spec."""
    full = store.full_path(path)
    protocol = store.protocol
    if protocol == "file":
        return "file", full
    if protocol == "memory":
        return "memory", "/" + full.lstrip("/")
    bucket, _, key = full.partition("/")
    if protocol == "s3":
        return f"s3://{bucket}", key
    if protocol == "gcs":
        return f"gs://{bucket}", key
    if protocol == "abfs":
        account = _azure_account(store)
        service = "dfs" if store.config.parsed.scheme in ("abfs", "abfss") else "blob"
        scheme = "abfss" if service == "dfs" else "wasbs"
        return f"{scheme}://{bucket}@{account}.{service}.core.windows.net", key
    return f"{protocol}://{bucket}", key


def _azure_account(store: Datastore) -> str:
    options = store.config.storage_options
    if options.get("account_name"):
        return str(options["account_name"])
    match = re.search(r"AccountName=([^;]+)", str(options.get("connection_string") or ""))
    return match.group(1) if match else "unknown-account"
