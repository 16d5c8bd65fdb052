"""What pandas ``query``/``eval`` expressions refer to, read without running them.

Used twice: before any data is read, to check that every column an expression names
exists (:mod:`shipyard.data.schema`); and to push simple conditions of a leading
``query`` down into the Parquet reader (:mod:`shipyard.data.pushdown`).

Expressions are pandas' syntax, which is Python's with two additions handled here:
backquoted names (`` `order total` > 5 ``) and ``@local`` variables (refused: a spec has
no local variables).
"""

from __future__ import annotations

import ast
import re
from typing import Any

__all__ = ["ExpressionError", "referenced_columns", "simple_filters"]

_BACKQUOTED = re.compile(r"`([^`]*)`")
#: names pandas' eval understands that are not columns
_NOT_COLUMNS = frozenset({
    "True", "False", "None", "inf", "Inf", "nan", "NaN",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh",
    "arcsinh", "arccosh", "arctanh", "abs", "log", "log10", "log1p", "exp", "expm1",
    "sqrt", "floor", "ceil",
})
_OPERATORS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
              ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in"}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


class ExpressionError(ValueError):
    """The expression cannot be read (a syntax error, or something a spec cannot use)."""


def _parse(expression: str) -> tuple[ast.Expression, dict[str, str]]:
    """Parse with backquoted names swapped for placeholders; return the tree and the map."""
    if "@" in _BACKQUOTED.sub("", expression):
        raise ExpressionError(
            f"{expression!r}: @variables refer to local variables, which a job spec does "
            "not have; write the value itself"
        )
    names: dict[str, str] = {}

    def placeholder(match: re.Match) -> str:
        key = f"__column_{len(names)}__"
        names[key] = match.group(1)
        return key

    text = _BACKQUOTED.sub(placeholder, expression)
    # pandas accepts `and`/`or`/`not` and `&`/`|`/`~` alike; both parse as Python
    try:
        return ast.parse(text.strip(), mode="eval"), names
    except SyntaxError as err:
        raise ExpressionError(f"{expression!r} is not a valid expression: {err.msg}") from None


def referenced_columns(expression: str) -> list[str]:
    """The column names an expression reads, in order of first use.

    Examples
    --------
    >>> referenced_columns("income / purchases > 2 and `order total` < log(age)")
    ['income', 'purchases', 'order total', 'age']
    >>> referenced_columns("city.str.startswith('Ber')")
    ['city']
    """
    tree, names = _parse(expression)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    in_order = sorted((node.col_offset, names.get(node.id, node.id)) for node in ast.walk(tree)
                      if isinstance(node, ast.Name) and id(node) not in called)
    found: list[str] = []
    for _, name in in_order:
        if name not in _NOT_COLUMNS and name not in found:
            found.append(name)
    return found


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise LookupError from None


def simple_filters(expression: str) -> list[tuple[str, str, Any]]:
    """The ``column op literal`` conditions that must all hold for a row to pass.

    Only conjunctions (``and`` / ``&``) of comparisons between a column and a literal
    are returned; anything else contributes nothing (the query itself still runs, so
    returning fewer conditions is always safe).

    Examples
    --------
    >>> simple_filters("l_shipdate <= '1998-09-02' and 10 < qty and flag in ['A', 'R']")
    [('l_shipdate', '<=', '1998-09-02'), ('qty', '>', 10), ('flag', 'in', ['A', 'R'])]
    >>> simple_filters("a > 1 or b < 2")
    []
    """
    try:
        tree, names = _parse(expression)
    except ExpressionError:
        return []
    out: list[tuple[str, str, Any]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            for value in node.values:
                visit(value)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
            visit(node.left)
            visit(node.right)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:
            op = _OPERATORS.get(type(node.ops[0]))
            left, right = node.left, node.comparators[0]
            try:
                if isinstance(left, ast.Name) and op:
                    out.append((names.get(left.id, left.id), op, _literal(right)))
                elif isinstance(right, ast.Name) and op in _FLIPPED:
                    out.append((names.get(right.id, right.id), _FLIPPED[op], _literal(left)))
            except LookupError:
                pass
        elif isinstance(node, ast.Compare) and len(node.ops) == 2:
            # a chained range: 10 < qty <= 20
            first = ast.Compare(left=node.left, ops=[node.ops[0]], comparators=[node.comparators[0]])
            second = ast.Compare(left=node.comparators[0], ops=[node.ops[1]],
                                 comparators=[node.comparators[1]])
            visit(first)
            visit(second)

    visit(tree.body)
    return [(column, op, value) for column, op, value in out
            if column not in _NOT_COLUMNS and not isinstance(value, (dict, set))]
