"""Azure ML's simple tabular transformations: ``keep_columns``, ``drop_columns``, ``take``, ``skip``,
``take_sample``, ``random_split`` and ``filter``.

Each returns a ``TabularView``: the dataset it came from plus the steps, applied when the table is read
(``to_pandas_dataframe``). A view is for reading in a script; it is not registrable and not a step input (pass the
dataset and transform it in the step).
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.core.checks import shown
from airflow_mlpipe.exceptions import DatasetError

if TYPE_CHECKING:
    import pandas as pd

Transform = Callable[["pd.DataFrame"], "pd.DataFrame"]


class TabularTransforms(ABC):
    """The transformations, for any object that can read itself as a table."""

    @abstractmethod
    def to_pandas_dataframe(self) -> pd.DataFrame:
        """The table the transformations apply to."""

    def _then(self, step: Transform) -> TabularView:
        return TabularView(self, (step,))

    def keep_columns(self, columns: str | Sequence[str], validate: bool = False) -> TabularView:
        names = _columns("keep_columns", columns)
        return self._then(lambda frame: frame[_existing(frame, names)])

    def drop_columns(self, columns: str | Sequence[str]) -> TabularView:
        names = _columns("drop_columns", columns)
        return self._then(lambda frame: frame.drop(columns=[c for c in names if c in frame.columns]))

    def take(self, count: int) -> TabularView:
        rows = _count("take", count)
        return self._then(lambda frame: frame.head(rows).reset_index(drop=True))

    def skip(self, count: int) -> TabularView:
        rows = _count("skip", count)
        return self._then(lambda frame: frame.iloc[rows:].reset_index(drop=True))

    def take_sample(self, probability: float, seed: int | None = None) -> TabularView:
        _check_fraction("take_sample: probability", probability)
        return self._then(lambda frame: frame.sample(frac=probability, random_state=seed).sort_index())

    def random_split(self, percentage: float, seed: int | None = None) -> tuple[TabularView, TabularView]:
        """Two views: about ``percentage`` of the rows, and the rest (the same ``seed``, the same split)."""
        _check_fraction("random_split: percentage", percentage)

        def chosen(frame: pd.DataFrame) -> pd.Index:
            return frame.sample(frac=percentage, random_state=seed).index

        first = self._then(lambda frame: frame.loc[frame.index.isin(chosen(frame))].reset_index(drop=True))
        second = self._then(lambda frame: frame.loc[~frame.index.isin(chosen(frame))].reset_index(drop=True))
        return first, second

    def filter(self, expression: str | Callable[[pd.DataFrame], Any]) -> TabularView:
        """Rows that match: a pandas query string (``"age > 30 and city == 'Oslo'"``) or a function of the frame
        that returns a boolean mask. Azure ML's expression objects (``ds['age'] > 30``) are not supported."""
        if isinstance(expression, str):
            return self._then(lambda frame: frame.query(expression).reset_index(drop=True))
        if callable(expression):
            return self._then(lambda frame: frame[expression(frame)].reset_index(drop=True))
        raise DatasetError(
            f'filter({expression!r}): write a pandas query string such as "age > 30", or a function of the '
            "DataFrame returning a boolean mask (lambda df: df['age'] > 30)"
        )


class TabularView(TabularTransforms):
    def __init__(self, source: TabularTransforms, steps: tuple[Transform, ...]) -> None:
        self._source, self._steps = source, steps

    def _then(self, step: Transform) -> TabularView:
        return TabularView(self._source, (*self._steps, step))

    def to_pandas_dataframe(self) -> pd.DataFrame:
        frame = self._source.to_pandas_dataframe()
        for step in self._steps:
            frame = step(frame)
        return frame

    def __repr__(self) -> str:
        return f"TabularView({self._source!r}, {len(self._steps)} steps)"


def _existing(frame: pd.DataFrame, names: list[str]) -> list[str]:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DatasetError(f"keep_columns: no column {missing[0]!r}; the columns are {list(frame.columns)!r}")
    return names


def _columns(method: str, columns: object) -> list[str]:
    """One column name or a list of them."""
    if isinstance(columns, str):
        return [columns]
    if isinstance(columns, (list, tuple)) and all(isinstance(c, str) for c in columns):
        return list(columns)
    raise DatasetError(
        f"{method}: columns {shown(columns)} must be a column name or a list of them, e.g. {method}(['age', 'city'])"
    )


def _count(method: str, count: object) -> int:
    """A number of rows: a whole number, 0 or more (``"3"``, ``-1`` or NaN would be read in some other way)."""
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
        raise DatasetError(
            f"{method}: count {shown(count)} must be a whole number of rows (0 or more), e.g. {method}(100)"
        )
    return int(count)


def _check_fraction(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise DatasetError(f"{what} {value!r} must be a number from 0 to 1, e.g. 0.8")
