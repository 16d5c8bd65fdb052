"""Check a dataframe job against its inputs' schemas before any data is read.

Each step is followed through the schema (columns appear, disappear, are renamed), so a
step naming a column that does not exist *at that step* is reported with the step's
index and the columns that do exist there::

    spec.dataframe.steps[2].fillna: column 'agee' does not exist at this step; did you
    mean 'age'? (columns here: customer_id, age, income, city)
"""

from __future__ import annotations

import logging

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from shipyard.core.errors import InputDataError
from shipyard.data import spec as s
from shipyard.data.expressions import ExpressionError, referenced_columns
from shipyard.data.files import filesystem
from shipyard.data.schema import Schema, forget_layouts, read_schema
from shipyard.spec.suggest import closest

__all__ = ["check_workload", "final_schema", "follow_steps"]

_PREFIX = "spec.dataframe"

log = logging.getLogger("shipyard.spec")


class _Problems(list):
    """Problem lines; ``missing`` adds one per absent column, with a suggestion."""

    def missing(self, where: str, schema: Schema, columns: Iterable[str]) -> bool:
        absent = schema.missing(columns)
        listing = ", ".join(schema.names())
        if len(listing) > 300:
            listing = listing[:297] + "..."
        for column in absent:
            guess = closest(column, list(schema.columns))
            hint = f"; did you mean {guess!r}?" if guess else ""
            self.append(f"{where}: column {column!r} does not exist at this step{hint} "
                        f"(columns here: {listing})")
        return bool(absent)


def _numeric(dtype: Any) -> bool:
    return dtype is None or (ptypes.is_numeric_dtype(dtype) and not ptypes.is_bool_dtype(dtype))


def _orderable(dtype: Any) -> bool:
    return _numeric(dtype) or ptypes.is_datetime64_any_dtype(dtype)


def _merge_columns(left: Schema, right: Schema, args: s.MergeArgs) -> Schema:
    """The columns pandas' merge produces: left's, then right's; shared join keys once,
    other shared names with the suffixes."""
    left_keys = args.on or args.left_on or []
    right_keys = args.on or args.right_on or []
    shared_keys = set(args.on or [])
    out: dict[str, Any] = {}
    overlap = (set(left.columns) & set(right.columns)) - shared_keys
    for name, dtype in left.columns.items():
        out[name + args.suffixes[0] if name in overlap else name] = dtype
    for name, dtype in right.columns.items():
        if name in shared_keys:
            continue
        if name in right_keys and name in left_keys and name in left.columns:
            continue
        out[name + args.suffixes[1] if name in overlap else name] = dtype
    return Schema(out, left.open_prefixes + right.open_prefixes)


_AGG_DTYPES = {"count": np.dtype("int64"), "size": np.dtype("int64"),
               "nunique": np.dtype("int64"), "mean": np.dtype("float64"),
               "std": np.dtype("float64"), "var": np.dtype("float64"),
               "median": np.dtype("float64")}


def _apply(index: int, item: Any, schema: Schema, inputs: dict[str, Schema],
           problems: _Problems) -> Schema:
    """Check one step against ``schema``; return the schema after it."""
    name = s.step_name(item)
    args = s.step_args(item)
    where = f"{_PREFIX}.steps[{index}].{name}"
    out = schema.copy()
    if name in ("query", "assign"):
        expressions = {None: args} if name == "query" else args
        for new, expression in expressions.items():
            try:
                problems.missing(where, out, referenced_columns(expression))
            except ExpressionError as err:
                problems.append(f"{where}: {err}")
            if new is not None:
                out.columns[new] = None
    elif name == "fillna":
        for column, value in args.items():
            if problems.missing(where, out, [column]) or column not in out.columns:
                continue
            dtype = out.columns[column]
            if value in ("mean", "median") and not _numeric(dtype):
                problems.append(f"{where}: {value} of column {column!r} needs numbers; it "
                                f"holds {dtype}")
            elif value in ("min", "max") and not (_orderable(dtype) or
                                                  ptypes.is_string_dtype(dtype)):
                problems.append(f"{where}: {value} of column {column!r} ({dtype}) is undefined")
    elif name == "dropna":
        problems.missing(where, out, args.subset or [])
    elif name == "cut":
        if not problems.missing(where, out, [args.column]):
            dtype = out.columns.get(args.column)
            if not _numeric(dtype):
                problems.append(f"{where}: cut needs a numeric column; {args.column!r} holds "
                                f"{dtype}")
        out.columns[args.into or args.column] = pd.CategoricalDtype()
    elif name == "astype":
        problems.missing(where, out, args)
        for column, dtype in args.items():
            if column in out.columns:
                out.columns[column] = pd.api.types.pandas_dtype(dtype)
    elif name == "rename":
        problems.missing(where, out, args)
        out.columns = {args.get(c, c): d for c, d in out.columns.items()}
    elif name == "select":
        if not problems.missing(where, out, args):
            out.columns = {c: out.columns.get(c) for c in args}
            out.open_prefixes = ()
    elif name == "drop":
        problems.missing(where, out, args)
        out.columns = {c: d for c, d in out.columns.items() if c not in args}
    elif name == "drop_duplicates":
        problems.missing(where, out, args.subset or [])
    elif name == "merge":
        right = inputs[args.right]
        problems.missing(f"{where}.on" if args.on else f"{where}.left_on", out,
                         args.on or args.left_on)
        problems.missing(f"{where} (right input {args.right!r})", right, args.on or args.right_on)
        out = _merge_columns(out, right, args)
    elif name == "get_dummies":
        problems.missing(where, out, args.columns)
        out.columns = {c: d for c, d in out.columns.items() if c not in args.columns}
        out.open_prefixes += tuple(c + args.prefix_sep for c in args.columns)
    elif name == "scale":
        if not problems.missing(where, out, args.columns):
            for column in args.columns:
                if not _numeric(out.columns.get(column)):
                    problems.append(f"{where}: scaling needs numbers; {column!r} holds "
                                    f"{out.columns.get(column)}")
                out.columns[column] = np.dtype("float64")
    elif name == "groupby":
        problems.missing(f"{where}.by", out, args.by)
        problems.missing(f"{where}.agg", out, args.agg)
        columns = {c: out.columns.get(c) for c in args.by}
        for column, functions in args.agg.items():
            for function in functions:
                columns[f"{column}_{function}"] = _AGG_DTYPES.get(function,
                                                                  out.columns.get(column))
        out = Schema(columns)
    elif name == "sort_values":
        problems.missing(where, out, args.by)
    return out


def follow_steps(workload: s.DataFrameWorkload, schemas: dict[str, Schema]) -> tuple[
        list[Schema], list[str]]:
    """The schema before each step and after the last, and the problems found."""
    problems = _Problems()
    schema = schemas[workload.main_name]
    seen = [schema]
    for index, item in enumerate(workload.steps):
        schema = _apply(index, item, schema, schemas, problems)
        seen.append(schema)
    return seen, list(problems)


def final_schema(workload: s.DataFrameWorkload, schemas: dict[str, Schema]) -> Schema:
    return follow_steps(workload, schemas)[0][-1]


def _output_problems(workload: s.DataFrameWorkload, final: Schema) -> list[str]:
    output = workload.output
    if output is None:
        return []
    problems = _Problems()
    problems.missing(f"{_PREFIX}.output.partition_on", final, output.partition_on or [])
    if not output.overwrite:
        try:
            fs, path = filesystem(output.path, output.storage_options)
            exists = fs.exists(path)
        except Exception as err:  # botocore's NoCredentialsError is no OSError
            reason = f"{output.path} cannot be checked ({type(err).__name__}: {err})"
            if "://" in output.path:
                # no credentials for the bucket here: the cluster may have them, and the
                # runner checks again where the job runs
                log.warning("warning: %s.output.path: %s; it is checked where the job runs",
                            _PREFIX, reason)
                return list(problems)
            return [*problems, f"{_PREFIX}.output.path: {reason}"]
        if exists:
            problems.append(f"{_PREFIX}.output.path: {output.path} already exists; set "
                            "overwrite: true to replace it")
    return list(problems)


def check_workload(workload: s.DataFrameWorkload) -> list[str]:
    """Every problem of a dataframe job that its inputs' schemas reveal, as spec lines.

    Reads each input's schema (footers, or the first rows); an input that cannot be read
    is a problem of its ``path``.
    """
    forget_layouts()
    schemas: dict[str, Schema] = {}
    problems: list[str] = []
    for name, spec in workload.inputs.items():
        try:
            schemas[name] = read_schema(spec)
        except InputDataError as err:
            problems.append(f"{_PREFIX}.inputs.{name}.path: {err}")
    if problems:
        return problems
    seen, problems = follow_steps(workload, schemas)
    return problems + _output_problems(workload, seen[-1])
