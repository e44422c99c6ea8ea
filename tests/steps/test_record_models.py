"""Records as declared models with one codec: what today's code wrote before the models is read, and written again
the same; a newer format is refused with a message that says so; a migration reads an older one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.core.model import Record, RecordFormatError
from airflow_mlpipe.datasets.registry import DatasetRecord
from airflow_mlpipe.reuse.decide import ReusePolicy
from airflow_mlpipe.reuse.history import HistoryEntry
from airflow_mlpipe.reuse.index import ReuseEntry
from airflow_mlpipe.reuse.lease import LeaseRecord
from airflow_mlpipe.steps.spec import SpecError, StepSpec

# Written by the hand-written codecs these models replace (one file per record kind).
FIXTURES = Path(__file__).parent.parent / "fixtures" / "records_before_models"
KINDS: dict[str, type[Record]] = {
    "attempt": AttemptId,
    "dataset_record": DatasetRecord,
    "history_entry": HistoryEntry,
    "lease_record": LeaseRecord,
    "reuse_entry": ReuseEntry,
    "reuse_policy": ReusePolicy,
    "step_spec": StepSpec,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_records_written_before_the_models_read_and_write_the_same(kind: str) -> None:
    stored = json.loads((FIXTURES / f"{kind}.json").read_text())
    record = KINDS[kind].from_dict(stored)
    assert record.to_dict() == stored
    assert KINDS[kind].from_dict(record.to_dict()) == record


def test_values_are_typed_as_declared() -> None:
    stored = json.loads((FIXTURES / "dataset_record.json").read_text())
    record = DatasetRecord.from_dict(stored)
    assert record.version == 7 and record.manifest.digest == stored["manifest"]["digest"]
    assert record.manifest.entries[0].identity.size == 12
    lease = LeaseRecord.from_dict(json.loads((FIXTURES / "lease_record.json").read_text()))
    assert isinstance(lease.ttl, float) and lease.generation == 3 and lease.info["step_run_id"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": 2}, "reuse history entry format 2 is not 1; it was written by a newer airflow-mlpipe"),
        ({"format": None}, "reuse history entry format None is not 1"),
        ({"key": None}, "reuse history entry: field 'key': Input should be a valid string"),
        ({"components": [1]}, "reuse history entry: field 'components'"),
    ],
)
def test_an_unreadable_record_says_what_is_wrong(change: dict[str, Any], message: str) -> None:
    stored = json.loads((FIXTURES / "history_entry.json").read_text())
    with pytest.raises(RecordFormatError, match=message.replace("(", r"\(")):
        HistoryEntry.from_dict({**stored, **change})


def test_a_missing_field_is_named() -> None:
    stored = json.loads((FIXTURES / "reuse_entry.json").read_text())
    del stored["step_run_id"]
    with pytest.raises(ValueError, match="reuse entry: field 'step_run_id': Field required"):
        ReuseEntry.from_dict(stored)


def test_a_spec_of_another_format_names_the_version_mismatch() -> None:
    stored = json.loads((FIXTURES / "step_spec.json").read_text())
    with pytest.raises(SpecError, match="install the same version in the image"):
        StepSpec.from_dict({**stored, "format": 1})
    with pytest.raises(SpecError, match="names step run 'x' but its attempt is"):
        StepSpec.from_dict({**stored, "step_run_id": "x"})


@dataclass(frozen=True)
class _Thing(Record):
    FORMAT = 3
    MIGRATIONS = {
        1: lambda d: {**d, "size": int(d.pop("size_text"))},
        2: lambda d: {**d, "unit": "bytes"},
    }
    LABEL = "thing"

    name: str
    size: int
    unit: str


def test_migrations_read_older_formats_and_write_the_newest() -> None:
    thing = _Thing.from_dict({"format": 1, "name": "a", "size_text": "12"})
    assert thing == _Thing("a", 12, "bytes")
    assert thing.to_dict() == {"format": 3, "name": "a", "size": 12, "unit": "bytes"}
    assert _Thing.from_dict({"format": 2, "name": "a", "size": 5}) == _Thing("a", 5, "bytes")
    with pytest.raises(RecordFormatError, match="thing format 0 is not 3"):
        _Thing.from_dict({"format": 0, "name": "a"})
