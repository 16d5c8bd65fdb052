"""torch jobs end to end on a real local Ray: the digits CNN reaches 95%, its saved model
reproduces the reported metrics, a killed worker and a killed attempt both resume from
the latest checkpoint, and requests the cluster cannot meet fail fast with exit 2.

Each job starts its own local Ray instance, as `shipyard run` does; the suite runs these
jobs one at a time (2 CPUs here, 2 workers per job).
"""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest
import torch

from shipyard.jobs.store import JobStore
from shipyard.train.examples import DigitsCNN, digits_splits
from helpers import ROOT, shipyard as cli, shipyard_json, wait_until

DIGITS = str(ROOT / "jobs" / "digits-cnn.yaml")
# small batches make an epoch last about a second, long enough to kill something in one
SLOW = ["--set", "spec.torch.config.batch_size=2", "--set", "spec.torch.config.epochs=8"]


def status(job_id: str) -> dict:
    return shipyard_json("status", job_id)


def epochs_done(job_id: str) -> int:
    progress = status(job_id).get("progress") or {}
    return progress.get("done", 0) if progress.get("phase") == "train" else 0


def ray_train_workers(session: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if (proc.info["cmdline"] or [""])[0].startswith("ray::RayTrainWorker") \
                    and os.getsid(proc.pid) == session:
                found.append(proc)
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    return found


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(dim=1) == labels).double().mean())


def test_digits_trains_to_95_percent_and_the_saved_model_reproduces_it(home):
    final = shipyard_json("run", DIGITS, timeout=240)
    assert final["state"] == "SUCCEEDED", final
    result = final["result"]
    epochs = 20
    assert [m["epoch"] for m in result["metrics"]] == list(range(epochs))
    assert result["test_metrics"]["test_accuracy"] >= 0.95
    assert result["metrics"][-1]["train_loss"] < result["metrics"][0]["train_loss"]
    assert result["scaling"] == {"workers": 2, "use_gpu": False, "backend": "gloo",
                                 "cpus_per_worker": 1}
    assert result["worker_failures"] == 0 and result["resumed_from_epoch"] is None
    assert result["best_checkpoint"]["score"] == "val_loss"
    assert set(result["timing"]) >= {"ray_start_s", "worker_startup_s", "samples_per_s"}
    # the progress other tools poll reached the last epoch
    assert final["progress"]["phase"] == "train" and final["progress"]["done"] == epochs

    # the artifacts, used without shipyard or Ray, give the metrics the job reported
    test = digits_splits(seed=0)["test"]
    images, labels = test.tensors
    exported = torch.export.load(result["artifacts"]["exported_model"]).module()
    model = DigitsCNN()
    model.load_state_dict(torch.load(result["artifacts"]["model_state_dict"]))
    model.eval()
    reported = result["test_metrics"]["test_accuracy"]
    assert accuracy(exported, images, labels) == pytest.approx(reported)
    assert accuracy(model, images, labels) == pytest.approx(reported)
    confusion = torch.tensor(result["test_metrics"]["test_confusion"])
    assert int(confusion.sum()) == len(labels)


def test_a_killed_worker_resumes_from_the_latest_checkpoint(home):
    job_id = cli("submit", DIGITS, *SLOW, "--set", "spec.torch.failure.max_failures=2",
                 check=True).stdout.strip()
    wait_until(lambda: epochs_done(job_id) >= 2, timeout=120, interval=0.2,
               what="two epochs")
    runner = JobStore(home / "jobs.db").get(job_id).runner_pid
    workers = ray_train_workers(runner)
    assert workers, "no Ray Train worker process found in the attempt's session"
    workers[0].kill()

    final = shipyard_json("wait", job_id, "--timeout", "240", timeout=260)
    assert final["state"] == "SUCCEEDED", final
    assert final["attempt"] == 1  # Ray Train recovered it; the job layer did not retry
    result = json.loads(cli("result", job_id, check=True).stdout)
    assert result["worker_failures"] >= 1
    resumed = result["resumed_from_epoch"]
    assert resumed is not None and resumed >= 1, "training started over from epoch 0"
    # every epoch once: the ones before the failure from the checkpoint, then the rest
    assert [m["epoch"] for m in result["metrics"]] == list(range(8))
    assert all(m.get("resumed_from") == resumed for m in result["metrics"][resumed + 1:])


def test_a_retried_job_resumes_from_the_checkpoint_of_the_attempt_before(home):
    job_id = cli("submit", DIGITS, *SLOW, "--set", "spec.retries=1",
                 "--set", "spec.torch.failure.max_failures=0", check=True).stdout.strip()
    wait_until(lambda: epochs_done(job_id) >= 2, timeout=120, interval=0.2,
               what="two epochs")
    runner = JobStore(home / "jobs.db").get(job_id).runner_pid
    os.kill(runner, signal.SIGKILL)  # the whole attempt dies, as on a lost node

    final = shipyard_json("wait", job_id, "--timeout", "240", timeout=260)
    assert final["state"] == "SUCCEEDED", final
    assert final["attempt"] == 2
    result = json.loads(cli("result", job_id, check=True).stdout)
    assert result["resumed_from_epoch"] is not None and result["resumed_from_epoch"] >= 1
    assert [m["epoch"] for m in result["metrics"]] == list(range(8))
    # nothing of the killed attempt's Ray outlived it
    wait_until(lambda: not ray_train_workers(runner), timeout=15, what="attempt 1's workers")


@pytest.mark.parametrize("override, expected", [
    ("spec.torch.scaling.use_gpu=true", "needs a GPU, but the local Ray instance has no GPU"),
    ("spec.torch.scaling.workers=3", "3 CPUs, but the local Ray instance has 2"),
])
def test_what_the_cluster_cannot_place_fails_fast_with_exit_2(home, override, expected):
    started = time.monotonic()
    proc = cli("run", DIGITS, "--set", override, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr + proc.stdout
    assert time.monotonic() - started < 60
    job = shipyard_json("list")[-1]
    assert job["state"] == "FAILED" and job["attempt"] == 1  # not retried


def test_a_tabular_mlp_trains_on_ray_data_shards_of_a_parquet_table(home, tmp_path):
    from sklearn.datasets import make_classification

    import pandas as pd

    X, y = make_classification(n_samples=3000, n_features=8, n_informative=6,
                               n_classes=3, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(label=y)
    frame.to_parquet(tmp_path / "table.parquet")
    spec = tmp_path / "mlp.yaml"
    spec.write_text(json.dumps({
        "apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "mlp"},
        "spec": {"torch": {"train_loop": "shipyard.train.examples:tabular_mlp",
                           "config": {"target": "label", "classes": 3, "epochs": 8,
                                      "lr": 0.01, "batch_size": 64},
                           "data": {"path": str(tmp_path / "table.parquet"),
                                    "validation": 0.25}}}}))
    final = shipyard_json("run", str(spec), timeout=240)
    assert final["state"] == "SUCCEEDED", final
    result = final["result"]
    test = result["test_metrics"]
    assert test["test_accuracy"] > 0.8
    # the held-out shard was evaluated exactly once over both workers: every row counted once
    held_out = sum(map(sum, test["test_confusion"]))
    assert held_out == 750
    assert result["artifacts"]["export_format"] == "torch.export"
    model = torch.export.load(result["artifacts"]["exported_model"]).module()
    assert model(torch.tensor(X[:5], dtype=torch.float32)).shape == (5, 3)


def test_an_error_in_the_train_loop_fails_the_job_with_the_workers_reason(home):
    proc = cli("run", DIGITS, "--set", "spec.retries=0", "--set", "spec.torch.config.channels=0",
               "--set", "spec.torch.failure.max_failures=0", timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    job = shipyard_json("list")[-1]
    assert job["state"] == "FAILED"
    assert job["reason"].startswith("RuntimeError: training failed on worker")
    assert "spec.torch.failure.max_failures" in job["reason"]
    assert "weight" in job["reason"]  # torch's own complaint about the 0-channel layer
