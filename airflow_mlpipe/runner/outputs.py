"""Step outputs on the compute: a staging folder per output while the script runs, then staged at the destination.

Staging at the destination puts the files in place without a completion marker, so nothing reads them as
complete; the runner then verifies them and writes the attempt's commit record (``steps.records.write_commit``),
the one point at which all outputs become the attempt's result together. Markers and registrations follow in the
finish path. A destination that already holds a committed output is never written: its bytes may be named by a
registered dataset version or read by a later step. On a local store the committed files are read-only (0444).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets.manifest import Manifest, ManifestEntry
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.fingerprint.identity import identities
from airflow_mlpipe.runner.claims import check_claim, claim, claim_path, is_fixed
from airflow_mlpipe.storage.committed import refuse_committed_around
from airflow_mlpipe.storage.conditional import read_tagged
from airflow_mlpipe.storage.confine import confined_path
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.listing import JOURNAL_NAME
from airflow_mlpipe.storage.transfer_checks import refused_paths
from airflow_mlpipe.storage.transfer_errors import some_files
from airflow_mlpipe.storage.transfer_links import refuse_links_on_the_way


class StagingError(Exception):
    """The staged files at a destination are not the files the script wrote."""


@dataclass
class OutputPlan:
    name: str
    store: Datastore
    path: str
    mode: str
    source_globs: tuple[str, ...]
    staging: str
    claimed_by: AttemptId | None = None  # a fixed destination's claim (``runner.claims``), checked when staging

    @property
    def in_place(self) -> bool:
        """Local datastore, mount mode: stage next to the destination and rename into place (no copy)."""
        return self.store.is_local and self.mode == "mount"


def prepare_outputs(
    outputs: tuple[Mapping[str, Any], ...], workdir: str, attempt: AttemptId | None = None
) -> dict[str, OutputPlan]:
    """A staging folder for each output, once its destination is checked (and, for ``attempt``, a fixed one
    claimed)."""
    plans = {}
    for spec in outputs:
        name = str(spec["name"])
        store = Datastore.get(str(spec["datastore"]))
        path = str(spec["path"])
        mode = str(spec.get("mode", "mount"))
        confined_path(store, path, argument=f"output {name!r} destination")
        # not through a link inside the store either: it would write into another folder (a committed one)
        refuse_links_on_the_way(store, [path], argument=f"output {name!r} destination")
        refuse_committed(name, store, path)
        refuse_committed_around(store, path, argument=f"output {name!r}")
        claimed_by = attempt if attempt is not None and is_fixed(spec) else None
        if claimed_by is not None:
            if read_tagged(store, claim_path(path)) is None:  # no step run ever claimed it: nothing there is ours
                refuse_foreign_files(name, store, path)
            claim(name, store, path, claimed_by)
        if store.is_local and mode == "mount":
            dest = store.full_path(path)
            staging = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.staging-{uuid.uuid4().hex[:8]}")
        else:
            staging = os.path.join(workdir, "outputs", name)
        os.makedirs(staging, exist_ok=True)
        plans[name] = OutputPlan(name, store, path, mode, tuple(spec.get("source_globs") or ()), staging, claimed_by)
    return plans


def refuse_committed(name: str, store: Datastore, path: str) -> None:
    """A destination that holds a committed output is never written again (whatever ``overwrite`` says): a
    registered dataset version names its bytes, and a later step may be reading them."""
    if not store.is_complete(path):
        return
    try:
        marker = store.read_marker(path)
    except (ValueError, TypeError):
        marker = {}
    who = f"step run {marker['step_run_id']}" if marker.get("step_run_id") else "an earlier step run"
    registered = marker.get("registered")
    if isinstance(registered, dict) and registered.get("name"):
        who += f", registered as dataset {registered['name']!r} version {registered.get('version')}"
    raise ConfigError(
        f"output {name!r}: {path!r} in datastore {store.name!r} already holds the committed output of {who}; a "
        "committed output is never overwritten, so that the bytes a registered version names never change: add "
        "{run-id} to the destination, e.g. (datastore, 'models/{run-id}'), so that every run writes its own folder "
        "(register_on_complete('NAME') then keeps 'the latest' as the dataset's newest version)"
    )


def refuse_foreign_files(name: str, store: Datastore, path: str) -> None:
    """A fixed destination that no step run has claimed yet holds no file a step run wrote: files there were put
    by hand, by a transfer or an upload, and a dataset version registered from them may name them. Staging replaces
    a destination's files, so such a destination is refused before the script runs (one listing; a destination
    with ``{run-id}`` is the step run's own and is not asked)."""
    if store.isfile(path):
        found = [path]
    else:
        try:
            listed = store.list(path, recursive=True) if store.exists(path) else []
        except (FileNotFoundError, NotADirectoryError):
            listed = []
        found = sorted(p for p in listed if p.rsplit("/", 1)[-1] not in (COMPLETE_MARKER, JOURNAL_NAME))
    if not found:
        return
    shown = ", ".join(repr(p) for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    raise ConfigError(
        f"output {name!r}: {path!r} in datastore {store.name!r} already holds {len(found)} file(s) that no step run "
        f"wrote ({shown}); writing the output there would replace them, and a dataset version registered from them "
        "may name them: choose a destination of its own, e.g. (datastore, 'models/{run-id}'), or move those files "
        "first; nothing was written"
    )


def refuse_links(plans: Mapping[str, OutputPlan]) -> None:
    """The script wrote files, not symbolic links, into each output's folder: a link would be committed (a
    local store keeps it as it is) pointing out of the datastore, or staged as the bytes of a file elsewhere that
    can change. Checked before anything is staged, so the attempt commits nothing."""
    for plan in plans.values():
        links = _links_below(plan.staging)
        if links:
            shown = ", ".join(f"{rel!r} -> {target!r}" for rel, target in links[:3])
            more = f" and {len(links) - 3} more" if len(links) > 3 else ""
            raise StagingError(
                f"output {plan.name!r}: the script wrote {len(links)} symbolic link(s) into the folder given for the "
                f"output ({shown}{more}); an output holds files, and a link would point out of the datastore: copy "
                "the files themselves there; nothing was committed"
            )


def refuse_reserved_names(plans: Mapping[str, OutputPlan]) -> None:
    """Every file the script wrote for an output gets a path at the destination that a user could give, by the
    rule a transfer applies to each file it writes (``transfer_checks.refused_paths``): none below a folder named
    ``_mlpipe`` (a forged registry for a datastore rooted there), none named as a completion marker or a journal (a
    forged marker), both as stores keep names, no backslash. Checked before anything is staged, so the attempt
    commits nothing (and, staged in place, the folder never reaches the destination)."""
    for plan in plans.values():
        written = _staged_files(plan)
        if plan.in_place:  # the folder is renamed into place as it is: its empty folders too
            written.update(dict.fromkeys(_empty_folders_below(plan.staging), 0))
        refused = refused_paths(plan.path, sorted(written), argument=f"output {plan.name!r}", datastore=plan.store.name)
        if refused:
            rels = [rel for rel, _ in refused]
            reason = str(refused[0][1]).removeprefix(f"output {plan.name!r}: ")
            raise StagingError(
                f"output {plan.name!r}: the script wrote {len(rels)} file(s) into the folder given for the output "
                f"whose paths mlpipe does not commit ({some_files(rels, 3)}); the first: {reason}. Rename those "
                "files or folders in the script; nothing was committed"
            )


def _empty_folders_below(folder: str) -> list[str]:
    return [
        os.path.relpath(dirpath, folder).replace(os.sep, "/")
        for dirpath, dirnames, filenames in os.walk(folder)
        if dirpath != folder and not dirnames and not filenames
    ]


def _links_below(folder: str) -> list[tuple[str, str]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for entry in (*dirnames, *filenames):
            full = os.path.join(dirpath, entry)
            if os.path.islink(full):
                found.append((os.path.relpath(full, folder).replace(os.sep, "/"), os.readlink(full)))
    return sorted(found)


def refuse_empty_registrations(outputs: Iterable[Mapping[str, Any]], plans: Mapping[str, OutputPlan]) -> None:
    """An output registered on completion must hold files: a dataset version that names none is a script that
    wrote its files elsewhere. Checked before anything is staged, so the attempt commits nothing."""
    for spec in outputs:
        registration = spec.get("registration")
        plan = plans[str(spec["name"])]
        if registration and not spec.get("file") and not _staged_files(plan):
            raise StagingError(
                f"output {plan.name!r} is empty: the script wrote no files into the folder given for it, so there "
                f"is nothing to register as dataset {registration['name']!r}; nothing was committed or registered "
                "(write the files into the path the output's argument or run.output_datasets names)"
            )


def refuse_unmatched_globs(plans: Mapping[str, OutputPlan]) -> None:
    """Each of an upload's ``source_globs`` must match a file the script wrote: the user named files, and an
    output uploaded without them would be committed (and registered) as if complete. Checked before anything is
    staged, so the attempt commits nothing."""
    for plan in plans.values():
        if plan.in_place or not plan.source_globs:
            continue
        written = sorted(_staged_files(dataclasses.replace(plan, source_globs=())))
        unmatched = [g for g in plan.source_globs if not any(fnmatch.fnmatch(rel, g) for rel in written)]
        if unmatched:
            count = f"{len(written)} file{'s' if len(written) != 1 else ''}"
            there = f"it holds {count}, e.g. {written[:3]}" if written else "it is empty"
            raise StagingError(
                f"output {plan.name!r}: source_globs {unmatched} match no file in the folder the script wrote for it "
                f"({there}); nothing was committed: write the files there (the path the output's argument or "
                "run.output_datasets names), or fix the globs, which are relative to that folder (e.g. '*.csv', "
                "'model/*')"
            )


def discard(plans: Mapping[str, OutputPlan]) -> None:
    for plan in plans.values():
        shutil.rmtree(plan.staging, ignore_errors=True)


def stage(plan: OutputPlan) -> Manifest:
    """Put the staged files at the destination, without a completion marker, and return their manifest after
    checking that the destination holds exactly the files staged, with their sizes."""
    store, path = plan.store, plan.path
    confined_path(store, path, argument=f"output {plan.name!r} destination")
    refuse_links_on_the_way(store, [path], argument=f"output {plan.name!r} destination")
    refuse_committed(plan.name, store, path)
    refuse_committed_around(store, path, argument=f"output {plan.name!r}")
    if os.path.islink(plan.staging):  # the script replaced its output folder by a link: staging would follow it
        raise StagingError(
            f"output {plan.name!r}: the script replaced the folder given for the output by a symbolic link (to "
            f"{os.readlink(plan.staging)}); an output is the files written into that folder: write them there; "
            "nothing was committed"
        )
    refuse_links({plan.name: plan})
    refuse_reserved_names({plan.name: plan})
    if plan.claimed_by is not None:
        check_claim(plan.name, store, path, plan.claimed_by)
    expected = _staged_files(plan)
    if store.exists(path):  # leftovers of an attempt that never committed: nobody reads an unmarked folder
        store.delete(path, recursive=True)
    if plan.in_place:
        os.rename(plan.staging, store.full_path(path))
    elif expected:
        _upload(plan, sorted(expected))
    infos = (
        {
            p: i
            for p, i in store.list(path, recursive=True, detail=True).items()
            if not p.endswith("/" + COMPLETE_MARKER)
        }
        if store.exists(path)
        else {}
    )
    prefix = path.rstrip("/") + "/"
    found = {p[len(prefix) :]: int(i.get("size") or 0) for p, i in infos.items()}
    if store.is_local:
        _read_only_files(store.full_path(path))
    if found != expected:
        missing = sorted(set(expected) - set(found))[:5]
        other = sorted(p for p in found if p not in expected or found[p] != expected[p])[:5]
        raise StagingError(
            f"output {plan.name}: {store.uri(path)} does not hold the files the script wrote (missing {missing}, "
            f"unexpected or resized {other}); nothing was committed"
        )
    return Manifest.of(ManifestEntry(store.name, ident) for ident in identities(store, infos).values())


def _read_only_files(folder: str) -> None:
    """On a local store the staged files become read-only (0444) before they are committed: a later step (a
    consumer reading the folder, a script that writes to a path it should not) cannot write into bytes that a
    registered version names. Folders stay writable: a transfer may add files, and gc deletes them."""
    for dirpath, _, filenames in os.walk(folder):
        for fname in filenames:
            full = os.path.join(dirpath, fname)
            if not os.path.islink(full):
                os.chmod(full, 0o444)


def _staged_files(plan: OutputPlan) -> dict[str, int]:
    """Relative path → size of the files to stage (``source_globs`` filter an upload)."""
    files = {}
    for dirpath, _, filenames in os.walk(plan.staging):
        for fname in filenames:
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, plan.staging).replace(os.sep, "/")
            if plan.in_place or not plan.source_globs or any(fnmatch.fnmatch(rel, g) for g in plan.source_globs):
                files[rel] = os.path.getsize(full)
    return files


def _upload(plan: OutputPlan, files: list[str]) -> None:
    from airflow_mlpipe.storage.transfer import transfer

    staging_store = Datastore(f"{plan.name}-staging", "file://" + os.path.abspath(plan.staging))
    transfer(
        staging_store, "", plan.store, plan.path, kind="directory", overwrite=True, files=files, mark_complete=False
    )
