"""torch jobs end to end on a real local Ray: the digits CNN reaches 95%, its saved model
reproduces the reported metrics, a killed worker and a killed attempt both resume from
the latest checkpoint, and requests the cluster cannot meet fail fast with exit 2.

Each job starts its own local Ray instance, as `shipyard run` does; the suite runs these
jobs one at a time (2 CPUs here, 2 workers per job).
"""

from __future__ import annotations

import json
import os
import re
import signal

import jsonschema
import psutil
import pytest
import torch
from matplotlib.image import imread

import shipyard
from shipyard.core.store import JobStore
from shipyard.report.figures import FigureSet
from shipyard.report.torch_figures import draw_torch_figures, metric_keys, metric_series
from shipyard.train.examples import DigitsCNN, digits_splits
from shipyard.train.session import TrainSession, current_lr
from helpers import ROOT, shipyard as cli, shipyard_json, wait_until

pytestmark = pytest.mark.cluster  # Ray Train jobs

DIGITS = str(ROOT / "jobs" / "digits-cnn.yaml")
# small batches make an epoch last about a second, long enough to kill something in one.
# The kills below come once epoch 1 is reported (its checkpoint saved), in epoch 2; epochs
# 2 and 3 are then trained from that checkpoint, and leave a kill that comes late time to
# land while training still runs
EPOCHS = 4
SLOW = ["--set", "spec.torch.config.batch_size=2", "--set", f"spec.torch.config.epochs={EPOCHS}"]
TORCH_FIGURES = ["loss", "accuracy", "learning_rate", "throughput"]


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


@pytest.mark.figures
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
    # the optimizer's learning rate in every epoch's entry, and the figures, drawn in the
    # driver from that history
    assert [m["lr"] for m in result["metrics"]] == [0.005] * epochs
    figures = home / "runs" / final["id"] / "report" / "figures"
    for name in TORCH_FIGURES:
        assert imread(figures / f"{name}.png").shape[0] > 100, name
    # the progress other tools poll reached the last epoch
    assert final["progress"]["phase"] == "train" and final["progress"]["done"] == epochs
    assert final["progress"]["unit"] == "epochs" and final["progress"]["ray_dashboard"]
    # the result follows its schema; the report shows the epochs and every figure
    jsonschema.validate(result, shipyard.result_schema())
    page = (home / "runs" / final["id"] / result["report"]).read_text()
    assert "Epochs" in page and page.count("<img") == len(result["figures"]) >= 4
    # Ray workers' output reached the attempt log through the driver, with the time
    log = (home / "runs" / final["id"] / "logs" / "attempt-1.log").read_text()
    ray_lines = [line for line in log.splitlines() if re.search(r"\((?:\w+ )?pid=\d+", line)]
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \(", line)
               for line in ray_lines), ray_lines[:3]

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
    wait_until(lambda: epochs_done(job_id) >= 2, timeout=120, interval=0.05,
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
    assert [m["epoch"] for m in result["metrics"]] == list(range(EPOCHS))
    assert all(m.get("resumed_from") == resumed for m in result["metrics"][resumed + 1:])


def test_a_retried_job_resumes_from_the_checkpoint_of_the_attempt_before(home):
    job_id = cli("submit", DIGITS, *SLOW, "--set", "spec.retries=1",
                 "--set", "spec.torch.failure.max_failures=0", check=True).stdout.strip()
    wait_until(lambda: epochs_done(job_id) >= 2, timeout=120, interval=0.05,
               what="two epochs")
    runner = JobStore(home / "jobs.db").get(job_id).runner_pid
    os.kill(runner, signal.SIGKILL)  # the whole attempt dies, as on a lost node

    final = shipyard_json("wait", job_id, "--timeout", "240", timeout=260)
    assert final["state"] == "SUCCEEDED", final
    assert final["attempt"] == 2
    result = json.loads(cli("result", job_id, check=True).stdout)
    assert result["resumed_from_epoch"] is not None and result["resumed_from_epoch"] >= 1
    assert [m["epoch"] for m in result["metrics"]] == list(range(EPOCHS))
    # nothing of the killed attempt's Ray outlived it
    wait_until(lambda: not ray_train_workers(runner), timeout=120, what="attempt 1's workers")


@pytest.mark.parametrize("override, expected", [
    ("spec.torch.scaling.use_gpu=true", "needs a GPU, but the local Ray instance has no GPU"),
    ("spec.torch.scaling.workers=3", "3 CPUs, but the local Ray instance has 2"),
])
def test_what_the_cluster_cannot_place_fails_fast_with_exit_2(home, override, expected):
    proc = cli("run", DIGITS, "--set", override, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr + proc.stdout
    job = shipyard_json("list")[-1]
    assert job["state"] == "FAILED" and job["attempt"] == 1  # not retried
    # refused from what the local instance would have, before starting it
    assert "Ray started" not in cli("logs", job["id"], check=True).stdout


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


def synthetic_history(epochs: int = 6) -> list[dict]:
    return [{"epoch": e, "train_loss": 2.0 / (e + 1), "val_loss": 2.5 / (e + 1),
             "train_accuracy": 0.5 + e / 20, "val_accuracy": 0.45 + e / 20,
             "lr": 0.1 * 0.5 ** e, "samples_per_s": 900.0 + e, "samples": 1000,
             "elapsed_s": 1.0 + e, "timestamp": 1.7e9 + e} for e in range(epochs)]


def test_torch_figures_plot_the_history(tmp_path):
    history = synthetic_history()
    # a repeated epoch (the latest report wins), and an epoch without validation
    history.insert(3, {**history[2], "val_loss": 99.0})
    history[3], history[2] = history[2], history[3]
    history.append({"epoch": 6, "train_loss": 0.2, "val_loss": float("nan"), "lr": 0.001})
    assert metric_keys(history, "loss") == ["train_loss", "val_loss"]
    assert metric_keys(history, "accuracy") == ["train_accuracy", "val_accuracy"]
    epochs, values = metric_series(history, "val_loss")
    assert epochs == [0, 1, 2, 3, 4, 5] and values == [2.5 / (e + 1) for e in range(6)]
    assert metric_series(history, "lr") == (list(range(7)),
                                            [0.1 * 0.5 ** e for e in range(6)] + [0.001])
    assert metric_series(history, "train_loss")[1][-1] == 0.2

    figures = FigureSet(tmp_path)
    draw_torch_figures(figures, history)
    assert [e["name"] for e in figures.entries] == TORCH_FIGURES
    assert all(e["caption"] for e in figures.entries)
    for name in TORCH_FIGURES:
        assert imread(tmp_path / "report" / "figures" / f"{name}.png").ndim == 3

    # what the loop did not report is not drawn; a disabled set draws nothing at all
    bare = FigureSet(tmp_path / "bare")
    draw_torch_figures(bare, [{"epoch": 0, "train_loss": 1.0}, {"epoch": 1, "train_loss": 0.5}])
    assert [e["name"] for e in bare.entries] == ["loss"]
    off = FigureSet(tmp_path / "off", enabled=False)
    draw_torch_figures(off, synthetic_history())
    assert off.entries == [] and not (tmp_path / "off" / "report").exists()


def test_current_lr_follows_the_scheduler():
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    assert current_lr(optimizer) == 0.1
    optimizer.step()
    scheduler.step()
    assert current_lr(optimizer) == pytest.approx(0.05)
    assert isinstance(current_lr(torch.optim.Adam([weight], lr=torch.tensor(0.01))), float)


def one_worker_session() -> TrainSession:
    """A TrainSession as Ray Train's only worker on the CPU would have it, made without
    Ray (its constructor reads Ray Train's context)."""
    session = TrainSession.__new__(TrainSession)
    session.rank, session.world_size, session.epoch = 0, 1, 0
    session.device, session.amp = torch.device("cpu"), False
    return session


def test_an_epoch_without_training_rows_is_an_error_not_a_zero_loss():
    session = one_worker_session()
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = (torch.ones(4, 2), torch.tensor([0, 1, 0, 1]))
    stats = session.train_epoch(model, [batch], optimizer, loss_fn)
    assert stats["samples"] == 4 and stats["train_loss"] > 0
    with pytest.raises(ValueError, match="without a single training row"):
        session.train_epoch(model, [], optimizer, loss_fn)
