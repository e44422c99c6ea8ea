"""Step outputs: ``OutputFileDatasetConfig``, a folder a step writes, optionally registered as a dataset version
once the step has succeeded and the folder is complete."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.core.checks import check_bool, check_str_list, check_str_mapping, check_text, shown
from airflow_mlpipe.core.paths import check_user_path
from airflow_mlpipe.core.secrets import scrub_text
from airflow_mlpipe.core.templates import check_jinja, has_jinja
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.paths import DataPath
from airflow_mlpipe.exceptions import ConfigError, DatasetError
from airflow_mlpipe.storage.config import DEFAULT_DATASTORE
from airflow_mlpipe.storage.datastore import Datastore

PLACEHOLDERS = ("run-id", "output-name")
DEFAULT_DESTINATION = "dataset/{run-id}/{output-name}"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


@dataclass(frozen=True)
class Registration:
    name: str
    description: str = ""
    tags: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "tags": dict(self.tags or {})}


class OutputFileDatasetConfig:
    """A folder a step writes its output to, as in Azure ML. The destination path is templated as the step's
    other fields are: ``(store, "features/{{ ds }}/{run-id}")`` (Jinja's ``{{ }}`` by Airflow, our ``{run-id}``
    and ``{output-name}`` per step run).

    :param name: the output's name (default: ``<task_id>_output_<n>``, given when a step takes it: never random).
    :param destination: ``(Datastore or datastore name, "path/{run-id}/{output-name}")``; default
        ``(default datastore, "dataset/{run-id}/{output-name}")``. ``{run-id}`` is the step run's id: one per
        attempt (DAG run, task, map index and try), so no later attempt ever writes a folder an earlier one
        committed.
    """

    def __init__(self, name: str | None = None, destination: tuple[Any, str] | None = None) -> None:
        self._name = check_name(name, what="output name") if name is not None else None
        if destination is None:
            self.datastore, self.path_template = DEFAULT_DATASTORE, DEFAULT_DESTINATION
        else:
            if not (isinstance(destination, tuple) and len(destination) == 2 and isinstance(destination[1], str)):
                raise DatasetError(
                    f"output destination {destination!r} must be (Datastore or datastore name, 'path/{{run-id}}')"
                )
            store, template = destination
            if not isinstance(store, (Datastore, str)) or not store:
                raise DatasetError(
                    f"output destination {destination!r}: the datastore {store!r} must be a Datastore or a datastore "
                    "name, e.g. (Datastore.get('NAME'), 'path/{run-id}')"
                )
            if isinstance(store, str) and not re.fullmatch(r"[\w.-]{1,250}", store):
                raise DatasetError(
                    f"output destination {destination!r}: the datastore name {store!r} is not the id of a datastore "
                    "connection (letters, digits, '_', '-', '.'); create a connection for the store and give its "
                    "name, e.g. (Datastore.get('NAME'), 'path/{run-id}')"
                )
            self.datastore = store.name if isinstance(store, Datastore) else store
            self.path_template = _check_template(template, self.datastore)
        # Rendered by Airflow with the step's own fields (``{{ ds }}`` ...); checked again once rendered.
        self.template_fields: tuple[str, ...] = ("path_template",)
        self.given_template = self.path_template  # as written, to tell what rendering put in
        self.mode = "mount"
        self.overwrite = False
        self.source_globs: tuple[str, ...] = ()
        self.registration: Registration | None = None
        self.producer: str | None = None

    # -- naming ---------------------------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        return self._name

    def bind(self, task_id: str, index: int) -> None:
        """Called by the step that writes this output: records the producer and settles a default name."""
        if self.producer is not None and self.producer != task_id:
            raise DatasetError(
                f"output {self.name or '(unnamed)'!r} is already written by step {self.producer!r}; step "
                f"{task_id!r} cannot write it too: give each step its own OutputFileDatasetConfig"
            )
        self.producer = task_id
        if self._name is None:
            self._name = check_name(f"{task_id}_output_{index}", what="output name")

    # -- Azure ML API ---------------------------------------------------------------------------------------
    def register_on_complete(
        self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> OutputFileDatasetConfig:
        """Register the folder as a new version of dataset ``name`` once the step succeeds."""
        owner = f"output {self._name!r}: register_on_complete"
        self.registration = Registration(
            check_name(name),
            check_text(owner, "description", description, example="cleaned", optional=True) or "",
            check_str_mapping(owner, "tags", tags, example="{'stage': 'clean'}"),
        )
        return self

    def as_upload(self, overwrite: bool = False, source_globs: list[str] | None = None) -> OutputFileDatasetConfig:
        """Write to a local folder on the compute, uploaded when the script ends (only ``source_globs``
        matches, when given)."""
        self.mode = "upload"
        self.overwrite = check_bool(f"output {self._name!r}: as_upload", "overwrite", overwrite)
        self.source_globs = _check_globs(self._name, source_globs)
        return self

    def as_mount(self) -> OutputFileDatasetConfig:
        self.mode = "mount"
        return self

    def as_input(self, name: str | None = None) -> OutputInput:
        """This output as an input of a later step (which then runs after the producing step)."""
        return OutputInput(self, check_name(name, what="input name") if name is not None else None)

    # -- resolution -----------------------------------------------------------------------------------------
    def check_rendered(self, step: str) -> None:
        """After Airflow rendered ``path_template``: still a destination (a template may render to anything)."""
        if not isinstance(self.path_template, str):
            raise DatasetError(
                f"step {step!r}: output {self.name!r}: its destination rendered to {self.path_template!r}, not a path; "
                "make the template render text, e.g. 'features/{{ ds }}/{run-id}'"
            )
        given = getattr(self, "given_template", self.path_template)
        if _NONE_WORD.search(self.path_template) and not _NONE_WORD.search(given):
            raise DatasetError(
                f"step {step!r}: output {self.name!r}: its destination {given!r} rendered to {self.path_template!r}: "
                "a value the template reads was None (a param or XCom without a value), and the output would go to "
                "a folder named 'None'; give it a value, or a default in the template, e.g. "
                "'features/{{ params.day or ds }}/{run-id}'"
            )
        try:
            _check_template(self.path_template, self.datastore)
        except ConfigError as exc:
            raise DatasetError(f"step {step!r}: output {self.name!r}: once rendered, {exc}") from None

    def destination_for(self, step_run_id: str) -> DataPath:
        """The output folder for a step run: placeholders filled in, confined to the datastore. (Not ``resolve``:
        Airflow calls the ``resolve`` of objects in templated fields with the task's context.)"""
        if self.name is None:
            raise DatasetError("an output must be given to a step (or a name) before its path can be resolved")
        path = fill_placeholders(self.path_template, run_id=step_run_id, output_name=self.name)
        where = f"output {self.name!r} destination"
        return DataPath(self.datastore, check_user_path(path, argument=where, datastore=self.datastore))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "datastore": self.datastore,
            "path_template": self.path_template,
            "mode": self.mode,
            "overwrite": self.overwrite,
            "source_globs": list(self.source_globs),
            "registration": self.registration.to_dict() if self.registration else None,
            "producer": self.producer,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputFileDatasetConfig:
        out = cls(data.get("name"), (data["datastore"], data["path_template"]))
        out.mode = str(data.get("mode", "mount"))
        out.overwrite = bool(data.get("overwrite", False))
        out.source_globs = tuple(data.get("source_globs") or ())
        reg = data.get("registration")
        if reg:
            out.registration = Registration(reg["name"], reg.get("description", ""), reg.get("tags") or {})
        out.producer = data.get("producer")
        return out

    def __repr__(self) -> str:
        shown = f"OutputFileDatasetConfig(name={self.name!r}, destination=({self.datastore!r}, {self.path_template!r}))"
        return scrub_text(shown)


class OutputInput:
    """``output.as_input()``: the folder an earlier step wrote, read by a later step (mounted by default)."""

    def __init__(self, output: OutputFileDatasetConfig, name: str | None = None, mode: str = "mount") -> None:
        self.output = output
        self._name = name
        self.mode = mode

    @property
    def name(self) -> str | None:
        return self._name or self.output.name

    def as_download(self) -> OutputInput:
        return OutputInput(self.output, self._name, "download")

    def as_mount(self) -> OutputInput:
        return OutputInput(self.output, self._name, "mount")

    def __repr__(self) -> str:
        return f"OutputInput(output={self.output.name!r}, name={self.name!r}, mode={self.mode!r})"


def fill_placeholders(template: str, *, run_id: str, output_name: str) -> str:
    values = {"run-id": run_id, "output-name": output_name}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


_NONE_WORD = re.compile(r"(?<![A-Za-z0-9])None(?![A-Za-z0-9])")


def _check_globs(output: str | None, value: object) -> tuple[str, ...]:
    """``as_upload(source_globs=...)``: patterns relative to the folder the script writes the output to, where the
    upload looks for them; a pattern that leads out of it would match nothing, and the output would be uploaded
    without the files the user named."""
    owner = f"output {output!r}: as_upload"
    globs = check_str_list(owner, "source_globs", value, example="*.csv")
    for glob in globs:
        if glob.startswith("/") or "\\" in glob or ".." in glob.split("/"):
            raise ConfigError(
                f"{owner}: source_globs entry {shown(glob)} must be a pattern relative to the output's folder on the "
                "compute (the folder the script writes the output to), without a leading '/', '..' or '\\', e.g. "
                "source_globs=['*.csv', 'model/*']"
            )
    return globs


def _check_template(template: str, datastore: str) -> str:
    """Our placeholders are known, braces balance, and the path stays inside the datastore. Jinja (``{{ ds }}``,
    rendered by Airflow before the step runs) is checked for syntax and stands for a path part meanwhile."""
    original = template
    if has_jinja(template):
        check_jinja(template, what=f"output destination {template!r}")
        template = _JINJA.sub("x", template)
    unknown = sorted({m for m in _PLACEHOLDER.findall(template) if m not in PLACEHOLDERS})
    if unknown:
        raise DatasetError(
            f"output destination {template!r} uses unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"the known ones are {{run-id}} and {{output-name}}"
        )
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        raise DatasetError(f"output destination {template!r} has an unbalanced '{{' or '}}'")
    probe = fill_placeholders(template, run_id="run", output_name="out")
    if not check_user_path(probe, argument=f"output destination {shown(original)}", datastore=datastore):
        raise DatasetError(f"output destination {template!r} is the datastore root; give a folder inside it")
    return original
