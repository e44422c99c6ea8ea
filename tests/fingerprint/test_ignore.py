"""Which files a source snapshot keeps: .amlignore over .gitignore, nested rules, negation, fixed skips."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from airflow_mlpipe.fingerprint.tree import scan_tree
from tests.fingerprint.helpers import write_tree


def kept(root: Path, files: Mapping[str, str], **kwargs: object) -> list[str]:
    write_tree(root, files)
    return sorted(scan_tree(root, cache=False, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {".gitignore": "*.log\n", "a.py": "", "b.log": ""},
            [".gitignore", "a.py"],
            id="gitignore-alone",
        ),
        pytest.param(
            {".amlignore": "*.csv\n", ".gitignore": "*.log\n", "a.py": "", "b.log": "", "c.csv": ""},
            [".amlignore", ".gitignore", "a.py", "b.log"],
            id="amlignore-wins-over-gitignore",
        ),
        pytest.param(
            {".gitignore": "*.log\n!keep.log\n", "a.log": "", "keep.log": "", "sub/keep.log": "", "sub/b.log": ""},
            [".gitignore", "keep.log", "sub/keep.log"],
            id="negation",
        ),
        pytest.param(
            {".gitignore": "*.log\n", "sub/.gitignore": "!b.log\n", "a.log": "", "sub/b.log": "", "sub/c.log": ""},
            [".gitignore", "sub/.gitignore", "sub/b.log"],
            id="nested-file-re-includes",
        ),
        pytest.param(
            {"sub/.gitignore": "*.tmp\n", "x.tmp": "", "sub/y.tmp": "", "sub/deeper/z.tmp": ""},
            ["sub/.gitignore", "x.tmp"],
            id="nested-rules-apply-only-below-their-folder",
        ),
        pytest.param(
            {".gitignore": "/top.txt\n", "top.txt": "", "sub/top.txt": ""},
            [".gitignore", "sub/top.txt"],
            id="anchored-pattern",
        ),
        pytest.param(
            {".gitignore": "data/\n!data/keep.csv\n", "data/keep.csv": "", "data/x.csv": "", "a.py": ""},
            [".gitignore", "a.py"],
            id="nothing-under-an-excluded-folder-comes-back",
        ),
        pytest.param(
            {".gitignore": "build/\n", "build": "a file named like the folder pattern", "a.py": ""},
            [".gitignore", "a.py", "build"],
            id="folder-pattern-spares-a-file",
        ),
        pytest.param(
            {".git/config": "", "pkg/__pycache__/m.cpython-311.pyc": "", "m.pyc": "", "m.py": ""},
            ["m.py"],
            id="always-skipped",
        ),
        pytest.param(
            {"sub/.amlignore": "*.csv\n", "sub/.gitignore": "*.py\n", "sub/a.csv": "", "sub/a.py": ""},
            ["sub/.amlignore", "sub/.gitignore", "sub/a.py"],
            id="choice-made-per-folder",
        ),
        pytest.param(
            {".gitignore": "# only a comment\n\n", "a.py": ""},
            [".gitignore", "a.py"],
            id="empty-rules",
        ),
    ],
)
def test_ignore_rules(tmp_path: Path, files: Mapping[str, str], expected: list[str]) -> None:
    assert kept(tmp_path, files) == expected


def test_other_ignore_file_names(tmp_path: Path) -> None:
    files = {".dockerignore": "*.md\n", ".gitignore": "*.py\n", "a.md": "", "a.py": ""}
    assert kept(tmp_path, files, ignore_file_names=(".dockerignore",)) == [".dockerignore", ".gitignore", "a.py"]


def test_an_amlignored_file_does_not_change_the_digest(tmp_path: Path) -> None:
    write_tree(tmp_path, {".amlignore": "scratch/\n", "train.py": "print(1)\n"})
    before = scan_tree(tmp_path, cache=False).digest
    write_tree(tmp_path, {"scratch/notes.txt": "anything"})
    assert scan_tree(tmp_path, cache=False).digest == before
