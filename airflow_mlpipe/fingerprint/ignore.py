"""Which files of a source folder count: ``.amlignore`` / ``.gitignore`` rules with git's semantics.

As Azure ML does, a folder's ``.amlignore`` is used when it has one, else its ``.gitignore`` (generally: the first
of ``ignore_file_names`` present in that folder). Rules in a sub-folder's ignore file apply below that folder and
win over those of the folders above it (so ``!keep.log`` there can re-include a file). As in git, nothing below an
excluded folder can be re-included: an excluded folder is not entered at all. ``.git/``, ``__pycache__/`` and
``*.pyc`` are always left out.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import pathspec

ALWAYS_SKIPPED_FOLDERS = frozenset({".git", "__pycache__"})
ALWAYS_SKIPPED_SUFFIXES = (".pyc",)
DEFAULT_IGNORE_FILE_NAMES = (".amlignore", ".gitignore")


@dataclass(frozen=True)
class _Rules:
    base: str  # the folder the ignore file sits in, relative to the scanned root ("" for the root)
    spec: pathspec.GitIgnoreSpec


@dataclass(frozen=True)
class IgnoreRules:
    """The rules in force in one folder: those of the ignore files from the root down to it, deepest last."""

    stack: tuple[_Rules, ...] = ()

    def entering(
        self, rel_dir: str, folder: str, names: Collection[str], ignore_file_names: Sequence[str]
    ) -> IgnoreRules:
        """The rules below ``rel_dir`` (whose entries are ``names``): these plus its own ignore file, if any."""
        for candidate in ignore_file_names:
            if candidate in names:
                spec = read_ignore_file(os.path.join(folder, candidate))
                return IgnoreRules((*self.stack, _Rules(rel_dir, spec))) if spec is not None else self
        return self

    def excludes(self, rel_path: str, *, is_dir: bool) -> bool:
        """Whether ``rel_path`` (POSIX, relative to the scanned root) is left out."""
        name = rel_path.rpartition("/")[2]
        if name == ".git" or (name in ALWAYS_SKIPPED_FOLDERS if is_dir else name.endswith(ALWAYS_SKIPPED_SUFFIXES)):
            return True  # ".git" may also be a file (worktrees, submodules)
        if not self.stack:
            return False
        for rules in reversed(self.stack):  # the deepest ignore file that has a say decides
            rel = rel_path[len(rules.base) + 1 :] if rules.base else rel_path
            verdict = rules.spec.check_file(rel + "/" if is_dir else rel).include
            if verdict is not None:
                return verdict
        return False


def read_ignore_file(path: str) -> pathspec.GitIgnoreSpec | None:
    """The rules in an ignore file, or None when it has none. ``OSError`` when it cannot be read."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    if not any(line.strip() and not line.startswith("#") for line in lines):
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines)
