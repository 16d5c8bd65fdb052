"""The sklearn workload's pieces against plain scikit-learn and SciPy: the split, every
search method's fold scores and best candidate, the comparison statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (GridSearchCV, HalvingGridSearchCV, RandomizedSearchCV,
                                     cross_val_score, train_test_split)

from shipyard.ml.compare import compare_models, corrected_ttest
from shipyard.ml.data import column_kinds, prepare, split
from shipyard.ml.datasets import dataset_frame
from shipyard.ml.estimators import search_space
from shipyard.ml.pipeline import build_pipeline
from shipyard.ml.search import best_index, cross_validate_best, run_search
from shipyard.ml.spec import SklearnWorkload

pytestmark = pytest.mark.cluster  # searches on a module LocalCluster


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def workload(**fields) -> SklearnWorkload:
    base = {"input": {"path": "x.parquet"}, "target": "diagnosis",
            "models": [{"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression",
                        "params": {"max_iter": 2000}, "grid": {"C": [0.01, 0.1, 1, 10]}}]}
    return SklearnWorkload.model_validate({**base, **fields})


@pytest.fixture(scope="module")
def cancer():
    block = workload()
    data = prepare(block, dataset_frame("breast_cancer"), "classification")
    return block, data, split(block, data)


def test_the_split_is_train_test_split_on_rows_in_input_order(cancer):
    block, data, (X_train, X_test, y_train, y_test) = cancer
    frame = dataset_frame("breast_cancer")
    X = frame.drop(columns="diagnosis")
    a, b, c, d = train_test_split(X, frame["diagnosis"], test_size=0.2, random_state=42,
                                  stratify=frame["diagnosis"])
    assert X_train.index.tolist() == a.index.tolist()
    assert X_test.index.tolist() == b.index.tolist()
    assert y_train.tolist() == c.tolist() and y_test.tolist() == d.tolist()


def _pipeline(block, data):
    return build_pipeline(block.models[0], block.preprocess, data.numeric, data.categorical)


def test_grid_search_equals_scikit_learn(client, cancer):
    block, data, (X_train, _, y_train, _) = cancer
    pipeline = _pipeline(block, data)
    outcome = run_search(pipeline, block.models[0], block.search, "accuracy", X_train, y_train)
    plain = GridSearchCV(pipeline, {"model__C": [0.01, 0.1, 1, 10]}, cv=5,
                         scoring="accuracy").fit(X_train, y_train)
    assert outcome.method == "dask_ml.model_selection.GridSearchCV"
    assert outcome.params == [{"C": c} for c in (0.01, 0.1, 1, 10)]
    for i in range(5):
        np.testing.assert_allclose(outcome.fold_scores[:, i],
                                   plain.cv_results_[f"split{i}_test_score"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(outcome.means, plain.cv_results_["mean_test_score"], atol=1e-15)
    np.testing.assert_allclose(outcome.stds, plain.cv_results_["std_test_score"], atol=1e-15)
    assert outcome.best == plain.best_index_
    assert outcome.best_params == {"C": plain.best_params_["model__C"]}


def test_random_search_draws_and_scores_as_scikit_learn(client, cancer):
    block, data, (X_train, _, y_train, _) = cancer
    model = workload(models=[{"name": "svm", "estimator": "sklearn.svm.SVC",
                              "distributions": {"C": {"loguniform": [0.01, 100]},
                                                "kernel": ["rbf", "linear"]}}],
                     search={"method": "random", "n_iter": 6, "random_state": 3}).models[0]
    pipeline = build_pipeline(model, block.preprocess, data.numeric, data.categorical)
    outcome = run_search(pipeline, model, workload(search={"method": "random", "n_iter": 6,
                                                           "random_state": 3}).search,
                         "f1_macro", X_train, y_train)
    plain = RandomizedSearchCV(
        pipeline, search_space(model.space, True), n_iter=6, random_state=3, cv=5,
        scoring="f1_macro").fit(X_train, y_train)
    assert outcome.params == [{k.removeprefix("model__"): v for k, v in p.items()}
                              for p in plain.cv_results_["params"]]
    np.testing.assert_allclose(outcome.means, plain.cv_results_["mean_test_score"], atol=1e-15)
    assert outcome.best == plain.best_index_


def test_halving_search_runs_on_the_cluster_and_equals_scikit_learn(client, cancer):
    block, data, (X_train, _, y_train, _) = cancer
    search = workload(search={"method": "halving", "factor": 2}).search
    grid = {"C": [0.001, 0.01, 0.1, 1, 10, 100]}
    model = workload(models=[{**block.models[0].model_dump(), "grid": grid}]).models[0]
    pipeline = _pipeline(block, data)
    before = sum(client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state
                            .transition_counter).values())
    outcome = run_search(pipeline, model, search, "accuracy", X_train, y_train)
    after = sum(client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state
                           .transition_counter).values())
    assert after > before  # the fits ran on the Dask workers
    plain = HalvingGridSearchCV(pipeline, {"model__C": grid["C"]}, factor=2, cv=5,
                                scoring="accuracy", random_state=0).fit(X_train, y_train)
    assert outcome.best == plain.best_index_
    np.testing.assert_allclose(outcome.means, plain.cv_results_["mean_test_score"], atol=1e-15)
    assert [it["candidates"] for it in outcome.iterations] == list(plain.n_candidates_)
    assert [it["rows"] for it in outcome.iterations] == list(plain.n_resources_)
    folds = cross_validate_best(pipeline, outcome.best_params, search, "accuracy",
                                X_train, y_train)
    expected = cross_val_score(pipeline.set_params(model__C=outcome.best_params["C"]),
                               X_train, y_train, cv=5, scoring="accuracy")
    np.testing.assert_allclose(folds, expected, atol=1e-15)


def test_best_index_ranks_like_scikit_learn():
    scores = np.array([[0.5, 0.7], [0.7, 0.5], [np.nan, 0.9], [0.6, 0.6]])
    assert best_index(scores) == 0  # ties go to the first
    assert best_index(np.array([[np.nan], [np.nan]])) == 0


def test_corrected_ttest_matches_the_formula_and_is_more_cautious():
    rng = np.random.default_rng(0)
    a = 0.9 + rng.normal(0, 0.01, 10)
    b = a - 0.004 + rng.normal(0, 0.004, 10)
    t, p = corrected_ttest(a, b, n_train=900, n_test=100)
    d = a - b
    expected_t = d.mean() / np.sqrt((1 / 10 + 100 / 900) * d.var(ddof=1))
    assert t == pytest.approx(expected_t, rel=1e-12)
    assert p == pytest.approx(2 * stats.t.sf(abs(expected_t), 9), rel=1e-12)
    plain = stats.ttest_rel(a, b)
    assert abs(t) < abs(plain.statistic) and p > plain.pvalue
    assert np.isnan(corrected_ttest(a, a, 900, 100)[1])


def test_comparisons_name_the_better_model_with_the_p_value():
    good = np.array([0.95, 0.96, 0.94, 0.95, 0.97])
    bad = np.array([0.80, 0.82, 0.79, 0.81, 0.80])
    close = good - np.array([0.01, -0.01, 0.0, 0.01, -0.005])
    pairs = compare_models({"logreg": bad, "forest": good, "svm": close}, n_train=400,
                           n_test=100, alpha=0.05, scoring="accuracy")
    by_pair = {tuple(p["models"]): p for p in pairs}
    first = by_pair[("logreg", "forest")]
    assert first["significant"]
    assert first["verdict"].startswith("forest is better than logreg (accuracy), p = ")
    assert first["paired_t"]["p_value"] == pytest.approx(stats.ttest_rel(bad, good).pvalue)
    assert first["corrected_t"]["df"] == 4
    assert not by_pair[("forest", "svm")]["significant"]
    assert by_pair[("forest", "svm")]["verdict"].startswith("no significant difference")


def test_column_kinds_split_numbers_from_labels():
    frame = dataset_frame("breast_cancer").assign(city=["a", "b"] * 284 + ["a"])
    numeric, categorical = column_kinds(frame.drop(columns="diagnosis"))
    assert categorical == ["city"] and len(numeric) == 30


def _where_and_nested_backend():
    import joblib
    from distributed import get_worker

    backend, _ = joblib.parallel.get_active_backend()
    return get_worker().address, type(backend).__name__


def test_the_halving_backend_runs_on_workers_and_nests_sequentially(client):
    """Each pipeline's ColumnTransformer calls joblib inside every fit; on joblib's plain
    Dask backend each such call became Dask tasks of its own (halving 7x slower)."""
    import joblib

    from shipyard.ml.search import _flat_dask_backend

    workers = set(client.scheduler_info()["workers"])
    with joblib.parallel_backend(_flat_dask_backend()):
        seen = joblib.Parallel(n_jobs=-1)(joblib.delayed(_where_and_nested_backend)()
                                          for _ in range(8))
    assert {address for address, _ in seen} <= workers
    assert {name for _, name in seen} == {"SequentialBackend"}
    with joblib.parallel_backend("dask"):
        plain = joblib.Parallel(n_jobs=-1)(joblib.delayed(_where_and_nested_backend)()
                                           for _ in range(4))
    assert {name for _, name in plain} == {"DaskDistributedBackend"}
