"""Resolve ``"package.module:function"`` references to callables.

Specs name user code by import path (the ``python`` workload's ``entrypoint``, later
the torch workload's ``train_loop``). The reference is checked where the spec enters,
so a typo fails at ``shipyard validate`` instead of minutes into a job.

The module is searched on ``sys.path`` plus the directories given (the spec file's
directory and the current directory), the way ``python -m`` would find it from there.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from shipyard.spec.suggest import closest

__all__ = ["parse_reference", "resolve_callable", "check_call", "resolve_for_spec"]

_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def parse_reference(reference: str) -> tuple[str, str]:
    """Split ``"pkg.mod:func"`` into ``("pkg.mod", "func")``.

    Raises
    ------
    ValueError
        When the reference is not of the form ``module:function``.

    Examples
    --------
    >>> parse_reference("jobs.basics:main")
    ('jobs.basics', 'main')
    """
    if not isinstance(reference, str) or not _REFERENCE.match(reference):
        raise ValueError(
            f"must be 'package.module:function' (a module path, a colon, a function name), "
            f"got {reference!r}"
        )
    module, attribute = reference.split(":", 1)
    return module, attribute


def resolve_callable(reference: str, search_paths: Iterable[str | Path] = ()) -> Callable[..., Any]:
    """Import the module of ``reference`` and return the named callable.

    Parameters
    ----------
    reference : str
        ``"package.module:function"``; the function part may be dotted (``Class.method``).
    search_paths : iterable of path-like
        Directories put in front of ``sys.path`` for the import, if not there already.

    Raises
    ------
    ValueError
        The reference is malformed, the module cannot be imported, the attribute does
        not exist or is not callable. The message says which and why.

    Examples
    --------
    >>> resolve_callable("os.path:join")("a", "b")
    'a/b'
    """
    module_name, attribute = parse_reference(reference)
    for path in reversed([str(Path(p).resolve()) for p in search_paths]):
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ValueError(
            f"cannot import module {module_name!r} ({err}); it must be importable from "
            f"the spec's directory, the current directory or the installed packages"
        ) from err
    except Exception as err:  # the user's module itself raised while importing
        raise ValueError(
            f"importing module {module_name!r} failed: {type(err).__name__}: {err}"
        ) from err
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            # what the module itself defines, not what it imported
            public = sorted(n for n in dir(module) if not n.startswith("_")
                            and callable(getattr(module, n, None))
                            and getattr(getattr(module, n), "__module__", None) == module_name)
            listing = ", ".join(public[:12]) or "none"
            guess = closest(part, public)
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise ValueError(
                f"module {module_name!r} has no attribute {attribute!r} "
                f"(callables it defines: {listing}){hint}"
            )
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{reference!r} is a {type(target).__name__}, not a function")
    return target


def check_call(func: Callable[..., Any], leading: int, params: dict[str, Any]) -> None:
    """Check that ``func(<leading positional args>, **params)`` matches its signature.

    Parameters
    ----------
    func : callable
        The function to check.
    leading : int
        How many positional arguments the framework passes first (1 for ``ctx``).
    params : dict
        The keyword arguments from the spec.

    Raises
    ------
    ValueError
        Naming the function's real signature and what does not fit.

    Examples
    --------
    >>> def f(ctx, n, m=1): pass
    >>> check_call(f, 1, {"n": 2})
    >>> check_call(f, 1, {"n": 2, "k": 3})
    Traceback (most recent call last):
    ...
    ValueError: does not fit f(ctx, n, m=1): got an unexpected keyword argument 'k'
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return  # builtins without a signature: nothing to check against
    try:
        signature.bind(*([None] * leading), **params)
    except TypeError as err:
        name = getattr(func, "__name__", "function")
        raise ValueError(f"does not fit {name}{signature}: {err}") from err


def resolve_for_spec(reference: str, context: dict[str, Any] | None) -> Callable[..., Any] | None:
    """What a spec validator does with a reference: check its form, and import it unless
    the spec is loaded with ``check_references=False`` (then None).

    ``context`` is pydantic's validation context as :func:`shipyard.spec.load` sets it:
    ``check_references`` and the ``search_paths`` to import from.
    """
    parse_reference(reference)
    context = context or {}
    if not context.get("check_references", True):
        return None
    return resolve_callable(reference, context.get("search_paths", ()))
