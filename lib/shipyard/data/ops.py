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

from shipyard.core.errors import InputDataError
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
    # column by column: Dask rewrites frame.fillna({c: v})[c] into a Series.fillna that
    # ignores the mapping, so a later step reading column c alone saw it unfilled
    return frame.assign(**{column: frame[column].fillna(value)
                           for column, value in values.items()})


def _dropna(frame: dd.DataFrame, args: s.DropnaArgs, env: StepEnv) -> dd.DataFrame:
    kwargs: dict[str, Any] = {"subset": args.subset}
    if args.thresh is not None:
        kwargs["thresh"] = args.thresh
    else:
        kwargs["how"] = args.how
    return frame.dropna(**kwargs)


def _assign_partition(partition: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    out = partition.copy(deep=False)
    for name, expression in columns.items():
        out[name] = out.eval(expression)
    return out


def _assign(frame: dd.DataFrame, columns: dict[str, str], env: StepEnv) -> dd.DataFrame:
    # pandas' own eval on each partition: Dask's assign/eval expressions merge columns
    # with identical expressions and moved a re-assigned column to the end (its
    # metadata saying otherwise), so later steps could not find it
    return frame.map_partitions(_assign_partition, columns,
                                meta=_assign_partition(frame._meta, columns))


def _cut(frame: dd.DataFrame, args: s.CutArgs, env: StepEnv) -> dd.DataFrame:
    column = frame[args.column]
    bins: Any = args.bins
    # whether a value of the column falls in no bin: known from the pass below for
    #: integer bins, else found by a pass of its own where it matters (bin numbers)
    in_no_bin: bool | None = None
    if isinstance(bins, int):
        # pandas spreads integer bins over the data's range: only min and max matter,
        # and every value but a missing one falls in a bin
        low, high, rows, in_no_bin = dask.compute(column.min(), column.max(), column.size,
                                                  column.isna().any())
        if rows == 0:
            raise InputDataError(f"cut: no rows are left at this step, and {bins} bins "
                                 f"over an empty column {args.column!r} are undefined")
        if pd.isna(low):
            return _cut_all_missing(frame, column, args)
        _, bins = pd.cut(pd.Series([low, high], dtype="float64"), bins, retbins=True,
                         right=args.right, include_lowest=args.include_lowest)
        env.notes.append(f"cut {args.column}: edges {list(bins)}")
    options = {"bins": bins, "labels": args.labels, "right": args.right,
               "include_lowest": args.include_lowest}
    meta = pd.cut(pd.Series([], dtype="float64"), **options).rename(args.column)
    if args.labels is False:
        # bin numbers: pandas gives int64, or float64 where any value of the column falls
        # in no bin (missing, or outside the edges); each partition would decide alone
        if in_no_bin is None:
            in_no_bin = _any_in_no_bin(column, options)
        codes = "float64" if in_no_bin else "int64"
        meta = meta.astype(codes)
        binned = column.map_partitions(_bin_numbers, options, codes, meta=meta)
    else:
        binned = column.map_partitions(pd.cut, meta=meta, **options)
    return frame.assign(**{args.into or args.column: binned})


def _bin_numbers(part: pd.Series, options: dict[str, Any], dtype: str) -> pd.Series:
    return pd.cut(part, **options).astype(dtype)


def _any_in_no_bin(column: dd.Series, options: dict[str, Any]) -> bool:
    """Whether ``pd.cut(column, **options)`` leaves any value of the whole column
    without a bin (one pass over it)."""
    per_partition = column.map_partitions(
        lambda part: pd.Series([bool(pd.cut(part, **options).isna().any())]),
        meta=pd.Series([], dtype=bool))
    return bool(per_partition.any().compute())


def _cut_all_missing(frame: dd.DataFrame, column: dd.Series, args: s.CutArgs) -> dd.DataFrame:
    """Integer bins over a column with only missing values: pandas gives missing values
    (one bin) or refuses (more: their edges, all NaN, are not unique). Its answer for one
    missing value is its answer for them all, so it decides here too."""
    try:
        probe = pd.cut(pd.Series([np.nan]), args.bins, labels=args.labels, right=args.right,
                       include_lowest=args.include_lowest)
    except ValueError as err:
        raise InputDataError(f"cut: column {args.column!r} has no values, so {args.bins} "
                             f"bins over its range are undefined ({str(err).splitlines()[0]}); "
                             "give the bin edges") from None
    meta = probe.iloc[:0].rename(args.column)
    missing = column.map_partitions(
        lambda part: pd.Series(np.nan, index=part.index, dtype=meta.dtype, name=args.column),
        meta=meta)
    return frame.assign(**{args.into or args.column: missing})


def _astype(frame: dd.DataFrame, casts: dict[str, str], env: StepEnv) -> dd.DataFrame:
    to_category = [c for c, dtype in casts.items() if dtype == "category"]
    others = {c: dtype for c, dtype in casts.items() if c not in to_category}
    if others:
        frame = frame.astype(others)
    if to_category:
        # pandas takes the categories from all the values, sorted; Dask would leave them
        # unknown, so a later filter or sort would see only what is left in a partition
        categories = _categories(frame, to_category)
        frame = frame.astype({c: pd.CategoricalDtype(v) for c, v in categories.items()})
    return frame


def _rename(frame: dd.DataFrame, names: dict[str, str], env: StepEnv) -> dd.DataFrame:
    return frame.rename(columns=names)


def _select(frame: dd.DataFrame, columns: list[str], env: StepEnv) -> dd.DataFrame:
    return frame[list(columns)]


def _drop(frame: dd.DataFrame, columns: list[str], env: StepEnv) -> dd.DataFrame:
    return frame.drop(columns=list(columns))


ROW = "__shipyard_row__"


def _tag_rows(partition: pd.DataFrame, partition_info: dict | None = None) -> pd.DataFrame:
    """Number each row by where it is in the whole frame: partition, then position."""
    number = (partition_info or {}).get("number", 0)
    return partition.assign(**{ROW: (number << 40) + np.arange(len(partition), dtype="int64")})


def _dedupe(partition: pd.DataFrame, subset: list[str], keep: Any) -> pd.DataFrame:
    ordered = partition.sort_values(ROW, kind="stable")
    return ordered.drop_duplicates(subset=subset, keep=keep)


def _drop_duplicates(frame: dd.DataFrame, args: s.DropDuplicatesArgs,
                     env: StepEnv) -> dd.DataFrame:
    # Rows are tagged with their original position, shuffled so that all copies of a
    # row meet in one partition, deduplicated there in original order, and put back in
    # original order: "first" and "last" mean what they mean in pandas, for this step
    # and for later ones (Dask's own version loses the order in its shuffle, and has no
    # keep=False).
    subset = list(args.subset or frame.columns)
    tagged = frame.map_partitions(_tag_rows, meta=frame._meta.assign(**{ROW: np.int64(0)}))
    kept = tagged.shuffle(on=subset).map_partitions(_dedupe, subset, args.keep,
                                                    meta=tagged._meta)
    # back in order, each row in its original partition: the tags' ranges are known, so
    # no pass over the data is needed to find the partition boundaries
    count = frame.npartitions
    divisions = [number << 40 for number in range(count)] + [(count << 40) - 1]
    return kept.set_index(ROW, divisions=divisions).reset_index(drop=True)


def _align_keys(left: dd.DataFrame, right: dd.DataFrame, left_keys: list[str],
                right_keys: list[str]) -> tuple[dd.DataFrame, dd.DataFrame]:
    """Join keys compare by value in pandas even when one side is categorical; Dask's
    shuffle join needs one dtype, so a categorical key takes the other side's."""
    for left_key, right_key in zip(left_keys, right_keys):
        left_type, right_type = left[left_key].dtype, right[right_key].dtype
        left_cat = isinstance(left_type, pd.CategoricalDtype)
        right_cat = isinstance(right_type, pd.CategoricalDtype)
        if left_cat and not right_cat:
            left = left.assign(**{left_key: left[left_key].astype(right_type)})
        elif right_cat and not left_cat:
            right = right.assign(**{right_key: right[right_key].astype(left_type)})
        elif left_cat and right_cat and left_type != right_type:
            left = left.assign(**{left_key: left[left_key].astype(object)})
            right = right.assign(**{right_key: right[right_key].astype(object)})
    return left, right


def _merge(frame: dd.DataFrame, args: s.MergeArgs, env: StepEnv) -> dd.DataFrame:
    right = env.read(args.right)
    broadcast = args.broadcast
    size = env.estimated_bytes(args.right)
    if broadcast is None:
        # a broadcast keeps every row of the left side where it is; only inner and
        # left joins can be done that way
        broadcast = args.how in ("inner", "left") and size is not None and \
            size <= env.broadcast_limit
    frame, right = _align_keys(frame, right, list(args.on or args.left_on),
                               list(args.on or args.right_on))
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
            try:
                known[column] = sorted(values.tolist())
            except TypeError:  # mixed types: pandas keeps the order they appear in
                known[column] = values.tolist()
    return known


def _get_dummies(frame: dd.DataFrame, args: s.GetDummiesArgs, env: StepEnv) -> dd.DataFrame:
    categories = _categories(frame, list(args.columns))
    env.notes.append(f"get_dummies categories: {categories}")
    frame = frame.astype({c: pd.CategoricalDtype(v) for c, v in categories.items()})
    return dd.get_dummies(frame, columns=list(args.columns), prefix_sep=args.prefix_sep,
                          drop_first=args.drop_first, dtype=args.dtype)


_EPSILON = np.finfo(np.float64).eps


def _scale(frame: dd.DataFrame, args: s.ScaleArgs, env: StepEnv) -> dd.DataFrame:
    columns = list(args.columns)
    data = frame[columns].astype("float64")
    # one pass for what both methods need to know first
    largest, means, counts = dask.compute(data.abs().max(), data.mean(), data.count())
    infinite = [c for c in columns if np.isinf(largest[c])]
    if infinite:
        raise InputDataError(f"scale: column(s) {', '.join(map(repr, infinite))} hold "
                             "infinite values, which cannot be scaled (scikit-learn refuses "
                             "them too); replace them first, e.g. with fillna or query")
    if args.method == "minmax":
        from dask_ml.preprocessing import MinMaxScaler

        scaled = MinMaxScaler().fit_transform(data)
        return frame.assign(**{c: scaled[c] for c in columns})
    # Standard scaling as scikit-learn's StandardScaler: the variance in two passes
    # (dask-ml's one-pass E[x^2] - E[x]^2 cancels for near-constant columns), and
    # scikit-learn's rule for which columns count as constant (their scale is 1).
    mean = {c: float(means[c]) for c in columns}
    variances = dask.compute(*[((data[c] - mean[c]) ** 2).mean() for c in columns])
    scale = {}
    for column, variance in zip(columns, variances):
        n, m = float(counts[column]), mean[column]
        constant = variance <= n * _EPSILON * variance + (n * m * _EPSILON) ** 2
        scale[column] = 1.0 if constant or np.isnan(variance) else float(np.sqrt(variance))
    env.notes.append(f"scale: mean {mean}, std {scale}")
    return frame.assign(**{c: (data[c] - mean[c]) / scale[c] for c in columns})


#: aggregations Dask reduces exactly in a tree; the others are computed by pandas on whole
#: groups (after a shuffle on the keys): Dask's variance cancels, and it has no nunique
REDUCIBLE = frozenset({"sum", "mean", "count", "min", "max", "size", "first", "last"})


def _flatten(result: pd.DataFrame) -> pd.DataFrame:
    result.columns = [f"{column}_{function}" for column, function in result.columns]
    return result


def _whole_groups(partition: pd.DataFrame, by: list[str], agg: dict[str, list[str]],
                  dropna: bool) -> pd.DataFrame:
    grouped = partition.groupby(by, dropna=dropna, observed=True, sort=True)
    return _flatten(grouped.agg(agg))


def _groupby(frame: dd.DataFrame, args: s.GroupbyArgs, env: StepEnv) -> dd.DataFrame:
    by = list(args.by)
    tree = {c: [f for f in fs if f in REDUCIBLE] for c, fs in args.agg.items()}
    whole = {c: [f for f in fs if f not in REDUCIBLE] for c, fs in args.agg.items()}
    tree = {c: fs for c, fs in tree.items() if fs}
    whole = {c: fs for c, fs in whole.items() if fs}
    parts = []
    if tree:
        grouped = frame.groupby(by, dropna=args.dropna, observed=True, sort=True)
        reduced = grouped.agg(tree)
        reduced.columns = [f"{column}_{function}" for column, function in reduced.columns]
        parts.append(reduced)
    if whole:
        columns = by + [c for c in whole if c not in by]
        meta = _whole_groups(frame._meta[columns], by, whole, args.dropna)
        parts.append(frame[columns].shuffle(on=by).map_partitions(
            _whole_groups, by, whole, args.dropna, meta=meta))
        env.notes.append(f"groupby {sorted({f for fs in whole.values() for f in fs})}: "
                         "whole groups after a shuffle on the keys")
    parts = [part.reset_index() for part in parts]
    result = parts[0]
    if len(parts) == 2:
        result = result.merge(parts[1], on=by, how="outer")
    order = [f"{column}_{function}" for column, functions in args.agg.items()
             for function in functions]
    result = result[by + order]
    if whole:  # pandas sorts by the keys; the shuffled part is in no particular order
        result = result.sort_values(by, na_position="last")
    return result


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
