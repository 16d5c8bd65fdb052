"""Check an sklearn job before any data is read: estimators and their parameters, and the
target and feature columns against the input's schema."""

from __future__ import annotations

from typing import Any

from pandas.api import types as ptypes

from shipyard.core.errors import InputDataError
from shipyard.data.schema import forget_layouts, missing_column_problems, read_schema
from shipyard.ml.estimators import estimator_problems
from shipyard.ml.spec import SklearnWorkload
from shipyard.spec.suggest import closest

__all__ = ["check_workload", "infer_task", "feature_columns"]

_PREFIX = "spec.sklearn"


def infer_task(target: str | None, dtype: Any) -> str:
    """The task a target implies: none is clustering, a float column regression, anything
    else (ints, bools, strings, categories) classification.

    Examples
    --------
    >>> import numpy as np
    >>> infer_task(None, None), infer_task("y", np.dtype("float64")), infer_task("y", np.dtype("int64"))
    ('clustering', 'regression', 'classification')
    """
    if target is None:
        return "clustering"
    if dtype is not None and ptypes.is_float_dtype(dtype):
        return "regression"
    return "classification"


def feature_columns(block: SklearnWorkload, columns: list[str]) -> list[str]:
    """The features: as listed, or every column but the target."""
    if block.features is not None:
        return list(block.features)
    return [c for c in columns if c != block.target]


def check_workload(block: SklearnWorkload) -> list[str]:
    """Every problem of an sklearn job found without training, as spec lines."""
    forget_layouts()
    problems: list[str] = []
    task = block.task
    if block.input is not None:
        try:
            schema = read_schema(block.input)
        except InputDataError as err:
            return [f"{_PREFIX}.input.path: {err}"]
        if block.target is not None:
            problems += missing_column_problems(f"{_PREFIX}.target", schema, [block.target])
        if block.features is not None:
            problems += missing_column_problems(f"{_PREFIX}.features", schema, block.features)
        if problems:
            return problems
        target_dtype = schema.columns.get(block.target) if block.target else None
        task = task or infer_task(block.target, target_dtype)
        if task == "regression" and target_dtype is not None and not (
                ptypes.is_numeric_dtype(target_dtype) and not ptypes.is_bool_dtype(target_dtype)):
            problems.append(f"{_PREFIX}.target: regression needs a numeric target; "
                            f"{block.target!r} is {target_dtype} (use task: classification, "
                            "or convert it with astype in a dataframe job)")
        if block.batch_predict is not None:
            problems += _batch_input_problems(block, feature_columns(block, list(schema.columns)))
    for index, model in enumerate(block.models or []):
        problems += estimator_problems(f"{_PREFIX}.models[{index}]", model.estimator,
                                       model.params, model.space,
                                       model.distributions is not None, task)
    if block.search.scoring is not None:
        from sklearn.metrics import get_scorer_names

        names = get_scorer_names()
        if block.search.scoring not in names:
            guess = closest(block.search.scoring, names)
            hint = f"did you mean {guess!r}? " if guess else ""
            problems.append(f"{_PREFIX}.search.scoring: {block.search.scoring!r} is not a "
                            f"scikit-learn scorer; {hint}(see sklearn.metrics."
                            "get_scorer_names())")
    if block.model is not None:
        problems += _saved_model_problems(block)
    if task == "clustering" and block.batch_predict is not None and not problems:
        from shipyard.ml.estimators import resolve_estimator

        for index, model in enumerate(block.models or []):
            if not hasattr(resolve_estimator(model.estimator), "predict"):
                problems.append(f"{_PREFIX}.models[{index}].estimator: "
                                f"{model.estimator.rpartition('.')[2]} cannot label new rows "
                                "(it has no predict), so batch_predict cannot use it")
    if block.search.method == "halving" and task == "clustering":
        problems.append(f"{_PREFIX}.search.method: halving search needs a target to score "
                        "against; clustering jobs use grid or random")
    return problems


def _batch_input_problems(block: SklearnWorkload, features: list[str]) -> list[str]:
    spec = block.batch_predict
    try:
        schema = read_schema(spec.input)
    except InputDataError as err:
        return [f"{_PREFIX}.batch_predict.input.path: {err}"]
    return (missing_column_problems(f"{_PREFIX}.batch_predict.input", schema, features)
            + missing_column_problems(f"{_PREFIX}.batch_predict.keep", schema, spec.keep))


def _saved_model_problems(block: SklearnWorkload) -> list[str]:
    """A saved model must exist with its sidecar, and its features be in the input."""
    import json

    from shipyard.ml.artifacts import model_files

    model_file, sidecar = model_files(block.model)
    if not model_file.is_file() or not sidecar.is_file():
        return [f"{_PREFIX}.model: {block.model}: no saved model there (a model.joblib "
                "with its model.json beside it, as an sklearn job's artifacts/ holds)"]
    try:
        features = json.loads(sidecar.read_text())["features"]
    except (OSError, ValueError, KeyError) as err:
        return [f"{_PREFIX}.model: {sidecar} is not a model sidecar ({err})"]
    return _batch_input_problems(block, features)
