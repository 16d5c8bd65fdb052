"""What the readers can skip: columns no step needs, rows a leading ``query`` drops.

Columns: walking the steps backwards from the output, each step says which of its input
columns it needs (a ``groupby`` needs its keys and aggregated columns, an ``assign`` the
columns its expressions read, a ``dropna`` without ``subset`` every column). Only those
are read.

Rows: the conditions of the ``query`` steps at the very start that are plain
``column op literal`` comparisons joined by ``and`` become Parquet filters, so row
groups whose statistics rule them out are never read. The ``query`` still runs, so a
condition that cannot be pushed down is simply not pushed down.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from shipyard.data import spec as s
from shipyard.data.checks import follow_steps
from shipyard.data.expressions import ExpressionError, referenced_columns, simple_filters
from shipyard.data.schema import Schema

__all__ = ["ReadPlan", "plan_reads", "arrow_filter_value"]


@dataclass
class ReadPlan:
    """Per input: the columns to read (None: all) and Parquet filters."""

    columns: dict[str, list[str] | None] = field(default_factory=dict)
    filters: dict[str, list[tuple[str, str, Any]]] = field(default_factory=dict)


def _refs(expression: str) -> set[str]:
    try:
        return set(referenced_columns(expression))
    except ExpressionError:
        return set()


def _needed_before(item: Any, need: set[str], before: Schema, inputs: dict[str, Schema],
                   right_need: dict[str, set[str]]) -> set[str]:
    """The columns a step needs from its input, given what is needed after it."""
    name, args = s.step_name(item), s.step_args(item)
    everything = set(before.columns)
    if name == "query":
        return need | _refs(args)
    if name == "assign":
        for new, expression in reversed(list(args.items())):
            need = (need - {new}) | _refs(expression)
        return need
    if name in ("dropna", "drop_duplicates"):
        return need | set(args.subset or everything)
    if name == "cut":
        target = args.into or args.column
        return (need - {target}) | {args.column}
    if name == "rename":
        inverse = {new: old for old, new in args.items()}
        return {inverse.get(c, c) for c in need}
    if name == "get_dummies":
        prefixes = tuple(c + args.prefix_sep for c in args.columns)
        return {c for c in need if not c.startswith(prefixes)} | set(args.columns)
    if name == "groupby":
        return set(args.by) | set(args.agg)
    if name == "sort_values":
        return need | set(args.by)
    if name == "merge":
        right = inputs[args.right]
        left_keys = set(args.on or args.left_on)
        right_keys = set(args.on or args.right_on)
        overlap = (set(before.columns) & set(right.columns)) - set(args.on or [])
        left = {c for c in before.columns
                if (c + args.suffixes[0] if c in overlap else c) in need} | left_keys
        right_need[args.right] |= {c for c in right.columns
                                   if (c + args.suffixes[1] if c in overlap else c) in need
                                   } | right_keys
        return left
    if name in ("drop", "fillna", "astype"):
        # the columns they name must be there to drop, fill or cast, needed later or not
        return need | set(args)
    if name == "scale":
        return need | set(args.columns)
    return need  # select, sample: nothing new


def _ordered(schema: Schema, names: set[str]) -> list[str] | None:
    columns = [c for c in schema.columns if c in names]
    return None if len(columns) == len(schema.columns) else columns


def arrow_filter_value(arrow_type: pa.DataType, value: Any) -> Any:
    """``value`` converted for comparison with a column of ``arrow_type``; raise
    ValueError where it cannot be (the condition is then not pushed down).

    Examples
    --------
    >>> arrow_filter_value(pa.date32(), "1998-09-02")
    datetime.date(1998, 9, 2)
    >>> arrow_filter_value(pa.float64(), 3)
    3
    """
    if isinstance(value, (list, tuple)):
        return [arrow_filter_value(arrow_type, v) for v in value]
    if pa.types.is_date(arrow_type):
        return pd.Timestamp(value).date()
    if pa.types.is_timestamp(arrow_type):
        stamp = pd.Timestamp(value)
        zone = getattr(arrow_type, "tz", None)
        return stamp.tz_localize(zone) if zone and stamp.tzinfo is None else stamp
    numeric = (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
               or pa.types.is_decimal(arrow_type))
    if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)) and \
            isinstance(value, str):
        return value
    if pa.types.is_boolean(arrow_type) and isinstance(value, bool):
        return value
    raise ValueError(f"{value!r} does not compare with {arrow_type}")


def _leading_filters(workload: s.DataFrameWorkload, arrow_schema: pa.Schema) -> list:
    filters = []
    for item in workload.steps:
        if s.step_name(item) != "query":
            break
        for column, op, value in simple_filters(item.query):
            if column not in arrow_schema.names:
                continue
            try:
                filters.append((column, op, arrow_filter_value(
                    arrow_schema.field(column).type, value)))
            except (ValueError, TypeError):
                continue
    return filters


def plan_reads(workload: s.DataFrameWorkload, schemas: dict[str, Schema],
               arrow_schemas: dict[str, pa.Schema] | None = None) -> ReadPlan:
    """Decide what each input's reader may skip."""
    seen, _ = follow_steps(workload, schemas)
    final = seen[-1]
    right_need: dict[str, set[str]] = {name: set() for name in workload.inputs}
    need = set(final.columns)
    if workload.output and workload.output.partition_on:
        need |= set(workload.output.partition_on)
    if final.open_prefixes:
        need |= {c for c in seen[0].columns}  # conservatively keep what feeds dummies
    for index in range(len(workload.steps) - 1, -1, -1):
        need = _needed_before(workload.steps[index], need, seen[index], schemas, right_need)
    plan = ReadPlan()
    main = workload.main_name
    for name, schema in schemas.items():
        wanted = need if name == main else right_need[name]
        plan.columns[name] = _ordered(schema, wanted) if wanted else None
    if arrow_schemas and main in arrow_schemas:
        plan.filters[main] = _leading_filters(workload, arrow_schemas[main])
    return plan
