"""The ``sklearn`` block of a job spec: data, split, preprocessing, models, search.

::

    sklearn:
      input: {path: out/churn.parquet}
      target: will_churn
      features: [age, income, purchases]        # default: every column but the target
      task: classification                      # classification | regression | clustering
      split: {test_size: 0.2, random_state: 42, stratify: true}
      preprocess: {numeric: standard_scaler, categorical: one_hot, impute: median}
      models:
        - name: logreg
          estimator: sklearn.linear_model.LogisticRegression
          params: {max_iter: 1000}
          grid: {C: [0.1, 1, 10]}              # or distributions: {C: {loguniform: [0.001, 100]}}
      search: {method: grid, cv: 5, scoring: accuracy}   # grid | random | halving
      compare: {alpha: 0.05}
      batch_predict: {input: {path: new.parquet}, output: {path: out/scored.parquet}}

This module holds the structure; :mod:`shipyard.ml.estimators` checks the estimators and
their parameters, :mod:`shipyard.ml.checks` checks the columns against the input.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from shipyard.core.model import StrictModel
from shipyard.data.spec import InputSpec, OutputSpec
from shipyard.core.units import parse_memory

__all__ = [
    "SklearnWorkload", "ModelSpec", "SplitSpec", "PreprocessSpec", "SearchSpec",
    "CompareSpec", "BatchPredictSpec", "Task", "SEARCH_METHODS",
]

Task = Literal["classification", "regression", "clustering"]
SEARCH_METHODS = ("grid", "random", "halving")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


class SplitSpec(StrictModel):
    """The held-out test split: ``sklearn.model_selection.train_test_split`` on the rows
    in input order. ``stratify`` defaults to true for classification."""

    test_size: float = Field(0.2, gt=0, lt=1)
    random_state: int | None = 42
    stratify: bool | None = None
    shuffle: bool = True


class PreprocessSpec(StrictModel):
    """What happens to the features before the model: imputation, scaling of numeric
    columns, encoding of the others, and optionally PCA on the result."""

    numeric: Literal["standard_scaler", "minmax_scaler", "robust_scaler", "none"] = \
        "standard_scaler"
    categorical: Literal["one_hot", "ordinal", "none"] = "one_hot"
    impute: Literal["mean", "median", "most_frequent", "none"] = "median"
    #: components to keep (an int), or the share of variance to keep (a float below 1)
    pca: Annotated[int, Field(ge=1)] | Annotated[float, Field(gt=0, lt=1)] | None = None


class ModelSpec(StrictModel):
    """One candidate model: an estimator class by import path, its fixed ``params``, and
    what the search varies (``grid`` lists, or ``distributions`` for random search)."""

    name: str
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] | None = None
    #: ``{C: {loguniform: [0.001, 100]}}``: a scipy.stats distribution and its arguments,
    #: or a list to draw from
    distributions: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"{name!r}: a model name is a letter, then letters, digits, "
                             "'_' or '-' (at most 63)")
        return name

    @field_validator("estimator")
    @classmethod
    def _path(cls, path: str) -> str:
        if not re.match(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", path):
            raise ValueError(f"{path!r}: name the estimator class by its import path, "
                             "e.g. sklearn.linear_model.LogisticRegression")
        return path

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        for key, values in (grid or {}).items():
            if not values:
                raise ValueError(f"{key}: a grid entry needs at least one value")
        return grid

    @model_validator(mode="after")
    def _one_space(self) -> ModelSpec:
        if self.grid is not None and self.distributions is not None:
            raise ValueError("give either grid or distributions, not both")
        return self

    @property
    def space(self) -> dict[str, Any]:
        """The searched parameters (grid or distributions), possibly empty."""
        return dict(self.grid or self.distributions or {})


class SearchSpec(StrictModel):
    """How each model's parameters are searched.

    ``grid`` tries every grid combination (dask-ml ``GridSearchCV``); ``random`` draws
    ``n_iter`` candidates (dask-ml ``RandomizedSearchCV``); ``halving`` is successive
    halving (scikit-learn's ``HalvingGridSearchCV``/``HalvingRandomSearchCV`` on the
    joblib Dask backend): every candidate on a few rows, the best third on three times
    as many, and so on.
    """

    method: Literal["grid", "random", "halving"] = "grid"
    cv: int = Field(5, ge=2)
    scoring: str | None = None
    n_iter: int = Field(10, ge=1)
    factor: int = Field(3, ge=2)
    random_state: int | None = 0


class CompareSpec(StrictModel):
    """Pairwise comparison of the models on their CV fold scores."""

    alpha: float = Field(0.05, gt=0, lt=1)


class BatchPredictSpec(StrictModel):
    """Score a (large) dataset with the best model, in parallel, and write Parquet."""

    input: InputSpec
    output: OutputSpec
    #: also write the class probabilities (classification models that have them)
    probabilities: bool = False
    #: input columns copied to the output beside the prediction (e.g. an id)
    keep: list[str] = Field(default_factory=list)


class SklearnWorkload(StrictModel):
    """``spec.sklearn``: train, search, evaluate and compare scikit-learn models.

    With ``model`` instead of ``models``, nothing is trained: a saved model (a job's
    ``artifacts/model.joblib``) scores ``batch_predict``'s input.
    """

    input: InputSpec | None = None
    target: str | None = None
    features: list[str] | None = None
    task: Task | None = None
    split: SplitSpec = Field(default_factory=SplitSpec)
    preprocess: PreprocessSpec = Field(default_factory=PreprocessSpec)
    models: list[ModelSpec] | None = None
    search: SearchSpec = Field(default_factory=SearchSpec)
    compare: CompareSpec = Field(default_factory=CompareSpec)
    batch_predict: BatchPredictSpec | None = None
    #: a saved model to predict with (predict-only jobs)
    model: str | None = None
    #: largest input (in memory) trained on in one process, where the results equal
    #: plain scikit-learn's; above it, dask-ml trains on the partitions (default 2GiB)
    max_in_memory: int = Field(2 * 2**30, ge=1)

    @field_validator("max_in_memory", mode="before")
    @classmethod
    def _bytes(cls, value: Any) -> int:
        return parse_memory(value)

    @model_validator(mode="after")
    def _consistent(self) -> SklearnWorkload:
        if self.model is not None:
            if self.models is not None:
                raise ValueError("give models (to train) or model (to predict with), not both")
            if self.batch_predict is None:
                raise ValueError("model: a saved model needs a batch_predict block to score")
            return self
        if not self.models:
            raise ValueError("models: list at least one model to train (or give model: "
                             "a saved model and a batch_predict block)")
        if self.input is None:
            raise ValueError("input: the training data is required")
        names = [m.name for m in self.models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"models: names must be unique; {', '.join(twice)} repeated")
        if self.task != "clustering" and self.target is None:
            raise ValueError("target: the column to predict is required "
                             "(only task: clustering has none)")
        if self.task == "clustering" and self.target is not None:
            raise ValueError("target: a clustering task has no target; remove it")
        if self.features is not None and self.target in self.features:
            raise ValueError(f"features: the target {self.target!r} cannot be a feature")
        # (a grid under random search is a space drawn from uniformly: nothing to refuse)
        with_distributions = [m.name for m in self.models if m.distributions]
        if self.search.method == "grid" and with_distributions:
            raise ValueError(f"distributions ({', '.join(with_distributions)}) need search "
                             "method random or halving; grid search needs grid lists")
        return self
