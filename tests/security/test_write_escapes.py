"""No write escapes: user paths never name mlpipe's ``_mlpipe/`` folder, and on a local store never lead out of the
datastore root (or into ``_mlpipe/``) through a symbolic link. Each case asserts the message and that nothing
was written."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_mlpipe import Dataset, OutputFileDatasetConfig
from airflow_mlpipe.exceptions import ConfigError, PathOutsideDatastoreError, ReservedPathError
from airflow_mlpipe.runner.outputs import prepare_outputs
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.transfer import transfer

RESERVED = "_mlpipe/registry/datasets/victim"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    """A local datastore known by name (``lake``), with a registry record to protect and a folder outside it."""
    root = tmp_path / "lake"
    (root / "_mlpipe/registry/datasets/victim").mkdir(parents=True)
    (root / "_mlpipe/registry/datasets/victim/1.json").write_text("{}")
    (root / "data").mkdir()
    (root / "data/a.csv").write_text("a\n1\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.txt").write_text("top secret")
    extra = {"url": root.as_uri()}
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    return Datastore.get("lake")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("attempt", "argument"),
    [
        pytest.param(lambda s: OutputFileDatasetConfig("o", (s, RESERVED)), "output destination", id="output"),
        pytest.param(
            lambda s: OutputFileDatasetConfig("o", (s, "_MLPIPE/x/{run-id}")), "output destination", id="output-case"
        ),
        pytest.param(lambda s: Dataset.File.from_files((s, "_mlpipe/registry/**")), "dataset path", id="dataset"),
        pytest.param(
            lambda s: Dataset.File.from_files("mlpipe://datastores/lake/paths/_mlpipe/runs"),
            "dataset path",
            id="dataset-url",
        ),
        pytest.param(lambda s: transfer(s, "data", s, RESERVED), "transfer destination", id="transfer-destination"),
        pytest.param(lambda s: transfer(s, "_mlpipe/registry", s, "copy"), "transfer source", id="transfer-source"),
        # a datastore may lie inside another ('lake2' at lake/data): its records are reserved through the outer one
        pytest.param(
            lambda s: OutputFileDatasetConfig("o", ("lake", "data/_mlpipe/runs/{run-id}")),
            "output destination",
            id="output-nested",
        ),
        pytest.param(
            lambda s: Dataset.File.from_files(("lake", "data/_mlpipe/**")), "dataset path", id="dataset-nested"
        ),
        pytest.param(lambda s: transfer(s, "data", s, f"x/{RESERVED}"), "transfer destination", id="transfer-nested"),
        # Azure Blob drops trailing dots (and spaces) from every path segment: '_mlpipe./x' is kept as '_mlpipe/x'
        pytest.param(
            lambda s: transfer(s, "data", s, "_mlpipe./registry/datasets/victim"),
            "transfer destination",
            id="transfer-trailing-dot",
        ),
        pytest.param(
            lambda s: OutputFileDatasetConfig("o", (s, "_mlpipe./registry/{run-id}")),
            "output destination",
            id="output-trailing-dot",
        ),
        pytest.param(lambda s: transfer(s, "data", s, "out/_mlpipe "), "transfer destination", id="trailing-space"),
    ],
)
def test_reserved_folder_is_refused(store: Datastore, attempt: Callable[[Datastore], object], argument: str) -> None:
    before = _snapshot(Path(store.root))
    with pytest.raises(
        ReservedPathError, match=rf"{argument}.*reserves.*at any depth.*choose a path outside it"
    ) as info:
        attempt(store)
    assert isinstance(info.value, ConfigError)
    assert _snapshot(Path(store.root)) == before


def test_rendered_destination_in_reserved_folder_is_refused(store: Datastore) -> None:
    out = OutputFileDatasetConfig("o", (store, "{{ params.where }}/{run-id}"))
    out.path_template = "_mlpipe/reuse/{run-id}"  # what Airflow rendered
    with pytest.raises(ConfigError, match="step 'train': output 'o': once rendered.*_mlpipe"):
        out.check_rendered("train")


def test_glob_at_the_root_never_matches_the_reserved_folder(store: Datastore) -> None:
    (Path(store.root) / "data/b.json").write_text("{}")
    dataset = Dataset.File.from_files((store, "*/*.json"))
    assert [e.path for e in dataset.current_manifest().entries] == ["data/b.json"]


def test_runner_refuses_an_output_destination_through_a_link_out_of_the_store(store: Datastore, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside", Path(store.root) / "models")
    spec = {"name": "model", "datastore": "lake", "path": "models/latest", "mode": "mount"}
    with pytest.raises(PathOutsideDatastoreError, match="output 'model' destination.*symbolic link.*outside"):
        prepare_outputs((spec,), str(tmp_path / "work"))
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]


def test_runner_refuses_an_output_destination_through_a_link_into_reserved(store: Datastore, tmp_path: Path) -> None:
    os.symlink(Path(store.root) / "_mlpipe/registry", Path(store.root) / "reg")
    spec = {"name": "model", "datastore": "lake", "path": "reg/datasets", "mode": "mount"}
    with pytest.raises(ReservedPathError, match="output 'model' destination.*symbolic link into '_mlpipe/'"):
        prepare_outputs((spec,), str(tmp_path / "work"))


@pytest.mark.parametrize(
    ("link", "source", "destination", "argument"),
    [
        pytest.param("data/leak", "data", "copy", "transfer", id="file-link-in-source"),
        pytest.param("exfil", "exfil", "copy", "transfer source", id="source-is-link"),
        pytest.param("copy/sub", "data", "copy", "transfer", id="folder-link-in-destination"),
        pytest.param("out", "data", "out/x", "transfer destination", id="destination-below-link"),
    ],
)
def test_transfer_never_goes_through_a_link_out_of_the_store(
    store: Datastore, tmp_path: Path, link: str, source: str, destination: str, argument: str
) -> None:
    target = tmp_path / "outside"
    if link == "data/leak":
        target = target / "secret.txt"
    (Path(store.root) / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, Path(store.root) / link)
    (Path(store.root) / "data/sub").mkdir()
    (Path(store.root) / "data/sub/b.csv").write_text("b\n")
    outside_before = _snapshot(tmp_path / "outside")
    with pytest.raises(PathOutsideDatastoreError, match=rf"{argument}.*symbolic link.*outside the datastore root"):
        transfer(store, source, store, destination)
    assert _snapshot(tmp_path / "outside") == outside_before
    assert not (Path(store.root) / "copy/a.csv").exists()


def test_dataset_through_a_link_out_of_the_store_is_refused(store: Datastore, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside/secret.txt", Path(store.root) / "data/leak.txt")
    with pytest.raises(PathOutsideDatastoreError, match="dataset path.*'data/leak.txt'.*symbolic link.*outside"):
        Dataset.File.from_files((store, "data")).register("leaky")
    assert not (Path(store.root) / "_mlpipe/registry/datasets/leaky").exists()


@pytest.mark.parametrize(
    ("destination", "wanted"),
    [
        pytest.param(f"lake:{RESERVED}", "is inside '_mlpipe/', which mlpipe reserves", id="reserved"),
        pytest.param("lake:out/_mlpipe.", "is inside '_mlpipe./' (which stores may keep as '_mlpipe'", id="dot"),
        pytest.param(f"lake:copy/{RESERVED}", "at any depth, since a datastore may lie inside another", id="nested"),
        pytest.param("lake:out/_MLPIPE_COMPLETE.", "names '_MLPIPE_COMPLETE.'", id="marker-dot"),
    ],
)
def test_cli_transfer_into_reserved_folder_is_a_clear_error(
    store: Datastore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    destination: str,
    wanted: str,
) -> None:
    from airflow_mlpipe.cli.main import main

    monkeypatch.setattr(sys, "stdout", sys.stdout)  # main() sends stdout to stderr; undone after the test
    before = _snapshot(Path(store.root))
    with pytest.raises(SystemExit) as info:
        main(["transfer", "lake:data", destination])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: transfer destination") and wanted in err and "Traceback" not in err
    assert _snapshot(Path(store.root)) == before


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        pytest.param("_mlpipe/registry/datasets", ReservedPathError, "target_path.*reserves", id="reserved"),
        pytest.param("_mlpipe./reuse", ReservedPathError, "target_path.*'_mlpipe./'.*reserves", id="reserved-dot"),
        pytest.param("data/_mlpipe/reuse", ReservedPathError, "target_path.*at any depth", id="reserved-nested"),
        pytest.param("out/x", PathOutsideDatastoreError, "target_path.*symbolic link.*outside", id="link-out"),
    ],
)
def test_v1_upload_stays_inside_the_store(
    store: Datastore, tmp_path: Path, target: str, error: type[Exception], message: str
) -> None:
    from airflow_mlpipe.compat.data import V1Datastore

    os.symlink(tmp_path / "outside", Path(store.root) / "out")
    (tmp_path / "up").mkdir()
    (tmp_path / "up/f.txt").write_text("new\n")
    before, outside = _snapshot(Path(store.root)), _snapshot(tmp_path / "outside")
    with pytest.raises(error, match=message):
        V1Datastore.of(store).upload(str(tmp_path / "up"), target_path=target)
    assert (_snapshot(Path(store.root)), _snapshot(tmp_path / "outside")) == (before, outside)


def test_dataset_below_a_folder_link_out_of_the_store_is_refused(store: Datastore, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside", Path(store.root) / "data/linked")
    with pytest.raises(PathOutsideDatastoreError, match="dataset path.*'data/linked'.*symbolic link.*outside"):
        Dataset.File.from_files((store, "data/linked/*.txt")).register("leaky")


def _entries(root: Path) -> dict[str, str | bytes]:
    """Every name below ``root``: a link as its target (dangling or not, never followed), a file as its bytes."""
    found: dict[str, str | bytes] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = f"-> {os.readlink(path)}"
            elif path.is_file():
                found[rel] = path.read_bytes()
            else:
                found[rel] = "dir"
    return found


# (link below the datastore root, its target: "@x" is outside/x, anything else a path below the root)
DESTINATION_LINKS = [
    pytest.param("out4/a.txt", "@w.txt", "out4", "directory", "outside the datastore", id="dangling-file-link-out"),
    pytest.param("out4/a.txt", "nothing.txt", "out4", "directory", "is a symbolic link", id="dangling-file-link-in"),
    pytest.param("out4/a.txt", "data/a.csv", "out4", "directory", "is a symbolic link", id="file-link-in"),
    pytest.param("out4/sub", "data", "out4", "directory", "is a symbolic link", id="folder-link-in"),
    pytest.param("out4/sub", "gone", "out4", "directory", "is a symbolic link", id="dangling-folder-link"),
    pytest.param("out4", "data", "out4", "directory", "is a symbolic link", id="destination-is-a-link"),
    pytest.param("deep", "real", "deep/out4", "directory", "is a symbolic link", id="folder-on-the-way"),
    pytest.param("out4/a.txt", "nothing.txt", "out4/a.txt", "file", "is a symbolic link", id="file-destination"),
]


@pytest.mark.parametrize(("link", "target", "destination", "kind", "message"), DESTINATION_LINKS)
def test_transfer_refuses_any_link_in_its_destination_before_writing(
    store: Datastore, tmp_path: Path, link: str, target: str, destination: str, kind: str, message: str
) -> None:
    root = Path(store.root)
    (root / "in").mkdir()
    (root / "in/a.txt").write_text("source bytes")
    (root / "real").mkdir()
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path / "outside" / target[1:] if target.startswith("@") else root / target, root / link)
    before, outside = _entries(root), _entries(tmp_path / "outside")

    with pytest.raises(ConfigError, match=rf"^transfer destination: datastore 'lake': path '{link}'.*{message}"):
        transfer(store, "in/a.txt" if kind == "file" else "in", store, destination, kind=kind)  # type: ignore[arg-type]

    assert (_entries(root), _entries(tmp_path / "outside")) == (before, outside), "nothing may be written"


def test_cli_transfer_through_a_dangling_link_writes_nothing(
    store: Datastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reviewer's case: a dangling file link in the destination used to be written through, then refused."""
    from airflow_mlpipe.cli.main import main

    monkeypatch.setattr(sys, "stdout", sys.stdout)
    root = Path(store.root)
    (root / "in").mkdir()
    (root / "in/a.txt").write_text("source bytes")
    (root / "out4").mkdir()
    os.symlink(tmp_path / "outside/w.txt", root / "out4/a.txt")
    with pytest.raises(SystemExit) as info:
        main(["transfer", "lake:in", "lake:out4"])
    err = capsys.readouterr().err
    assert info.value.code == 1 and "error: transfer destination: datastore 'lake': path 'out4/a.txt'" in err
    assert not (tmp_path / "outside/w.txt").exists() and sorted(os.listdir(root / "out4")) == ["a.txt"]


def test_transfer_with_a_bad_store_setting_writes_nothing(store: Datastore, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"url": store.config.url, "store_timeout": "abc"}
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    before = _entries(Path(store.root))
    with pytest.raises(ConfigError, match="store_timeout' 'abc' must be a positive number"):
        transfer(Datastore.get("lake"), "data", Datastore.get("lake"), "copy")
    assert _entries(Path(store.root)) == before


@pytest.mark.parametrize(
    ("target", "overwrite", "error", "message"),
    [
        pytest.param("@x.txt", True, PathOutsideDatastoreError, "outside the datastore root", id="file-link-out"),
        pytest.param("@gone.txt", False, PathOutsideDatastoreError, "outside the datastore root", id="dangling-out"),
        pytest.param("data/a.csv", True, ConfigError, "is a symbolic link", id="file-link-in"),
        pytest.param("nothing.txt", False, ConfigError, "is a symbolic link.*which does not exist", id="dangling-in"),
    ],
)
@pytest.mark.parametrize("method", ["upload", "upload_files"])
def test_v1_upload_never_writes_through_a_link(
    store: Datastore,
    tmp_path: Path,
    target: str,
    overwrite: bool,
    error: type[Exception],
    message: str,
    method: str,
) -> None:
    from airflow_mlpipe.compat.data import V1Datastore

    root = Path(store.root)
    (tmp_path / "outside/x.txt").write_text("outside, unchanged")
    (tmp_path / "upsrc").mkdir()
    (tmp_path / "upsrc/u.txt").write_text("uploaded")
    (root / "updst2").mkdir()
    os.symlink(tmp_path / "outside" / target[1:] if target.startswith("@") else root / target, root / "updst2/u.txt")
    before, outside = _entries(root), _entries(tmp_path / "outside")
    v1 = V1Datastore.of(store)
    with pytest.raises(error, match=rf"target_path: datastore 'lake': path 'updst2/u.txt'.*{message}"):
        if method == "upload":
            v1.upload(str(tmp_path / "upsrc"), target_path="updst2", overwrite=overwrite)
        else:
            v1.upload_files([str(tmp_path / "upsrc/u.txt")], target_path="updst2", overwrite=overwrite)
    assert (_entries(root), _entries(tmp_path / "outside")) == (before, outside)


@pytest.mark.parametrize(
    ("files", "relative_root", "target", "message"),
    [
        pytest.param(["x/_mlpipe/registry/evil.json"], "x", None, r"'_mlpipe/registry/evil.json' is inside", id="root"),
        pytest.param(["x/_MLPIPE/runs/r.json"], "x", None, r"'_MLPIPE/runs/r.json' is inside", id="root-case"),
        pytest.param(["f/_MLPIPE_COMPLETE"], None, "mk", r"'mk/_MLPIPE_COMPLETE' names", id="marker"),
        pytest.param(["f/_MLPIPE_TRANSFER"], None, "victim", r"'victim/_MLPIPE_TRANSFER' names", id="journal"),
        pytest.param(["f/sub/_mlpipe_complete"], "f", "mk", r"'mk/sub/_mlpipe_complete' names", id="nested-marker"),
        pytest.param(["f/_MLPIPE_COMPLETE."], None, "mk", r"'mk/_MLPIPE_COMPLETE.' names", id="marker-dot"),
        pytest.param(["x/sub/_mlpipe/r.json"], "x", "t", r"'t/sub/_mlpipe/r.json' is inside", id="nested-folder"),
        pytest.param(["x/_mlpipe./r.json"], "x", None, r"'_mlpipe./r.json' is inside '_mlpipe./'", id="folder-dot"),
        pytest.param(["f/a\\b.txt"], None, "mk", r"'mk/a\\\\b.txt' contains a backslash", id="backslash"),
    ],
)
def test_v1_upload_files_checks_each_file_below_the_target(
    store: Datastore, tmp_path: Path, files: list[str], relative_root: str | None, target: str | None, message: str
) -> None:
    from airflow_mlpipe.compat.data import V1Datastore

    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    ok = tmp_path / (relative_root or "f") / "ok.txt"
    ok.parent.mkdir(exist_ok=True)
    ok.write_text("ok")
    before = _snapshot(Path(store.root))
    paths = [str(ok), *(str(tmp_path / name) for name in files)]
    root = str(tmp_path / relative_root) if relative_root else None
    with pytest.raises(ReservedPathError if "backslash" not in message else PathOutsideDatastoreError) as info:
        V1Datastore.of(store).upload_files(paths, relative_root=root, target_path=target, overwrite=True)
    assert str(info.value).startswith("upload destination: datastore 'lake': path ")
    assert re.search(message, str(info.value))
    assert _snapshot(Path(store.root)) == before


def test_v1_upload_checks_each_file_below_the_target(store: Datastore, tmp_path: Path) -> None:
    from airflow_mlpipe.compat.data import V1Datastore

    (tmp_path / "up/sub").mkdir(parents=True)
    (tmp_path / "up/a.txt").write_text("a")
    (tmp_path / "up/sub/_MLPIPE_COMPLETE").write_text("{}")
    before = _snapshot(Path(store.root))
    with pytest.raises(ReservedPathError, match=r"^upload destination: .*'mk2/sub/_MLPIPE_COMPLETE' names"):
        V1Datastore.of(store).upload(str(tmp_path / "up"), target_path="mk2", overwrite=True)
    assert _snapshot(Path(store.root)) == before


def test_v1_upload_without_a_target_writes_to_the_root(store: Datastore, tmp_path: Path) -> None:
    from airflow_mlpipe.compat.data import V1Datastore

    (tmp_path / "src7/sub").mkdir(parents=True)
    (tmp_path / "src7/a.txt").write_text("a")
    (tmp_path / "src7/sub/b.txt").write_text("b")
    (tmp_path / "one.txt").write_text("1")
    v1 = V1Datastore.of(store)
    v1.upload(str(tmp_path / "src7"))
    v1.upload(str(tmp_path / "one.txt"))
    assert (store.read_bytes("a.txt"), store.read_bytes("sub/b.txt"), store.read_bytes("one.txt")) == (b"a", b"b", b"1")
