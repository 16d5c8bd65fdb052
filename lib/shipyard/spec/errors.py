"""Turn pydantic validation errors into one readable line per problem.

Each line starts with the dotted path of the field (``spec.resources.workers``), says
what is wrong in plain words and, for an unknown key or a value not among the allowed
ones, suggests the closest valid name (as scikit-learn's parameter validation and
SkyPilot's "did you mean" do).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shipyard.core.errors import UsageError
from shipyard.spec.suggest import closest

__all__ = ["describe_errors", "show_value", "dotted", "allowed_keys", "validated_settings"]

Settings = TypeVar("Settings", bound=BaseModel)


def show_value(value: Any, limit: int = 60) -> str:
    """Show a value from the spec compactly: numbers bare, strings quoted, long ones cut.

    Examples
    --------
    >>> show_value(0), show_value("abc"), show_value([1, 2])
    ('0', "'abc'", '[1, 2]')
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, dict):
        text = "a mapping {" + ", ".join(map(str, list(value)[:5])) + "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dotted(loc: Sequence[Any]) -> str:
    """Join an error location into a dotted path, list indexes in brackets.

    Examples
    --------
    >>> dotted(("spec", "dataframe", "steps", 2, "query"))
    'spec.dataframe.steps[2].query'
    """
    out = ""
    previous = None
    for part in loc:
        if part == previous and isinstance(part, str):
            continue  # a tagged union repeats its tag: steps[0].query.query
        previous = part
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated wrappers down to the model, dict or list type inside."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = (models or inner)[0]
        else:
            return annotation


def _field_by_key(model: type[BaseModel], key: str):
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def allowed_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys the model accepts at ``loc`` (a mapping inside the spec), by their YAML names."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = _field_by_key(current, str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) in (dict, list, tuple, typing.Sequence, typing.Mapping):
            args = typing.get_args(current)
            current = args[-1] if args else Any
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(
        type(value), type(value).__name__)


def _message(error: dict[str, Any], model: type[BaseModel]) -> str:
    kind = error["type"]
    loc = error["loc"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    got = f"got {show_value(value)}"
    if kind == "extra_forbidden":
        choices = allowed_keys(model, loc[:-1])
        guess = closest(str(loc[-1]), choices) if choices else None
        if guess:
            return f"unknown field; did you mean {guess!r}?"
        return "unknown field" + (f"; allowed: {', '.join(choices)}" if choices else "")
    if kind == "missing":
        return "required field is missing"
    bounds = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
              "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}
    if kind in bounds:
        symbol, key = bounds[kind]
        return f"must be {symbol} {ctx.get(key)}, {got}"
    if kind.startswith("int_") or kind == "int_type":
        return f"must be an integer, {got}"
    if kind.startswith("float_"):
        return f"must be a number, {got}"
    if kind.startswith("bool_"):
        return f"must be true or false, {got}"
    if kind == "string_type":
        return f"must be a string, got {_type_name(value)} {show_value(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return f"must be a mapping, got {_type_name(value)} {show_value(value)}"
    if kind in ("list_type", "tuple_type", "sequence_str"):
        return f"must be a list, got {_type_name(value)} {show_value(value)}"
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        guess = closest(str(value), options)
        hint = f"; did you mean {guess!r}?" if guess and guess != value else ""
        return f"must be {expected}, {got}{hint}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s), {got}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s)"
    if kind == "union_tag_invalid":
        noun = str(ctx.get("discriminator", "kind")).rstrip("()")
        options = [o.strip().strip("'") for o in str(ctx.get("expected_tags", "")).split(",")]
        guess = closest(str(ctx.get("tag")), options)
        hint = f"; did you mean {guess!r}?" if guess else f" ({', '.join(options)})"
        return f"unknown {noun} {ctx.get('tag')!r}{hint}"
    if kind == "union_tag_not_found":
        noun = str(ctx.get("discriminator", "kind")).rstrip("()")
        return (f"each {noun} is a mapping with exactly one key, the {noun}'s name; "
                f"got {show_value(value)}")
    if kind in ("value_error", "assertion_error"):
        # our own validators write complete sentences; pydantic prefixes them
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return str(error["msg"])


def describe_errors(err: ValidationError, model: type[BaseModel]) -> list[str]:
    """One ``path: message`` line per problem in ``err``, in document order.

    Parameters
    ----------
    err : pydantic.ValidationError
        The error raised by ``model.model_validate``.
    model : type of BaseModel
        The model that was validated (used to suggest the closest key).

    Returns
    -------
    list of str
    """
    lines = []
    for error in err.errors(include_url=False):
        line = f"{dotted(error['loc'])}: {_message(error, model)}"
        if line not in lines:
            lines.append(line)
    return lines


def validated_settings(model: type[Settings], settings: dict[str, Any], title: str) -> Settings:
    """``settings`` validated as ``model``, or a UsageError naming every wrong field.

    Parameters
    ----------
    model : type of BaseModel
    settings : dict
    title : str
        What was validated, for the message: ``"<title>: <field>: <problem>; ..."``.

    Raises
    ------
    UsageError
        Exit 2, one line: the title, then each problem in document order.
    """
    try:
        return model.model_validate(settings)
    except ValidationError as err:
        problems = "; ".join(describe_errors(err, model))
        raise UsageError(f"{title}: {problems}") from None
