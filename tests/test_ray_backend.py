"""The `ray` backend against a real Ray head (`ray start --head` on loopback): jobs go
through the Ray Jobs API with the job id as submission id, and their states, logs,
retries, timeouts and cancellation come back as shipyard's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shipyard.backends import get_backend
from shipyard.backends.profiles import ClusterProfile
from shipyard.backends.ray_jobs import submission_id
from shipyard.core.home import Home
from shipyard.core.store import JobStore
from helpers import (ROOT, pipeline_doc, python_stage, shipyard as cli, shipyard_json,
                     wait_until)
from ray_head import free_port, ray_head  # noqa: F401 (a fixture)

pytestmark = pytest.mark.cluster  # a Ray head and jobs on it


def python_spec(tmp_path: Path, entrypoint: str, params: dict | None = None, **spec) -> str:
    doc = {"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "on-ray"},
           "spec": {**spec, "python": {"entrypoint": entrypoint, "params": params or {}}}}
    path = tmp_path / f"{entrypoint.replace(':', '-')}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_a_job_runs_as_a_ray_job_named_by_its_id(home, tmp_path, ray_head):
    address, client = ray_head
    final = shipyard_json("run", python_spec(tmp_path, "jobfuncs:echo", {"value": 7}),
                          "--cluster", address, timeout=120)
    assert final["state"] == "SUCCEEDED", final
    assert final["result"]["value"]["value"] == 7
    assert final["cluster"] == address
    assert client.get_job_status(final["id"]) == "SUCCEEDED"  # submission id = job id
    logs = cli("logs", final["id"], check=True).stdout
    assert f"job {final['id']} attempt 1: python workload" in logs  # read from Ray
    assert [j["id"] for j in shipyard_json("list")] == [final["id"]]

    # submitting the same attempt again finds the first Ray job instead of a second
    home_ = Home.from_env()
    store = JobStore(home_.db)
    record = store.get(final["id"])
    backend = get_backend(ClusterProfile(name=address, backend="ray", address=address),
                          home_, store)
    backend._launch(record)
    ours = [j for j in client.list_jobs() if (j.metadata or {}).get("shipyard_job_id")
            == final["id"]]
    assert len(ours) == 1


def test_failures_are_retried_as_new_ray_jobs_but_bad_input_is_not(home, tmp_path, ray_head):
    address, client = ray_head
    final = shipyard_json("run", python_spec(tmp_path, "jobfuncs:boom", {"message": "kaput"},
                                             retries=1), "--cluster", address, timeout=120)
    assert (final["state"], final["attempt"]) == ("FAILED", 2), final
    assert "kaput" in final["reason"]
    for attempt in (1, 2):
        assert client.get_job_status(submission_id(final["id"], attempt)) == "FAILED"
    assert "--- attempt 2 ---" in cli("logs", final["id"]).stdout

    proc = cli("run", python_spec(tmp_path, "jobfuncs:bad_input", retries=2),
               "--cluster", address, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "data/missing.csv: no such file" in proc.stderr
    assert shipyard_json("list")[-1]["attempt"] == 1


def test_cancel_stops_the_ray_job_and_a_timeout_ends_it(home, tmp_path, ray_head):
    address, client = ray_head
    job_id = cli("submit", python_spec(tmp_path, "jobfuncs:sleepy", {"seconds": 120}),
                 "--cluster", address, check=True).stdout.strip()
    wait_until(lambda: shipyard_json("status", job_id)["state"] == "RUNNING", timeout=60,
               interval=0.5, what="RUNNING")
    cli("cancel", job_id, timeout=60, check=True)
    assert shipyard_json("status", job_id)["state"] == "CANCELLED"
    wait_until(lambda: client.get_job_status(job_id) == "STOPPED", timeout=120,
               interval=0.5, what="Ray to stop the job")

    final = shipyard_json("run", python_spec(tmp_path, "jobfuncs:sleepy", {"seconds": 120},
                                             timeout="4s"), "--cluster", address, timeout=120)
    assert (final["state"], final["reason"]) == ("FAILED", "timeout"), final
    wait_until(lambda: client.get_job_status(final["id"]) == "STOPPED", timeout=120,
               interval=0.5, what="Ray to stop the job")


def test_a_torch_job_trains_on_the_ray_cluster(home, ray_head):
    address, _ = ray_head
    final = shipyard_json("run", str(ROOT / "jobs" / "digits-cnn.yaml"), "--cluster", address,
                          "--set", "spec.torch.config.epochs=5", timeout=240)
    assert final["state"] == "SUCCEEDED", final
    result = final["result"]
    assert [m["epoch"] for m in result["metrics"]] == list(range(5))
    assert result["test_metrics"]["test_accuracy"] > 0.8
    assert result["timing"]["ray_start_s"] < 15  # joined the running cluster (no local start)
    assert Path(result["artifacts"]["exported_model"]).is_file()


def test_a_pipeline_runs_each_stage_as_a_ray_job(home, tmp_path, ray_head):
    address, client = ray_head
    document = pipeline_doc(
        python_stage("a", "pipeline_steps:write", declared="out/a.txt", text="A",
                     output="${output}"),
        python_stage("b", "pipeline_steps:concat", needs=["a"], declared="out/b.txt",
                     inputs=["${stages.a.output}", "${stages.a.output}"], output="${output}"))
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump(document))
    final = shipyard_json("run", str(path), "--cluster", address, timeout=180)
    assert final["state"] == "SUCCEEDED", final
    stages = final["result"]["stages"]
    assert stages["b"]["result"]["value"] == {"text": "A+A"}
    for name in ("a", "b"):
        stage_job = shipyard_json("status", stages[name]["job_id"])
        assert stage_job["cluster"] == address
        assert client.get_job_status(stages[name]["job_id"]) == "SUCCEEDED"
    assert (tmp_path / "out" / "b.txt").read_text() == "A+A"


def test_an_unreachable_ray_cluster_exits_3_and_records_nothing(home, tmp_path):
    proc = cli("submit", python_spec(tmp_path, "jobfuncs:echo"), "--cluster",
               f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 3
    assert "cannot reach the Ray Jobs API" in proc.stderr
    assert json.loads(cli("list", "--json").stdout) == []


def test_workers_a_busy_cluster_cannot_place_fail_after_the_placement_timeout(home, tmp_path,
                                                                            ray_head):
    address, _ = ray_head
    digits = str(ROOT / "jobs" / "digits-cnn.yaml")
    # job A holds both CPUs of the head (a placement group, as training workers take them)
    # for a while; unlike training workers it needs no worker processes, and burns no CPU
    holder = cli("submit", python_spec(tmp_path, "jobfuncs:hold_ray_cpus", {"seconds": 120}),
                 "--cluster", address, check=True).stdout.strip()

    def holding():
        record = shipyard_json("status", holder)
        assert record["state"] in ("PENDING", "RUNNING"), record
        progress = record.get("progress") or {}
        return progress.get("phase") == "holding" and progress.get("cpus") == 2

    try:
        wait_until(holding, timeout=120, interval=0.25, what="job A holding the CPUs")
        proc = cli("run", digits, "--cluster", address, "--set", "spec.retries=0",
                   "--set", "spec.torch.scaling.placement_timeout=2s", timeout=120)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "could not place 2 training workers within 2s" in proc.stderr + proc.stdout
    finally:
        cli("cancel", holder)
