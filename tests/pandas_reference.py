"""A plain pandas reference for the ``dataframe`` workload's steps, and a frame comparison.

:func:`run_steps` runs the raw step dicts of a spec (as YAML gives them) on one in-memory
pandas DataFrame, with the meaning the design doc gives each step. It is written from
pandas' (and scikit-learn's) documented behaviour and deliberately shares no code with
``shipyard.data``: the equivalence tests compare the two.

:func:`assert_same` compares two pandas frames by *value*: column names and order, the
row count, and every cell (floats with a tolerance), optionally ignoring row order. Dtype
representations that do not change values (``str`` / ``string[pyarrow]`` / ``object``
strings, ``Int64`` / ``int64``, a categorical / its labels) are not differences; a
different kind of value (an integer column becoming float, numbers becoming strings, bools
becoming integers) is, and is reported as a dtype difference.

Examples
--------
>>> df = pd.DataFrame({"age": [20.0, None, 50.0], "city": ["a", None, "a"]})
>>> run_steps(df, [{"fillna": {"age": "mean", "city": "mode"}}, {"query": "age > 30"}], {})
    age city
1  35.0    a
2  50.0    a
>>> assert_same(pd.DataFrame({"a": [2.0, 1.0]}), pd.DataFrame({"a": [1.0, 2.0 + 1e-12]}),
...             sort=True)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["run_steps", "assert_same", "STATISTICS"]

#: the whole-column statistics ``fillna`` accepts by name
STATISTICS = ("mean", "median", "mode", "min", "max")


def _as_list(value: Any) -> Any:
    """A spec may write one column without brackets."""
    return [value] if isinstance(value, str) else value


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, (float, np.floating)) and math.isnan(value))
    except TypeError:
        return False


# -- the steps -------------------------------------------------------------------------


def _query(df: pd.DataFrame, expression: str, inputs) -> pd.DataFrame:
    return df.query(expression)


def _statistic(series: pd.Series, name: str) -> Any:
    if name == "mode":
        modes = series.mode(dropna=True)  # sorted: [0] is the smallest of the most frequent
        return modes.iloc[0] if len(modes) else None
    return getattr(series, name)()  # mean, median, min, max: NaN skipped


def _fillna(df: pd.DataFrame, fills: dict[str, Any], inputs) -> pd.DataFrame:
    df = df.copy()
    # every statistic is of the column as it is at this step (before this step's fills)
    values: dict[str, Any] = {}
    for column, how in fills.items():
        if isinstance(how, str) and how in STATISTICS:
            if how in ("mean", "median") and pd.api.types.is_integer_dtype(df[column].dtype):
                # a mean or median of integers is a float: the column becomes float64
                df[column] = df[column].astype("float64")
            values[column] = _statistic(df[column], how)
        else:
            values[column] = how
    for column, value in values.items():
        if not _is_missing(value):
            df[column] = df[column].fillna(value)
    return df


def _dropna(df: pd.DataFrame, args: dict | None, inputs) -> pd.DataFrame:
    args = args or {}
    subset = _as_list(args.get("subset"))
    if args.get("thresh") is not None:
        return df.dropna(subset=subset, thresh=args["thresh"])
    return df.dropna(subset=subset, how=args.get("how", "any"))


def _assign(df: pd.DataFrame, columns: dict[str, str], inputs) -> pd.DataFrame:
    df = df.copy()
    for name, expression in columns.items():  # in order: later ones see earlier ones
        df[name] = df.eval(expression)
    return df


def _cut(df: pd.DataFrame, args: dict, inputs) -> pd.DataFrame:
    df = df.copy()
    labels = args.get("labels")
    binned = pd.cut(df[args["column"]], bins=args["bins"], labels=labels,
                    right=args.get("right", True),
                    include_lowest=args.get("include_lowest", False))
    df[args.get("into") or args["column"]] = binned
    return df


def _astype(df: pd.DataFrame, casts: dict[str, str], inputs) -> pd.DataFrame:
    return df.astype(casts)


def _rename(df: pd.DataFrame, names: dict[str, str], inputs) -> pd.DataFrame:
    return df.rename(columns=names)


def _select(df: pd.DataFrame, columns, inputs) -> pd.DataFrame:
    return df[list(_as_list(columns))]


def _drop(df: pd.DataFrame, columns, inputs) -> pd.DataFrame:
    return df.drop(columns=list(_as_list(columns)))


def _drop_duplicates(df: pd.DataFrame, args: dict | None, inputs) -> pd.DataFrame:
    args = args or {}
    return df.drop_duplicates(subset=_as_list(args.get("subset")), keep=args.get("keep", "first"))


def _merge(df: pd.DataFrame, args: dict, inputs) -> pd.DataFrame:
    # ``broadcast`` only says how a cluster does it; the result is pandas' merge
    return pd.merge(df, inputs[args["right"]], how=args.get("how", "inner"),
                    on=_as_list(args.get("on")), left_on=_as_list(args.get("left_on")),
                    right_on=_as_list(args.get("right_on")),
                    suffixes=tuple(args.get("suffixes", ("_x", "_y"))))


def _get_dummies(df: pd.DataFrame, args: dict, inputs) -> pd.DataFrame:
    # pandas' categories: a categorical's own, otherwise the sorted distinct non-null values
    return pd.get_dummies(df, columns=list(_as_list(args["columns"])),
                          prefix_sep=args.get("prefix_sep", "_"),
                          drop_first=args.get("drop_first", False),
                          dtype=args.get("dtype", "bool"))


def _scale(df: pd.DataFrame, args: dict, inputs) -> pd.DataFrame:
    """scikit-learn's StandardScaler (population std; constant columns scale by 1) or
    MinMaxScaler (to 0..1; constant columns too); missing values are ignored when
    fitting and stay missing."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    df = df.copy()
    columns = list(_as_list(args["columns"]))
    values = df[columns].astype("float64")
    if len(values):  # scikit-learn refuses to fit zero rows
        scaler = StandardScaler() if args.get("method", "standard") == "standard" \
            else MinMaxScaler()
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                values = pd.DataFrame(scaler.fit_transform(values.to_numpy()),
                                      index=values.index, columns=columns)
    for column in columns:
        df[column] = values[column].astype("float64")
    return df


def _groupby(df: pd.DataFrame, args: dict, inputs) -> pd.DataFrame:
    agg = {column: list(_as_list(functions)) for column, functions in args["agg"].items()}
    grouped = df.groupby(list(_as_list(args["by"])), dropna=args.get("dropna", True),
                         observed=True, sort=True)
    result = grouped.agg(agg)
    result.columns = [f"{column}_{function}" for column, function in result.columns]
    return result.reset_index()


def _sort_values(df: pd.DataFrame, args: dict, inputs) -> pd.DataFrame:
    return df.sort_values(list(_as_list(args["by"])), ascending=args.get("ascending", True),
                          na_position=args.get("na_position", "last"), kind="stable")


def _sample(df: pd.DataFrame, args: dict, inputs) -> pd.DataFrame:
    # pandas' meaning; a cluster samples per partition, so no test compares rows with this
    return df.sample(frac=args["frac"], replace=args.get("replace", False),
                     random_state=args.get("random_state"))


STEPS = {
    "query": _query, "fillna": _fillna, "dropna": _dropna, "assign": _assign, "cut": _cut,
    "astype": _astype, "rename": _rename, "select": _select, "drop": _drop,
    "drop_duplicates": _drop_duplicates, "merge": _merge, "get_dummies": _get_dummies,
    "scale": _scale, "groupby": _groupby, "sort_values": _sort_values, "sample": _sample,
}


def run_steps(df: pd.DataFrame, steps: list[dict], inputs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Run a spec's ``steps`` (raw dicts, one key each) on ``df``; ``inputs`` holds the
    other named inputs (for ``merge``)."""
    for step in steps:
        if not isinstance(step, dict) or len(step) != 1:
            raise ValueError(f"a step is a mapping with one key, got {step!r}")
        ((name, args),) = step.items()
        df = STEPS[name](df, args, inputs)
    return df


# -- comparing frames ------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """A cell as a plain Python value; every kind of missing value is None."""
    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _column_values(series: pd.Series) -> list:
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)  # a categorical compares as its labels
    return [_canonical(v) for v in series.to_numpy(dtype=object, na_value=None)]


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (2,)
    if isinstance(value, (bool, int, float)):
        number = float(value)
        if math.isfinite(number):
            # rounded, so that float noise between the two frames cannot reorder rows
            number = 0.0 if abs(number) < 1e-7 else float(f"{number:.8g}")
        return (0, 0, number)
    if isinstance(value, str):
        return (0, 1, value)
    if isinstance(value, pd.Interval):
        return (0, 2, float(value.left), float(value.right))
    return (0, 3, repr(value))


def _same_value(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a == b:
            return True
        if not (math.isfinite(a) and math.isfinite(b)):
            return False
        return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)
    return type(a) is type(b) and a == b


def _rows(frame: pd.DataFrame, sort: bool) -> tuple[list[str], list[list]]:
    columns = [str(c) for c in frame.columns]
    values = [_column_values(frame.iloc[:, i]) for i in range(frame.shape[1])]
    rows = [list(row) for row in zip(*values)] if values else [[] for _ in range(len(frame))]
    if sort:
        # exact columns first, floats last: rounding in a float cannot reorder ties above
        kinds = [{_kind(v) for v in column if v is not None} for column in values]
        order = sorted(range(len(columns)), key=lambda i: ("float" in kinds[i], i))
        rows.sort(key=lambda row: tuple(_sort_key(row[i]) for i in order))
    return columns, rows


def assert_same(result: pd.DataFrame, expected: pd.DataFrame, sort: bool, *,
                rtol: float = 1e-9, atol: float = 1e-9, check_kinds: bool = True) -> None:
    """Fail unless ``result`` has ``expected``'s columns (names, order), row count and
    values; with ``sort``, row order is ignored (both are sorted by every column first).

    Floats compare with ``rtol``/``atol``; all missing values (NaN, None, NA, NaT) are
    equal to each other and to nothing else. With ``check_kinds``, a column must also
    hold the same kind of values (bool, integer, float, string, ...) on both sides, dtype
    representation aside (all-missing columns and empty frames are not checked).
    """
    assert isinstance(result, pd.DataFrame), f"result is a {type(result).__name__}"
    assert isinstance(expected, pd.DataFrame), f"expected is a {type(expected).__name__}"
    assert list(result.columns) == list(expected.columns), (
        f"columns differ:\n  result:   {list(result.columns)}\n"
        f"  expected: {list(expected.columns)}")
    assert len(result) == len(expected), (
        f"row counts differ: result {len(result)}, expected {len(expected)}\n"
        f"result:\n{result.head(20)}\nexpected:\n{expected.head(20)}")
    columns, got = _rows(result, sort)
    _, want = _rows(expected, sort)
    if check_kinds:
        for i, column in enumerate(columns):
            got_kinds = {_kind(row[i]) for row in got if row[i] is not None}
            want_kinds = {_kind(row[i]) for row in want if row[i] is not None}
            assert not (got_kinds and want_kinds) or got_kinds == want_kinds, (
                f"column {column!r}: dtype-only difference? values are {sorted(got_kinds)} "
                f"in the result ({result[column].dtype}), {sorted(want_kinds)} expected "
                f"({expected[column].dtype})")
    for r, (a_row, b_row) in enumerate(zip(got, want)):
        for i, column in enumerate(columns):
            if not _same_value(a_row[i], b_row[i], rtol, atol):
                raise AssertionError(
                    f"value differs at row {r}{' (after sorting)' if sort else ''}, column "
                    f"{column!r}: result {a_row[i]!r}, expected {b_row[i]!r}\n"
                    f"  result row:   {dict(zip(columns, a_row))}\n"
                    f"  expected row: {dict(zip(columns, b_row))}")
