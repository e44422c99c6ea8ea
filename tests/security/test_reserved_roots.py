"""A datastore's root may not lie below a folder named ``_mlpipe`` (as stores keep names: any case, trailing dots
and spaces dropped), nor be named as a marker or journal: the root of ``file:///x/lake/_mlpipe/registry`` lies
in the records of the datastore ``file:///x/lake``, and every output, transfer or upload through it would write
into that registry. Refused when the url is parsed, whether the datastore is made in code or from a connection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlpipe.core.urls import parse_datastore_url
from airflow_mlpipe.exceptions import ReservedPathError
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.transfer import transfer


@pytest.mark.parametrize(
    ("url", "segment", "example"),
    [
        pytest.param("file:///x/lake/_mlpipe/registry", "'_mlpipe/'", "file:///x/lake/data", id="local"),
        pytest.param("/x/lake/team/_MLPIPE.", "'_MLPIPE./'", "file:///x/lake/team/data", id="local-case-and-dot"),
        pytest.param("file:///x/lake/%5Fmlpipe%20", "'_mlpipe /'", "file:///x/lake/data", id="local-%-encoded"),
        pytest.param("az://c/_mlpipe", "'_mlpipe/'", "az://c/data", id="az"),
        pytest.param(
            "abfs://c@acct.dfs.core.windows.net/p/_Mlpipe/x", "'_Mlpipe/'", "abfs://c/p/data", id="abfs-with-account"
        ),
        pytest.param("s3://b/x/_mlpipe/y", "'_mlpipe/'", "s3://b/x/data", id="s3"),
        pytest.param("s3://KEY:SECRET@b/_mlpipe./y", "'_mlpipe./'", "s3://b/data", id="s3-with-credentials"),
        pytest.param("memory://m/_mlpipe", "'_mlpipe/'", "memory:///m/data", id="memory"),
    ],
)
def test_a_root_below_a_reserved_folder_is_refused(url: str, segment: str, example: str) -> None:
    with pytest.raises(ReservedPathError) as caught:
        parse_datastore_url(url, datastore="inreg")
    message = str(caught.value)
    assert message.startswith("datastore 'inreg': url ") and f"has a root path through the folder {segment}" in message
    assert "the registry, reuse index and run records of the datastore it lies in" in message
    assert message.endswith(f"choose a root without that folder, e.g. {example!r}"), message
    assert "SECRET" not in message


@pytest.mark.parametrize("name", ["_MLPIPE_COMPLETE", "_mlpipe_transfer."])
def test_a_root_named_as_a_marker_is_refused(name: str) -> None:
    with pytest.raises(ReservedPathError, match=f"has a root path through '{name}', the name of the file mlpipe"):
        parse_datastore_url(f"s3://b/out/{name}", datastore="inreg")


@pytest.mark.parametrize("url", ["file:///x/my_mlpipe", "az://c/_mlpipe_old/x", "s3://b/x._mlpipe", "/x/.mlpipe"])
def test_names_that_only_look_alike_are_roots(url: str) -> None:
    assert parse_datastore_url(url, datastore="ok").root.endswith(url.removeprefix("file://").split("://")[-1])


def test_a_datastore_rooted_in_another_ones_registry_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    lake = Datastore("lake", (tmp_path / "lake").as_uri())
    lake.write_text("data/a.csv", "a\n")
    url = (tmp_path / "lake" / "_mlpipe" / "registry").as_uri()
    with pytest.raises(ReservedPathError, match=r"^datastore 'inreg': url .*_mlpipe/registry' has a root path"):
        transfer(lake, "data", Datastore("inreg", url), "datasets/victim")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "lake",
        "lake/data",
        "lake/data/a.csv",
    ]


@pytest.mark.parametrize(
    "connection",
    [
        pytest.param({"conn_type": "mlpipe_datastore", "extra": {"url": "az://c/team/_mlpipe."}}, id="extra-url"),
        pytest.param({"conn_type": "mlpipe_datastore", "host": "s3://b/_MLPIPE/registry"}, id="host-url"),
    ],
)
def test_a_connection_whose_url_lies_in_reserved_is_refused(
    monkeypatch: pytest.MonkeyPatch, connection: dict[str, object]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_INREG", json.dumps(connection))
    resolve.clear_cache()
    with pytest.raises(ReservedPathError, match=r"^datastore 'inreg': url '[a-z0-9]+://.*' has a root path through"):
        _ = Datastore.get("inreg").config  # looked up on first use
