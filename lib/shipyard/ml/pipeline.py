"""The scikit-learn pipeline of one model: preprocessing, optional PCA, the estimator.

The preprocessing is a ``ColumnTransformer`` that imputes and scales numeric columns and
imputes and encodes the others. The model is the last step, named ``model``, so the
searched parameters are ``model__<name>`` and every candidate shares the same prefix
(which dask-ml's searches fit once per fold, not once per candidate).
"""

from __future__ import annotations

from typing import Any

from shipyard.ml.estimators import resolve_estimator
from shipyard.ml.spec import ModelSpec, PreprocessSpec

__all__ = ["build_pipeline", "preprocessor"]

_SCALERS = {"standard_scaler": "StandardScaler", "minmax_scaler": "MinMaxScaler",
            "robust_scaler": "RobustScaler"}


def preprocessor(spec: PreprocessSpec, numeric: list[str], categorical: list[str]) -> Any:
    """The ``ColumnTransformer`` for these columns."""
    import sklearn.preprocessing as pre
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    parts = []
    if numeric:
        steps = []
        if spec.impute != "none":
            steps.append(("impute", SimpleImputer(strategy=spec.impute)))
        if spec.numeric != "none":
            steps.append(("scale", getattr(pre, _SCALERS[spec.numeric])()))
        parts.append(("numeric", Pipeline(steps) if steps else "passthrough", numeric))
    if categorical:
        steps = []
        if spec.impute != "none":
            steps.append(("impute", SimpleImputer(strategy="most_frequent")))
        if spec.categorical == "one_hot":
            steps.append(("encode", pre.OneHotEncoder(handle_unknown="ignore",
                                                      sparse_output=False)))
        else:
            steps.append(("encode", pre.OrdinalEncoder(handle_unknown="use_encoded_value",
                                                       unknown_value=-1)))
        parts.append(("categorical", Pipeline(steps), categorical))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def build_pipeline(model: ModelSpec, spec: PreprocessSpec, numeric: list[str],
                   categorical: list[str]) -> Any:
    """``Pipeline([("preprocess", ...), ("pca", PCA)?, ("model", estimator)])``."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline

    steps: list[tuple[str, Any]] = [("preprocess", preprocessor(spec, numeric, categorical))]
    if spec.pca is not None:
        steps.append(("pca", PCA(n_components=spec.pca, random_state=0)))
    steps.append(("model", resolve_estimator(model.estimator)(**model.params)))
    return Pipeline(steps)
