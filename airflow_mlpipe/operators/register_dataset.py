"""``RegisterDatasetOperator``: register files in a datastore as the next version of a named dataset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_mlpipe.core.checks import check_bool, check_str_mapping, check_text
from airflow_mlpipe.core.secrets import scrub_text
from airflow_mlpipe.datasets.dataset import AbstractDataset
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.operators.failures import fails_cleanly


class RegisterDatasetOperator(BaseOperator):
    """Register ``dataset`` (``Dataset.File.from_files(...)`` or ``Dataset.Tabular...``) as ``name``.

    A new version is added only when the files' content changed; then an asset event goes out on
    ``mlpipe://datasets/<name>`` with the version in its extra. Returns (XCom) name, version, whether it is new,
    and the manifest summary.
    """

    template_fields: Sequence[str] = ("name", "description")
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        dataset: AbstractDataset,
        name: str,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        create_new_version: bool = True,
        **kwargs: Any,
    ) -> None:
        from airflow_mlpipe.assets import datasets_alias

        outlets = list(kwargs.pop("outlets", None) or [])
        super().__init__(outlets=[*outlets, datasets_alias()], **kwargs)
        if not isinstance(dataset, AbstractDataset):
            raise TypeError(
                f"{self.task_id}: dataset must be built with Dataset.File.from_files(...) or "
                f"Dataset.Tabular.from_delimited_files(...), not {type(dataset).__name__}"
            )
        self.dataset_definition = dataset.to_dict()
        self.name = name if isinstance(name, str) and "{{" in name else check_name(name)
        self.description = check_text(self.task_id, "description", description, example="cleaned", optional=True)
        self.tags = check_str_mapping(self.task_id, "tags", tags, example="{'stage': 'clean'}")
        self.create_new_version = check_bool("RegisterDatasetOperator", "create_new_version", create_new_version)

    def _do_render_template_fields(
        self, parent: Any, template_fields: Iterable[str], context: Context, jinja_env: Any, seen_oids: set[int]
    ) -> None:
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        if parent is self and isinstance(self.description, str):
            # as the registry stores it: Airflow stores the rendered fields (the Rendered Templates tab) next
            self.description = scrub_text(self.description)

    @fails_cleanly
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlpipe.assets import emit_dataset_event, lineage_from_context

        dataset = AbstractDataset.from_dict(self.dataset_definition)
        lineage = lineage_from_context(context)
        registered = dataset.register(
            check_name(self.name),
            self.description,
            self.tags,
            self.create_new_version,
            lineage=lineage,
        )
        record = registered.record
        assert record is not None
        if registered.is_new_version:
            self.log.info(
                "Registered dataset %s version %d: %s", record.name, record.version, record.manifest.summary()
            )
        else:
            self.log.info(
                "Dataset %s is unchanged: version %d already holds these files; no new version",
                record.name,
                record.version,
            )
        emit_dataset_event(context, registered, lineage)
        return {
            "name": record.name,
            "version": record.version,
            "created": bool(registered.is_new_version),
            "manifest": record.manifest.summary(),
        }
