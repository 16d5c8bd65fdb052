"""The torch block where it enters: loops resolved and checked, scaling validated, data and
its columns checked; the placement check; metrics equal to scikit-learn's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score

from shipyard.core.errors import ResourcesError, SpecError
from shipyard.spec import load
from shipyard.train.job import check_placeable
from shipyard.train.session import classification_metrics
from shipyard.train.spec import ScalingSpec


def torch_doc(**block) -> dict:
    torch_block = {"train_loop": "shipyard.train.examples:image_classifier", **block}
    return {"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "t"},
            "spec": {"torch": torch_block}}


def problems(doc) -> str:
    with pytest.raises(SpecError) as err:
        load(doc)
    return str(err.value) + "\n".join(err.value.problems)


def test_the_digits_job_in_the_catalog_is_valid():
    spec = load("jobs/digits-cnn.yaml")
    assert spec.workload_name == "torch"
    assert spec.workload.scaling.workers == 2 and spec.workload.scaling.use_gpu is False
    assert spec.workload.epochs == spec.workload.config["epochs"]


def test_defaults():
    block = load(torch_doc()).workload
    assert (block.scaling.workers, block.scaling.cpus_per_worker) == (2, 1)
    assert block.scaling.placement_timeout == 60.0
    assert block.failure.max_failures == 0 and block.checkpoint.num_to_keep == 2


@pytest.mark.parametrize("loop, expected", [
    ("shipyard.train.examples:image_clasifier", "did you mean 'image_classifier'?"),
    ("shipyard.train.nowhere:loop", "cannot import module 'shipyard.train.nowhere'"),
    ("train_loops:needs_two", "must take one argument, the config dict"),
    ("train_loops:takes_nothing", "must take one argument, the config dict"),
    ("not a reference", "must be 'package.module:function'"),
])
def test_a_bad_train_loop_is_named_at_validation(home, loop, expected):
    text = problems(torch_doc(train_loop=loop))
    assert "spec.torch.train_loop" in text and expected in text


@pytest.mark.parametrize("scaling, expected", [
    ({"workers": 0}, "spec.torch.scaling.workers"),
    ({"use_gpu": "yes"}, "spec.torch.scaling.use_gpu"),
    ({"worker": 2}, "did you mean 'workers'?"),
    ({"placement_timeout": "soon"}, "spec.torch.scaling.placement_timeout"),
])
def test_bad_scaling_is_named(scaling, expected):
    assert expected in problems(torch_doc(scaling=scaling))


def test_checkpoint_mode_and_failures_are_checked():
    assert "spec.torch.checkpoint.mode" in problems(torch_doc(checkpoint={"mode": "best"}))
    assert "spec.torch.failure.max_failures" in problems(torch_doc(failure={"max_failures": -1}))


def test_missing_data_and_missing_columns_are_named(tmp_path):
    missing = problems(torch_doc(data={"path": str(tmp_path / "none.parquet")}))
    assert "spec.torch.data.path" in missing and "none.parquet" in missing

    path = tmp_path / "table.parquet"
    pd.DataFrame({"age": [1.0, 2.0], "churned": [0, 1]}).to_parquet(path)
    text = problems(torch_doc(train_loop="shipyard.train.examples:tabular_mlp",
                              data={"path": str(path)},
                              config={"target": "churn", "features": ["age", "income"]}))
    assert "spec.torch.config.target: column 'churn' is not in the input" in text and "did you mean 'churned'" in text
    assert "spec.torch.config.features: column 'income'" in text


def test_torch_data_refuses_pandas_reader_options_ray_data_would_ignore(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a;b\n1;2\n")
    text = problems(torch_doc(data={"path": str(path), "sep": ";"}))
    assert "spec.torch.data" in text and "sep: not supported for torch.data" in text


def test_placement_needs_gpus_and_cpus():
    check_placeable(ScalingSpec(workers=2, cpus_per_worker=2), {"CPU": 4.0}, "here")
    with pytest.raises(ResourcesError, match="has no GPU"):
        check_placeable(ScalingSpec(workers=1, use_gpu=True), {"CPU": 8.0}, "here")
    with pytest.raises(ResourcesError, match="has only 1 GPUs"):
        check_placeable(ScalingSpec(workers=2, use_gpu=True), {"CPU": 8.0, "GPU": 1.0}, "here")
    with pytest.raises(ResourcesError, match="4 CPUs, but here has 2"):
        check_placeable(ScalingSpec(workers=4), {"CPU": 2.0}, "here")
    assert ResourcesError("x").exit_code == 2


@pytest.mark.parametrize("seed", range(5))
def test_metrics_from_the_confusion_matrix_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    classes = 4
    y_true = rng.integers(0, classes, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, classes - 1, 200))
    if seed == 0:
        y_true[y_true == 3] = 2  # a class that never occurs, but is predicted
    matrix = torch.tensor(confusion_matrix(y_true, y_pred, labels=range(classes)),
                          dtype=torch.float64)
    ours = classification_metrics(matrix)
    assert ours["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert ours["precision"] == pytest.approx(
        precision_score(y_true, y_pred, average="macro", zero_division=0))
    assert ours["recall"] == pytest.approx(
        recall_score(y_true, y_pred, average="macro", zero_division=0))
