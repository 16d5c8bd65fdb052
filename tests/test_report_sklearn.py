"""The sklearn workload's report figures: real jobs from the catalog (trimmed to run in
seconds) through the job layer on one module-scoped Dask cluster; each task's figures
are valid PNGs, ``report: {figures: false}`` draws none, and the numbers behind the
figures agree with what the job reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.model_selection import StratifiedKFold, train_test_split

import shipyard
from shipyard.ml.datasets import write_datasets
from shipyard.report.figures import FigureSet
from shipyard.report.sklearn_data import (CVSettings, comparison_data, curve_data,
                                          learning_curve_data, search_series)
from shipyard.report.sklearn_figures import classification_figures
from helpers import ROOT

pytestmark = pytest.mark.figures  # these tests look at the jobs' figures

CLASSIFICATION = {"class_separation", "learning_curve", "model_comparison",
                  "confusion_matrix", "roc_curve", "precision_recall", "feature_importance",
                  "search_results"}
REGRESSION = {"learning_curve", "model_comparison", "predicted_vs_actual", "residuals",
              "feature_importance", "search_results"}
CLUSTERING = {"clusters", "cluster_sizes", "model_comparison", "search_results"}
DISTRIBUTED = {"model_comparison", "confusion_matrix", "roc_curve", "precision_recall",
               "feature_importance", "search_results"}

LOGREG = {"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression",
          "params": {"max_iter": 1000}, "grid": {"C": [0.01, 1]}}
FOREST = {"name": "forest", "estimator": "sklearn.ensemble.RandomForestClassifier",
          "params": {"n_estimators": 20, "random_state": 42}, "grid": {"max_depth": [3, None]}}


@pytest.fixture(scope="module")
def scheduler():
    """One Dask cluster for every job here (each job's runner connects to it)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    path = tmp_path_factory.mktemp("datasets")
    write_datasets(directory=str(path), names=["breast_cancer", "diabetes", "wine"])
    return path


def catalog_job(name: str, datasets, **changes) -> dict:
    """A job of the catalog (jobs/<name>.yaml) on the test's datasets, its sklearn block
    changed by ``changes`` (no batch scoring: it draws nothing)."""
    doc = yaml.safe_load((ROOT / "jobs" / f"{name}.yaml").read_text())
    block = doc["spec"]["sklearn"]
    block["input"]["path"] = str(datasets / block["input"]["path"].split("/")[-1])
    block.pop("batch_predict", None)
    block.update(changes)
    return doc


def run_job(doc: dict, scheduler: str):
    job = shipyard.run(doc, cluster=scheduler, timeout=240)
    assert job.status().state == "SUCCEEDED", "\n".join(job.logs())
    return job


def drawn(job) -> dict[str, object]:
    return {p.stem: p for p in sorted((job.run_dir / "report" / "figures").glob("*.png"))}


def assert_pngs(paths) -> None:
    from matplotlib.image import imread

    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        image = imread(path)
        assert image.shape[0] >= 200 and image.shape[1] >= 300, (path, image.shape)
        assert image[..., :3].std() > 0.02, f"{path.name} is blank"


@pytest.mark.cluster
def test_a_classification_job_draws_its_figures_from_its_own_search(home, datasets,
                                                                    scheduler):
    import joblib

    doc = catalog_job("breast-cancer-grid", datasets, models=[LOGREG, FOREST],
                      search={"method": "grid", "cv": 3, "scoring": "accuracy"})
    job = run_job(doc, scheduler)
    figures = drawn(job)
    assert set(figures) == CLASSIFICATION
    assert_pngs(figures.values())
    result = job.result()
    best = result["best_model"]

    # the comparison's bars are the models' CV means
    bars = comparison_data(result)
    assert bars["heights"] == [result["models"][n]["cv_mean"] for n in ("logreg", "forest")]
    assert bars["errors"] == [result["models"][n]["cv_std"] for n in ("logreg", "forest")]

    # the learning curve uses the search's folds and scorer: its largest size is a whole
    # CV fold's training rows, where its validation scores are the best model's CV scores
    frame = pd.read_parquet(datasets / "breast_cancer.parquet")
    X, y = frame.drop(columns="diagnosis"), frame["diagnosis"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2,
                                                        random_state=42, stratify=y)
    model = joblib.load(result["artifacts"]["model"])
    curve = learning_curve_data(model, X_train, y_train, CVSettings(cv=3, scoring="accuracy"))
    fold_train = len(next(StratifiedKFold(3).split(X_train, y_train))[0])
    assert curve.sizes[-1] == fold_train
    assert abs(fold_train - result["rows"]["train"] * 2 / 3) < 1
    np.testing.assert_allclose(curve.validation[-1], result["models"][best]["cv_scores"],
                               rtol=0, atol=1e-12)

    # the ROC curve's area is the test metrics' ROC AUC
    (roc,) = curve_data("roc", y_test, model.predict_proba(X_test), list(model.classes_))
    assert roc["label"] == "malignant"
    assert roc["area"] == pytest.approx(result["models"][best]["test_metrics"]["roc_auc"],
                                        abs=1e-12)


@pytest.mark.cluster
def test_figures_false_draws_nothing_and_computes_nothing(home, datasets, scheduler):
    doc = catalog_job("breast-cancer-grid", datasets,
                      models=[{**LOGREG, "grid": None}], search={"cv": 3})
    doc["spec"]["report"] = {"figures": False}
    job = run_job(doc, scheduler)
    assert drawn(job) == {}
    # not even computed: the workload logs each drawing of figures
    assert not any("drawn in" in line for line in job.logs())


@pytest.mark.cluster
def test_a_regression_job_draws_its_figures(home, datasets, scheduler):
    models = [{"name": "ridge", "estimator": "sklearn.linear_model.Ridge",
               "grid": {"alpha": [0.01, 1, 100]}},
              {"name": "forest", "estimator": "sklearn.ensemble.RandomForestRegressor",
               "params": {"n_estimators": 20, "random_state": 0},
               "grid": {"max_depth": [3, None]}}]
    doc = catalog_job("diabetes-regression", datasets, models=models,
                      search={"method": "grid", "cv": 3,
                              "scoring": "neg_root_mean_squared_error"})
    job = run_job(doc, scheduler)
    figures = drawn(job)
    assert set(figures) == REGRESSION
    assert_pngs(figures.values())
    # errors are shown as themselves: RMSE bars are positive
    result = job.result()
    assert comparison_data(result)["heights"] == [-result["models"][n]["cv_mean"]
                                                   for n in ("ridge", "forest")]


@pytest.mark.cluster
def test_a_clustering_job_draws_its_clusters(home, datasets, scheduler):
    models = [{"name": "kmeans", "estimator": "sklearn.cluster.KMeans",
               "params": {"n_init": 3, "random_state": 0}, "grid": {"n_clusters": [2, 3, 4]}},
              {"name": "dbscan", "estimator": "sklearn.cluster.DBSCAN",
               "grid": {"eps": [1.5, 2.5]}}]
    job = run_job(catalog_job("wine-clustering", datasets, models=models), scheduler)
    figures = drawn(job)
    assert set(figures) == CLUSTERING
    assert_pngs(figures.values())


@pytest.mark.cluster
def test_a_job_trained_on_partitions_draws_what_it_holds(home, tmp_path, scheduler):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=4000, n_features=4, n_informative=3,
                               n_redundant=0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)]).assign(label=y)
    frame.to_parquet(tmp_path / "big.parquet", row_group_size=2000)
    block = {"input": {"path": str(tmp_path / "big.parquet")}, "target": "label",
             "max_in_memory": "32KiB",
             "models": [{"name": "sgd", "estimator": "sklearn.linear_model.SGDClassifier",
                         "params": {"loss": "log_loss", "random_state": 0},
                         "grid": {"alpha": [0.0001, 0.01]}}]}
    doc = {"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "big"},
           "spec": {"resources": {"workers": 2, "threads_per_worker": 1}, "sklearn": block}}
    job = run_job(doc, scheduler)
    assert job.result()["mode"] == "distributed"
    figures = drawn(job)
    assert set(figures) == DISTRIBUTED
    assert_pngs(figures.values())


def test_multiclass_figures_are_one_vs_rest_and_fall_back_to_permutation_importance(
        tmp_path, datasets):
    """In process, no cluster: a three-class model without coefficients."""
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_parquet(datasets / "wine.parquet")
    X, y = frame.drop(columns="cultivar"), frame["cultivar"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    model = make_pipeline(StandardScaler(), KNeighborsClassifier()).fit(X_train, y_train)
    matrix = pd.crosstab(y_test, model.predict(X_test)).to_numpy().tolist()
    result = {"task": "classification", "scoring": "accuracy", "best_model": "knn",
              "models": {"knn": {"cv_mean": 0.95, "cv_std": 0.02, "cv_scores": [0.95] * 3,
                                 "best_params": {"n_neighbors": 5},
                                 "test_metrics": {"labels": [0, 1, 2],
                                                  "confusion_matrix": matrix},
                                 "search": {"results": [
                                     {"params": {"n_neighbors": k}, "mean": m, "std": 0.01}
                                     for k, m in [(3, 0.93), (5, 0.95), (9, 0.94)]]}}}}
    figures = FigureSet(tmp_path)
    classification_figures(figures, result, model, X_train, y_train, X_test, y_test,
                           CVSettings(cv=3, scoring="accuracy"))
    assert {e["name"] for e in figures.entries} == CLASSIFICATION
    assert all(e.get("caption") for e in figures.entries)
    assert_pngs((tmp_path / e["path"]) for e in figures.entries)

    scores = model.predict_proba(X_test)
    curves = curve_data("roc", y_test, scores, [0, 1, 2])
    assert [c["label"] for c in curves] == ["0", "1", "2"]
    assert np.mean([c["area"] for c in curves]) == pytest.approx(
        roc_auc_score(y_test, scores, multi_class="ovr"), abs=1e-12)


def test_search_results_show_categories_and_log_scales():
    rows = [{"params": {"max_depth": d, "C": c}, "mean": m}
            for d, c, m in [(3, 0.001, 0.8), (None, 10.0, 0.9), (3, 1.0, None)]]
    series = search_series(rows, sign=-1.0)
    depth, c = series["max_depth"], series["C"]
    # None among numbers makes categories; the failed candidate (no score) is left out
    assert depth["categorical"] and depth["categories"] == ["3", "None"]
    assert depth["x"] == [0, 1] and depth["scores"] == [-0.8, -0.9]
    assert not c["categorical"] and c["log"] and c["stds"] is None
