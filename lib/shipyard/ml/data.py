"""Training data: read in input order, checked, split as scikit-learn splits it.

When the data fits in memory (``max_in_memory``), the whole table is read through the
Dask cluster into one pandas frame with its rows in input order, and the held-out split
is ``sklearn.model_selection.train_test_split`` with the spec's ``random_state`` and
``stratify``: the same rows a plain scikit-learn script would hold out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from shipyard.core.errors import InputDataError
from shipyard.data.readers import read_input
from shipyard.ml.checks import feature_columns
from shipyard.ml.spec import SklearnWorkload

__all__ = ["TrainingData", "load_frame", "prepare", "split", "column_kinds"]


@dataclass
class TrainingData:
    """Features and target, the task, and which features are numeric or categorical."""

    X: pd.DataFrame
    y: pd.Series | None
    task: str
    numeric: list[str]
    categorical: list[str]

    @property
    def classes(self) -> list | None:
        if self.task != "classification":
            return None
        return sorted(pd.unique(self.y).tolist(), key=lambda v: (str(type(v)), v))


def column_kinds(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numeric (bools included) and categorical (strings, categories, objects) features."""
    numeric = [c for c in X.columns if ptypes.is_numeric_dtype(X[c].dtype)]
    return numeric, [c for c in X.columns if c not in numeric]


def load_frame(block: SklearnWorkload, columns: list[str]) -> pd.DataFrame:
    """The input's ``columns``, read on the cluster, as one pandas frame in input order."""
    frame = read_input(block.input, columns=columns).compute()
    return frame.reset_index(drop=True)


def prepare(block: SklearnWorkload, frame: pd.DataFrame, task: str) -> TrainingData:
    """Check the data a job trains on; raise :class:`InputDataError` naming the problem."""
    source = block.input.path
    if frame.empty:
        raise InputDataError(f"{source} has no rows to train on")
    features = feature_columns(block, list(frame.columns))
    if not features:
        raise InputDataError(f"{source}: no feature columns besides the target "
                             f"{block.target!r}")
    X = frame[features]
    y = None
    if block.target is not None:
        y = frame[block.target]
        missing = int(y.isna().sum())
        if missing:
            raise InputDataError(
                f"target {block.target!r} in {source} has {missing} missing value(s); drop "
                "those rows first (a dataframe job's dropna: {subset: [" + block.target + "]})")
        if task == "regression" and not (ptypes.is_numeric_dtype(y.dtype)
                                         and not ptypes.is_bool_dtype(y.dtype)):
            raise InputDataError(f"target {block.target!r} in {source} is {y.dtype}; "
                                 "regression needs a numeric target (or use task: "
                                 "classification)")
        if task == "classification":
            counts = y.value_counts()
            if len(counts) < 2:
                raise InputDataError(
                    f"target {block.target!r} in {source} has a single class "
                    f"({counts.index[0]!r}); classification needs at least two")
            if ptypes.is_float_dtype(y.dtype) and len(counts) > 0.5 * len(y):
                raise InputDataError(
                    f"target {block.target!r} in {source} has {len(counts)} distinct float "
                    "values; for a continuous target use task: regression")
    numeric, categorical = column_kinds(X)
    if categorical and block.preprocess.categorical == "none":
        raise InputDataError(
            f"features {', '.join(categorical)} in {source} are not numeric and "
            "preprocess.categorical is none; use one_hot or ordinal, or leave them out of "
            "features")
    if block.preprocess.impute == "none":
        holes = [c for c in features if X[c].isna().any()]
        if holes:
            raise InputDataError(
                f"features {', '.join(holes)} in {source} have missing values and "
                "preprocess.impute is none; impute them (mean, median, most_frequent) or "
                "fill them in a dataframe job")
    infinite = [c for c in numeric if np.isinf(X[c].to_numpy(dtype="float64",
                                                               na_value=np.nan)).any()]
    if infinite:
        raise InputDataError(f"features {', '.join(infinite)} in {source} hold infinite "
                             "values, which no scikit-learn model accepts; replace them in "
                             "a dataframe job")
    return TrainingData(X, y, task, numeric, categorical)


def split(block: SklearnWorkload, data: TrainingData):
    """``X_train, X_test, y_train, y_test`` exactly as ``train_test_split`` gives them."""
    from sklearn.model_selection import train_test_split

    spec = block.split
    stratify = spec.stratify if spec.stratify is not None else data.task == "classification"
    if data.y is None:
        X_train, X_test = train_test_split(data.X, test_size=spec.test_size,
                                           random_state=spec.random_state,
                                           shuffle=spec.shuffle)
        return X_train, X_test, None, None
    try:
        return train_test_split(data.X, data.y, test_size=spec.test_size,
                                random_state=spec.random_state, shuffle=spec.shuffle,
                                stratify=data.y if stratify else None)
    except ValueError as err:
        raise InputDataError(f"the test split of {block.input.path} failed: {err} (a class "
                             "with too few rows for stratify; set split.stratify: false or "
                             "add rows)") from None
