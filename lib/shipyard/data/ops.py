"""The steps of a dataframe job, on Dask DataFrames, each giving what pandas gives.

Every function takes the frame, the step's arguments and the :class:`StepEnv`, and
returns the new (lazy) frame. Steps that need a statistic of the whole dataset
(``fillna`` with ``mean``, ``cut`` with a number of bins, ``get_dummies``' categories,
``scale``) compute it first, in a pass over the data as it is at that step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from shipyard.data import spec as s
from shipyard.data.stats import column_statistics

__all__ = ["StepEnv", "apply_step", "STEP_FUNCTIONS"]

log = logging.getLogger("shipyard.data")


@dataclass
class StepEnv:
    """What steps may use besides the frame: the other inputs, and size estimates."""

    read: Callable[[str], dd.DataFrame]
    estimated_bytes: Callable[[str], int | None]
    #: a merge's right side below this many bytes is broadcast to every partition
    broadcast_limit: int = 256 * 2**20
    notes: list[str] = field(default_factory=list)


def _query(frame: dd.DataFrame, expression: str, env: StepEnv) -> dd.DataFrame:
    return frame.query(expression)


def _fillna(frame: dd.DataFrame, fills: dict[str, Any], env: StepEnv) -> dd.DataFrame:
    wanted = {c: v for c, v in fills.items() if v in s.STATISTICS}
    values = {c: v for c, v in fills.items() if c not in wanted}
    if wanted:
        stats = column_statistics(frame, wanted)
        log.info("fillna statistics: %s", stats)
        env.notes.append(f"fillna: {stats}")
        values.update(stats)
        # a mean or median of an integer column is a float: fill a float column,
        # as pandas does for an integer column with missing values
        casts = {c: "float64" for c in wanted if wanted[c] in ("mean", "median")
                 and pd.api.types.is_integer_dtype(frame[c].dtype)}
        if casts:
            frame = frame.astype(casts)
    return frame.fillna(values)


def _dropna(frame: dd.DataFrame, args: s.DropnaArgs, env: StepEnv) -> dd.DataFrame:
    kwargs: dict[str, Any] = {"subset": args.subset}
    if args.thresh is not None:
        kwargs["thresh"] = args.thresh
    else:
        kwargs["how"] = args.how
    return frame.dropna(**kwargs)


def _assign(frame: dd.DataFrame, columns: dict[str, str], env: StepEnv) -> dd.DataFrame:
    for name, expression in columns.items():
        frame = frame.assign(**{name: frame.eval(expression)})
    return frame


def _cut(frame: dd.DataFrame, args: s.CutArgs, env: StepEnv) -> dd.DataFrame:
    column = frame[args.column]
    bins: Any = args.bins
    if isinstance(bins, int):
        # pandas spreads integer bins over the data's range: only min and max matter
        low, high = dask.compute(column.min(), column.max())
        _, bins = pd.cut(pd.Series([low, high], dtype="float64"), bins, retbins=True,
                         right=args.right, include_lowest=args.include_lowest)
        env.notes.append(f"cut {args.column}: edges {list(bins)}")
    options = {"bins": bins, "labels": args.labels, "right": args.right,
               "include_lowest": args.include_lowest}
    meta = pd.cut(pd.Series([], dtype="float64"), **options).rename(args.column)
    binned = column.map_partitions(pd.cut, meta=meta, **options)
    return frame.assign(**{args.into or args.column: binned})


def _astype(frame: dd.DataFrame, casts: dict[str, str], env: StepEnv) -> dd.DataFrame:
    return frame.astype(casts)


def _rename(frame: dd.DataFrame, names: dict[str, str], env: StepEnv) -> dd.DataFrame:
    return frame.rename(columns=names)


def _select(frame: dd.DataFrame, columns: list[str], env: StepEnv) -> dd.DataFrame:
    return frame[list(columns)]


def _drop(frame: dd.DataFrame, columns: list[str], env: StepEnv) -> dd.DataFrame:
    return frame.drop(columns=list(columns))


def _drop_duplicates(frame: dd.DataFrame, args: s.DropDuplicatesArgs,
                     env: StepEnv) -> dd.DataFrame:
    return frame.drop_duplicates(subset=args.subset, keep=args.keep)


def _merge(frame: dd.DataFrame, args: s.MergeArgs, env: StepEnv) -> dd.DataFrame:
    right = env.read(args.right)
    broadcast = args.broadcast
    size = env.estimated_bytes(args.right)
    if broadcast is None:
        # a broadcast keeps every row of the left side where it is; only inner and
        # left joins can be done that way
        broadcast = args.how in ("inner", "left") and size is not None and \
            size <= env.broadcast_limit
    options = {"how": args.how, "on": args.on, "left_on": args.left_on,
               "right_on": args.right_on, "suffixes": tuple(args.suffixes)}
    if broadcast and args.how in ("inner", "left"):
        small = right.compute()
        env.notes.append(f"merge {args.right}: broadcast ({len(small)} rows)")
        return frame.merge(small, **options)
    env.notes.append(f"merge {args.right}: shuffle join")
    return frame.merge(right, **options)


def _categories(frame: dd.DataFrame, columns: list[str]) -> dict[str, list]:
    """Each column's categories, as pandas' get_dummies would find them: a categorical's
    own (when known), otherwise the sorted distinct values."""
    known, unknown = {}, {}
    for column in columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.CategoricalDtype) and frame[column].cat.known:
            known[column] = list(dtype.categories)
        else:
            unknown[column] = frame[column].dropna().drop_duplicates()
    if unknown:
        for column, values in zip(unknown, dask.compute(*unknown.values())):
            known[column] = sorted(values.tolist())
    return known


def _get_dummies(frame: dd.DataFrame, args: s.GetDummiesArgs, env: StepEnv) -> dd.DataFrame:
    categories = _categories(frame, list(args.columns))
    env.notes.append(f"get_dummies categories: {categories}")
    frame = frame.astype({c: pd.CategoricalDtype(v) for c, v in categories.items()})
    return dd.get_dummies(frame, columns=list(args.columns), prefix_sep=args.prefix_sep,
                          drop_first=args.drop_first, dtype=args.dtype)


def _scale(frame: dd.DataFrame, args: s.ScaleArgs, env: StepEnv) -> dd.DataFrame:
    from dask_ml.preprocessing import MinMaxScaler, StandardScaler

    columns = list(args.columns)
    scaler = StandardScaler() if args.method == "standard" else MinMaxScaler()
    scaled = scaler.fit_transform(frame[columns].astype("float64"))
    if args.method == "standard":
        env.notes.append(f"scale: mean {dict(zip(columns, np.asarray(scaler.mean_).tolist()))}")
    return frame.assign(**{c: scaled[c] for c in columns})


def _groupby(frame: dd.DataFrame, args: s.GroupbyArgs, env: StepEnv) -> dd.DataFrame:
    by = list(args.by)
    grouped = frame.groupby(by, dropna=args.dropna, observed=True, sort=True)
    result = grouped.agg({c: list(f) for c, f in args.agg.items()})
    result.columns = [f"{column}_{function}" for column, function in result.columns]
    return result.reset_index()


def _sort_values(frame: dd.DataFrame, args: s.SortValuesArgs, env: StepEnv) -> dd.DataFrame:
    return frame.sort_values(list(args.by), ascending=args.ascending,
                             na_position=args.na_position)


def _sample(frame: dd.DataFrame, args: s.SampleArgs, env: StepEnv) -> dd.DataFrame:
    return frame.sample(frac=args.frac, replace=args.replace, random_state=args.random_state)


STEP_FUNCTIONS: dict[str, Callable[[dd.DataFrame, Any, StepEnv], dd.DataFrame]] = {
    "query": _query, "fillna": _fillna, "dropna": _dropna, "assign": _assign, "cut": _cut,
    "astype": _astype, "rename": _rename, "select": _select, "drop": _drop,
    "drop_duplicates": _drop_duplicates, "merge": _merge, "get_dummies": _get_dummies,
    "scale": _scale, "groupby": _groupby, "sort_values": _sort_values, "sample": _sample,
}


def apply_step(frame: dd.DataFrame, item: Any, env: StepEnv) -> dd.DataFrame:
    """Apply one validated step to ``frame``."""
    return STEP_FUNCTIONS[s.step_name(item)](frame, s.step_args(item), env)
