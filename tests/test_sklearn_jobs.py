"""sklearn jobs end to end through the CLI: results a plain scikit-learn script
reproduces, the saved model, batch prediction, clustering, and bad input (exit 2)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score, r2_score, silhouette_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split

import shipyard
from shipyard.core.errors import SpecError
from shipyard.ml.datasets import write_datasets
from helpers import shipyard as cli
from helpers import shipyard_json

pytestmark = pytest.mark.cluster  # sklearn jobs end to end

LOGREG = {"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression",
          "params": {"max_iter": 2000}, "grid": {"C": [0.1, 1, 10]}}
FOREST = {"name": "forest", "estimator": "sklearn.ensemble.RandomForestClassifier",
          "params": {"n_estimators": 30, "random_state": 42}, "grid": {"max_depth": [3, None]}}


@pytest.fixture
def data(home, tmp_path):
    write_datasets(directory=str(tmp_path / "data"))
    return tmp_path / "data"


def sklearn_spec(tmp_path, block: dict, name: str = "ml-job") -> str:
    doc = {"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": name},
           "spec": {"resources": {"workers": 2, "threads_per_worker": 1}, "sklearn": block}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_a_classification_job_is_reproduced_by_plain_scikit_learn(data, tmp_path):
    block = {"input": {"path": "data/breast_cancer.parquet"}, "target": "diagnosis",
             "split": {"test_size": 0.25, "random_state": 7},
             "preprocess": {"numeric": "standard_scaler", "impute": "median"},
             "models": [LOGREG, FOREST], "search": {"method": "grid", "cv": 4},
             "batch_predict": {"input": {"path": "data/breast_cancer.parquet"},
                               "output": {"path": "out/scored.parquet"},
                               "probabilities": True, "keep": ["diagnosis"]}}
    status = shipyard_json("run", sklearn_spec(tmp_path, block), timeout=300)
    assert status["state"] == "SUCCEEDED", status
    result = status["result"]
    assert result["mode"] == "in-memory" and result["task"] == "classification"
    assert result["rows"] == {"input": 569, "train": 426, "test": 143}

    # the same thing, written in plain scikit-learn
    frame = pd.read_parquet(data / "breast_cancer.parquet")
    X, y = frame.drop(columns="diagnosis"), frame["diagnosis"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=7,
                                                        stratify=y)
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def plain(estimator, grid):
        prep = ColumnTransformer([("n", make_pipeline(SimpleImputer(strategy="median"),
                                                      StandardScaler()), list(X.columns))])
        pipe = make_pipeline(prep, estimator)
        name = pipe.steps[-1][0]
        return GridSearchCV(pipe, {f"{name}__{k}": v for k, v in grid.items()}, cv=4,
                            scoring="accuracy").fit(X_train, y_train)

    searches = {"logreg": plain(LogisticRegression(max_iter=2000), LOGREG["grid"]),
                "forest": plain(RandomForestClassifier(n_estimators=30, random_state=42),
                                FOREST["grid"])}
    for name, search in searches.items():
        got = result["models"][name]
        assert got["best_params"] == {k.split("__")[1]: v
                                      for k, v in search.best_params_.items()}
        i = search.best_index_
        expected_folds = [search.cv_results_[f"split{f}_test_score"][i] for f in range(4)]
        np.testing.assert_allclose(got["cv_scores"], expected_folds, atol=1e-15)
        assert got["cv_mean"] == pytest.approx(search.best_score_, abs=1e-15)
        test = got["test_metrics"]
        assert test["accuracy"] == pytest.approx(
            accuracy_score(y_test, search.best_estimator_.predict(X_test)), abs=1e-15)
        for key in ("precision", "recall", "f1", "roc_auc", "confusion_matrix",
                    "classification_report"):
            assert key in test
        assert np.sum(test["confusion_matrix"]) == 143
    best = max(searches, key=lambda n: searches[n].best_score_)
    assert result["best_model"] == best
    (pair,) = result["comparisons"]
    assert pair["models"] == ["logreg", "forest"] and "p = " in pair["verdict"]

    # the saved model predicts as the refitted plain one; the sidecar describes it
    model = joblib.load(result["artifacts"]["model"])
    sidecar = json.loads(open(result["artifacts"]["metadata"]).read())
    assert sidecar["features"] == list(X.columns) and sidecar["target"] == "diagnosis"
    assert sidecar["classes"] == ["benign", "malignant"] and sidecar["model"] == best
    assert "scikit-learn" in sidecar["versions"]
    expected = searches[best].best_estimator_.predict(X)
    assert (model.predict(X) == expected).all()
    scored = pd.read_parquet(tmp_path / "out" / "scored.parquet")
    assert list(scored.columns) == ["diagnosis", "prediction", "probability_benign",
                                    "probability_malignant"]
    assert scored["prediction"].tolist() == expected.tolist()
    assert result["batch_predict"]["rows"] == 569


def test_regression_with_halving_search(data, tmp_path):
    block = {"input": {"path": "data/diabetes.parquet"}, "target": "progression",
             "models": [{"name": "ridge", "estimator": "sklearn.linear_model.Ridge",
                         "grid": {"alpha": [0.01, 0.1, 1, 10, 100, 1000]}}],
             "search": {"method": "halving", "factor": 2, "cv": 3}}
    status = shipyard_json("run", sklearn_spec(tmp_path, block), timeout=300)
    assert status["state"] == "SUCCEEDED", status
    result = status["result"]
    assert result["task"] == "regression" and result["scoring"] == "r2"
    ridge = result["models"]["ridge"]
    assert set(ridge["test_metrics"]) == {"mae", "rmse", "r2"}
    assert "HalvingGridSearchCV" in ridge["search"]["method"]
    assert ridge["search"]["iterations"][0]["candidates"] == 6
    frame = pd.read_parquet(data / "diabetes.parquet")
    X, y = frame.drop(columns="progression"), frame["progression"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    model = joblib.load(result["artifacts"]["model"])
    assert ridge["test_metrics"]["r2"] == pytest.approx(r2_score(y_test, model.predict(X_test)))
    # models are compared on the best candidate's folds over all training rows
    expected = cross_val_score(model, X_train, y_train, cv=3, scoring="r2")
    np.testing.assert_allclose(ridge["cv_scores"], expected, atol=1e-12)


def test_clustering_scores_every_candidate_by_silhouette(data, tmp_path):
    features = [c for c in pd.read_parquet(data / "wine.parquet").columns if c != "cultivar"]
    block = {"input": {"path": "data/wine.parquet"}, "task": "clustering",
             "features": features,
             "models": [{"name": "kmeans", "estimator": "sklearn.cluster.KMeans",
                         "params": {"n_init": 5, "random_state": 0},
                         "grid": {"n_clusters": [2, 3, 4]}},
                        {"name": "dbscan", "estimator": "sklearn.cluster.DBSCAN",
                         "grid": {"eps": [0.1, 2.5]}}]}
    status = shipyard_json("run", sklearn_spec(tmp_path, block), timeout=300)
    assert status["state"] == "SUCCEEDED", status
    result = status["result"]
    kmeans = result["models"]["kmeans"]
    assert kmeans["search"]["candidates"] == 3
    model = joblib.load(result["artifacts"]["model"]) if result["best_model"] == "kmeans" \
        else None
    frame = pd.read_parquet(data / "wine.parquet")[features]
    from sklearn.cluster import KMeans
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(frame)
    for candidate in kmeans["search"]["results"]:
        labels = KMeans(n_init=5, random_state=0, **candidate["params"]).fit_predict(scaled)
        assert candidate["silhouette"] == pytest.approx(silhouette_score(scaled, labels),
                                                        abs=1e-12)
    dbscan = result["models"]["dbscan"]["search"]["results"]
    assert dbscan[0]["silhouette"] is None  # eps 0.1: everything is noise
    assert result["best_model"] == "kmeans" and model is not None
    assert kmeans["best_params"] == {"n_clusters": 3} or kmeans["silhouette"] >= max(
        c["silhouette"] for c in kmeans["search"]["results"])
    del make_pipeline


def test_a_saved_model_scores_a_dataset(data, tmp_path):
    block = {"input": {"path": "data/wine.parquet"}, "target": "cultivar",
             "models": [{"name": "nb", "estimator": "sklearn.naive_bayes.GaussianNB"}],
             "search": {"cv": 3}}
    first = shipyard_json("run", sklearn_spec(tmp_path, block, "train"), timeout=300)
    assert first["state"] == "SUCCEEDED", first
    saved = first["result"]["artifacts"]["model"]
    predict = {"model": saved, "batch_predict": {
        "input": {"path": "data/wine.parquet"}, "output": {"path": "out/wine-scored.parquet"}}}
    second = shipyard_json("run", sklearn_spec(tmp_path, predict, "score"), timeout=300)
    assert second["state"] == "SUCCEEDED", second
    scored = pd.read_parquet(tmp_path / "out" / "wine-scored.parquet")
    frame = pd.read_parquet(data / "wine.parquet")
    expected = joblib.load(saved).predict(frame.drop(columns="cultivar"))
    assert scored["prediction"].tolist() == expected.tolist()


def test_knn_svm_tree_and_boosting_run_under_random_search(data, tmp_path):
    models = [
        {"name": "knn", "estimator": "sklearn.neighbors.KNeighborsClassifier",
         "grid": {"n_neighbors": [3, 5, 9]}},
        {"name": "svm", "estimator": "sklearn.svm.SVC",
         "distributions": {"C": {"loguniform": [0.1, 100]}}},
        {"name": "tree", "estimator": "sklearn.tree.DecisionTreeClassifier",
         "params": {"random_state": 0}, "distributions": {"max_depth": {"randint": [2, 10]}}},
        {"name": "boost", "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
         # 10 boosting rounds reach 0.94 on digits (30: 0.95) in a third of the time
         "params": {"max_iter": 10, "random_state": 0}},
    ]
    block = {"input": {"path": "data/digits.parquet"}, "target": "digit", "models": models,
             "search": {"method": "random", "n_iter": 3, "cv": 3}}
    status = shipyard_json("run", sklearn_spec(tmp_path, block), timeout=300)
    assert status["state"] == "SUCCEEDED", status
    result = status["result"]
    assert set(result["models"]) == {"knn", "svm", "tree", "boost"}
    assert len(result["comparisons"]) == 6
    assert result["models"]["svm"]["search"]["candidates"] == 3
    for model in result["models"].values():
        assert model["test_metrics"]["accuracy"] > 0.6
        assert len(model["test_metrics"]["confusion_matrix"]) == 10


# -- bad input ---------------------------------------------------------------------------

def problems_of(tmp_path, block) -> str:
    with pytest.raises(SpecError) as err:
        shipyard.load(sklearn_spec(tmp_path, block))
    return str(err.value) + "\n" + "\n".join(err.value.problems)


@pytest.mark.parametrize("change, expected", [
    ({"target": "diagnosys"}, "spec.sklearn.target: column 'diagnosys' is not in the input; "
                              "did you mean 'diagnosis'?"),
    ({"features": ["mean_radius", "nope"]}, "spec.sklearn.features: column 'nope'"),
    ({"models": [{**LOGREG, "estimator": "sklearn.linear_model.LogisticRegresion"}]},
     "has no class 'LogisticRegresion'; did you mean 'LogisticRegression'?"),
    ({"models": [{**LOGREG, "params": {"max_iters": 10}}]},
     "spec.sklearn.models[0].params.max_iters: LogisticRegression has no parameter "
     "'max_iters'; did you mean 'max_iter'? (its parameters: C, class_weight,"),
    ({"models": [{**FOREST, "grid": {"max_depth": [3, -1]}}]},
     "spec.sklearn.models[0].grid.max_depth: -1 is not valid for RandomForestClassifier"),
    ({"models": [{**LOGREG, "grid": None, "distributions": {"C": {"lognormal": [1]}}}],
      "search": {"method": "random"}}, "'lognormal' is not a scipy.stats distribution"),
    ({"models": [{**LOGREG, "estimator": "sklearn.linear_model.Ridge", "grid": None,
                  "params": {}}]},
     "Ridge is a regression model, not one for task classification"),
    ({"task": "regression", "models": [{"name": "r", "estimator": "sklearn.linear_model.Ridge"}]},
     "regression needs a numeric target; 'diagnosis' is"),
    ({"search": {"scoring": "acuracy"}}, "'acuracy' is not a scikit-learn scorer; did you "
                                         "mean 'accuracy'?"),
    ({"models": [LOGREG, LOGREG]}, "names must be unique; logreg repeated"),
])
def test_bad_specs_are_refused_before_training(data, tmp_path, change, expected):
    block = {"input": {"path": "data/breast_cancer.parquet"}, "target": "diagnosis",
             "models": [LOGREG], **change}
    assert expected in problems_of(tmp_path, block)


def test_bad_data_exits_2_with_a_readable_message(data, tmp_path):
    frame = pd.read_parquet(data / "breast_cancer.parquet")
    frame.assign(diagnosis="benign").to_parquet(tmp_path / "one-class.parquet")
    holes = frame.copy()
    holes.loc[::10, "mean_radius"] = np.nan
    holes.to_parquet(tmp_path / "holes.parquet")
    cases = [
        ({"input": {"path": "one-class.parquet"}}, "has a single class ('benign')"),
        ({"input": {"path": "holes.parquet"}, "preprocess": {"impute": "none"}},
         "features mean_radius in holes.parquet have missing values and "
         "preprocess.impute is none"),
        ({"input": {"path": "missing.parquet"}}, "missing.parquet"),
    ]
    # imputed, the same holes are fine
    ok = {"input": {"path": "holes.parquet"}, "target": "diagnosis", "models": [LOGREG]}
    specs = [sklearn_spec(tmp_path, {"target": "diagnosis", "models": [LOGREG], **change},
                          name=f"bad-{index}") for index, (change, _) in enumerate(cases)]
    specs.append(sklearn_spec(tmp_path, ok, name="imputed"))
    # the jobs are independent: run at once, they take the time of one
    with ThreadPoolExecutor(len(specs)) as pool:
        procs = list(pool.map(lambda spec: cli("run", spec, timeout=300), specs))
    for (change, expected), proc in zip(cases, procs):
        assert proc.returncode == 2, (change, proc.stdout, proc.stderr)
        assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert procs[-1].returncode == 0, procs[-1].stderr


def test_data_over_max_in_memory_trains_on_the_partitions(home, tmp_path):
    from sklearn.datasets import make_classification

    rows = 24_000  # 1.7 MB of features, over the 1 MiB below; 6 row groups, 6 blocks
    X, y = make_classification(n_samples=rows, n_features=8, n_informative=5,
                               random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(label=y)
    frame.loc[::50, "f0"] = np.nan
    frame.to_parquet(tmp_path / "big.parquet", row_group_size=4_000)
    block = {"input": {"path": "big.parquet"}, "target": "label", "max_in_memory": "1MiB",
             "preprocess": {"impute": "mean"},
             "models": [{"name": "sgd", "estimator": "sklearn.linear_model.SGDClassifier",
                         "params": {"loss": "log_loss", "random_state": 0},
                         "grid": {"alpha": [0.0001, 0.01]}},
                        {"name": "dlogreg",
                         "estimator": "dask_ml.linear_model.LogisticRegression"}],
             "batch_predict": {"input": {"path": "big.parquet"},
                               "output": {"path": "out/big-scored.parquet"}}}
    status = shipyard_json("run", sklearn_spec(tmp_path, block), timeout=300)
    assert status["state"] == "SUCCEEDED", status
    result = status["result"]
    assert result["mode"] == "distributed" and any("dask-ml" in n for n in result["notes"])
    assert result["rows"]["train"] + result["rows"]["test"] == rows
    assert 0.15 < result["rows"]["test"] / rows < 0.25
    sgd = result["models"]["sgd"]
    assert [r["params"] for r in sgd["search"]["results"]] == [{"alpha": 0.0001},
                                                                {"alpha": 0.01}]
    for model in result["models"].values():
        assert model["test_metrics"]["accuracy"] > 0.75
        assert "roc_auc" in model["test_metrics"]
    scored = pd.read_parquet(tmp_path / "out" / "big-scored.parquet")
    saved = joblib.load(result["artifacts"]["model"])
    assert scored["prediction"].tolist() == saved.predict(frame.drop(columns="label")).tolist()

    # an estimator that cannot learn block by block is refused, exit 2
    block["models"] = [{"name": "forest",
                        "estimator": "sklearn.ensemble.RandomForestClassifier"}]
    block.pop("batch_predict")
    proc = cli("run", sklearn_spec(tmp_path, block, "refused"), timeout=300)
    assert proc.returncode == 2 and "cannot learn from it block by block" in proc.stderr


@pytest.mark.parametrize("name", ["breast-cancer-grid", "wine-random", "digits-halving",
                                  "diabetes-regression", "wine-clustering"])
def test_the_example_jobs_validate_against_the_shipped_datasets(home, tmp_path, name):
    from helpers import ROOT

    write_datasets(directory=str(tmp_path / "data" / "sklearn"))
    spec = shipyard.load(ROOT / "jobs" / f"{name}.yaml")
    assert spec.workload_name == "sklearn"


def test_a_clustering_job_labels_batch_predict_rows_with_its_best_model(data, tmp_path):
    features = ["alcohol", "malic_acid", "flavanoids", "color_intensity", "proline"]
    kmeans = {"name": "kmeans", "estimator": "sklearn.cluster.KMeans",
              "params": {"n_init": 3, "random_state": 0}, "grid": {"n_clusters": [2, 3]}}
    block = {"input": {"path": "data/wine.parquet"}, "task": "clustering",
             "features": features, "models": [kmeans],
             "batch_predict": {"input": {"path": "data/wine.parquet"},
                               "output": {"path": "out/wine-clusters.parquet"},
                               "keep": ["cultivar"]}}
    status = shipyard_json("run", sklearn_spec(tmp_path, block), timeout=300)
    assert status["state"] == "SUCCEEDED", status
    labels = pd.read_parquet(tmp_path / "out" / "wine-clusters.parquet")
    model = joblib.load(status["result"]["artifacts"]["model"])
    frame = pd.read_parquet(data / "wine.parquet")
    assert labels["prediction"].tolist() == model.predict(frame[features]).tolist()
    assert labels["cultivar"].tolist() == frame["cultivar"].tolist()

    block["models"].append({"name": "dbscan", "estimator": "sklearn.cluster.DBSCAN"})
    assert ("spec.sklearn.models[1].estimator: DBSCAN cannot label new rows (it has no "
            "predict), so batch_predict cannot use it") in problems_of(tmp_path, block)
