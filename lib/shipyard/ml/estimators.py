"""Estimators named by import path: resolving them, checking their parameters, and
turning the spec's search spaces into what scikit-learn's searches take.

Every check runs at validation time, so a typo in a class or parameter name, or a grid
value the estimator would refuse, is reported before any data is read::

    spec.sklearn.models[1].grid.max_depth: -1 is not valid for RandomForestClassifier:
    The 'max_depth' parameter of RandomForestClassifier must be an int in the range
    [1, inf) or None. Got -1 instead.
"""

from __future__ import annotations

import importlib
from typing import Any

import scipy.stats

from shipyard.spec.suggest import closest

__all__ = ["EstimatorError", "resolve_estimator", "estimator_problems", "search_space",
           "task_of", "fits_task"]


class EstimatorError(ValueError):
    """An estimator, parameter or search space the spec cannot use."""


def resolve_estimator(path: str) -> type:
    """The estimator class at ``path`` (``package.module.Class``).

    Examples
    --------
    >>> resolve_estimator("sklearn.linear_model.Ridge").__name__
    'Ridge'
    >>> resolve_estimator("sklearn.linear_model.Rigde")
    Traceback (most recent call last):
    ...
    shipyard.ml.estimators.EstimatorError: sklearn.linear_model has no class 'Rigde'; did you mean 'Ridge'?
    """
    from sklearn.base import BaseEstimator

    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise EstimatorError(f"module {module_name!r} cannot be imported ({err})") from None
    cls = getattr(module, name, None)
    if cls is None:
        public = [n for n in dir(module) if not n.startswith("_") and isinstance(
            getattr(module, n, None), type)]
        guess = closest(name, public)
        hint = f"; did you mean {guess!r}?" if guess else ""
        raise EstimatorError(f"{module_name} has no class {name!r}{hint}")
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise EstimatorError(f"{path} is not a scikit-learn estimator class")
    return cls


def task_of(cls: type) -> str | None:
    """The task an estimator class serves: classification, regression, clustering."""
    from sklearn.base import ClusterMixin, is_classifier, is_regressor

    try:
        probe = cls()
    except TypeError:  # required constructor arguments: a meta-estimator
        return None
    if is_classifier(probe):
        return "classification"
    if is_regressor(probe):
        return "regression"
    if isinstance(probe, ClusterMixin):
        return "clustering"
    # dask-ml's linear models declare no scikit-learn tags; their names say it
    if cls.__module__.startswith("dask_ml.linear_model"):
        return "classification" if hasattr(cls, "predict_proba") else "regression"
    return None


def fits_task(cls: type, task: str) -> bool:
    """Whether an estimator class can be a model of ``task``."""
    return task_of(cls) == task


def _check_value(cls: type, params: dict[str, Any], key: str, value: Any) -> str | None:
    """Why ``key=value`` is refused by the estimator's own parameter validation, or None."""
    from sklearn.utils._param_validation import InvalidParameterError

    estimator = cls(**{**params, key: value})
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:  # not a scikit-learn >= 1.2 estimator: nothing to ask
        return None
    try:
        validate()
    except (InvalidParameterError, ValueError, TypeError) as err:
        return str(err)
    return None


def _distribution(key: str, spec: Any) -> Any:
    """A scipy.stats distribution from ``{name: [args...]}``, or a list as is."""
    if isinstance(spec, list):
        if not spec:
            raise EstimatorError(f"{key}: a list to draw from needs at least one value")
        return spec
    if not (isinstance(spec, dict) and len(spec) == 1):
        raise EstimatorError(f"{key}: write a distribution as {{name: [arguments]}} "
                             f"(e.g. {{loguniform: [0.001, 100]}}) or a list, got {spec!r}")
    (name, args), = spec.items()
    factory = getattr(scipy.stats, str(name), None)
    if factory is None or not hasattr(factory, "rvs"):
        names = [n for n in dir(scipy.stats) if hasattr(getattr(scipy.stats, n), "rvs")]
        guess = closest(str(name), names)
        hint = f"; did you mean {guess!r}?" if guess else ""
        raise EstimatorError(f"{key}: {name!r} is not a scipy.stats distribution{hint}")
    args = args if isinstance(args, list) else [args]
    try:
        return factory(*args)
    except (TypeError, ValueError) as err:
        raise EstimatorError(f"{key}: {name}{tuple(args)} is not a valid distribution "
                             f"({err})") from None


def search_space(space: dict[str, Any], distributions: bool, prefix: str = "model__"
                 ) -> dict[str, Any]:
    """The search's parameter space with pipeline-prefixed names; distributions built.

    Examples
    --------
    >>> search_space({"C": [1, 10]}, distributions=False)
    {'model__C': [1, 10]}
    >>> type(search_space({"C": {"loguniform": [0.001, 100]}}, True)["model__C"]).__name__
    'rv_continuous_frozen'
    """
    if not distributions:
        return {prefix + key: list(values) for key, values in space.items()}
    return {prefix + key: _distribution(key, value) for key, value in space.items()}


def estimator_problems(where: str, path: str, params: dict[str, Any],
                       space: dict[str, Any], distributions: bool,
                       task: str | None) -> list[str]:
    """Every problem with one model's estimator, parameters and search space, as spec
    lines under ``where`` (e.g. ``spec.sklearn.models[0]``)."""
    try:
        cls = resolve_estimator(path)
    except EstimatorError as err:
        return [f"{where}.estimator: {err}"]
    problems: list[str] = []
    if task is not None and not fits_task(cls, task):
        kind = task_of(cls)
        what = f"a {kind} model" if kind else "not a predictive model"
        problems.append(f"{where}.estimator: {cls.__name__} is {what}, not one for task "
                        f"{task}")
        return problems
    try:
        valid = sorted(cls().get_params(deep=False))
    except TypeError as err:
        return [f"{where}.estimator: {cls.__name__} cannot be built without arguments ({err})"]
    for section, names in (("params", params), ("grid" if not distributions
                                                else "distributions", space)):
        for key in names:
            if key not in valid:
                guess = closest(key, valid)
                hint = f"did you mean {guess!r}? " if guess else ""
                problems.append(f"{where}.{section}.{key}: {cls.__name__} has no parameter "
                                f"{key!r}; {hint}(its parameters: {', '.join(valid)})")
    if problems:
        return problems
    try:
        cls(**params)
    except (TypeError, ValueError) as err:
        return [f"{where}.params: {cls.__name__} refuses them: {err}"]
    problems = _invalid_values(f"{where}.params", cls, {}, {k: [v] for k, v in params.items()})
    if problems:
        return problems
    section = f"{where}.{'distributions' if distributions else 'grid'}"
    values: dict[str, list[Any]] = {}
    for key, value in space.items():
        if not distributions:
            values[key] = value
            continue
        try:
            built = _distribution(key, value)
        except EstimatorError as err:
            problems.append(f"{where}.distributions.{err}")
            continue
        # a list is drawn from as is: every item can be checked; a scipy.stats
        # distribution's draws cannot be known in advance
        values[key] = built if isinstance(built, list) else []
    return problems + _invalid_values(section, cls, params, values)


def _invalid_values(section: str, cls: type, params: dict[str, Any],
                    values: dict[str, list[Any]]) -> list[str]:
    """A line for each value the estimator's own validation refuses (beside ``params``)."""
    problems = []
    for key, candidates in values.items():
        for value in candidates:
            why = _check_value(cls, params, key, value)
            if why:
                problems.append(f"{section}.{key}: {value!r} is not valid for "
                                f"{cls.__name__}: {why}")
    return problems
