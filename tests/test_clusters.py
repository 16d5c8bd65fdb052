"""Where jobs compute: an existing Dask scheduler (tcp://), profiles, `cluster up/down`."""

from __future__ import annotations

import json

import pandas as pd
import psutil
import pytest
import yaml
from distributed import LocalCluster

import shipyard
from shipyard.core.states import JobState
from shipyard.spec.yamlio import load_yaml
from helpers import ROOT, job_doc, pipeline_doc, python_stage, shipyard as cli, shipyard_json


@pytest.fixture(scope="module")
def scheduler():
    """A real Dask scheduler with two workers, as a user's existing cluster would be."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        yield cluster


@pytest.mark.cluster
def test_a_job_computes_on_an_existing_scheduler(home, write_spec, scheduler):
    address = scheduler.scheduler_address
    proc = cli("run", str(write_spec("jobfuncs:dask_sum", {"n": 1000})), "--cluster", address,
               "--json")
    assert proc.returncode == 0, proc.stderr
    document = shipyard_json("status", shipyard_json("list")[0]["id"])
    assert document["cluster"] == address and document["backend"] == "dask"
    value = json.loads(proc.stdout)["result"]["value"]
    assert value["sum"] == sum(range(1000))
    assert value["scheduler"] == address
    assert value["workers"] == sorted(scheduler.scheduler_info["workers"])


@pytest.mark.cluster
def test_a_profile_file_names_a_scheduler(home, tmp_path, scheduler):
    profiles = home / "clusters"
    profiles.mkdir(parents=True)
    (profiles / "team.yaml").write_text(yaml.safe_dump(
        {"backend": "dask", "address": scheduler.scheduler_address}))
    job = shipyard.run(job_doc("jobfuncs:dask_sum", cluster="team"))
    assert job.status().cluster == "team"
    assert job.result()["value"]["scheduler"] == scheduler.scheduler_address


@pytest.mark.cluster
def test_a_pipelines_stages_compute_on_an_existing_scheduler(home, tmp_path, scheduler):
    address = scheduler.scheduler_address
    (tmp_path / "raw.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(100)))
    document = pipeline_doc(
        {"name": "prep", "dataframe": {"inputs": {"main": {"path": "raw.csv"}},
                                       "steps": [{"assign": {"y": "x * 2"}}],
                                       "output": {"path": "out/prep.parquet"}}},
        python_stage("sum", "jobfuncs:dask_sum", needs=["prep"], n=100))
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump(document))
    proc = cli("run", str(path), "--cluster", address, "--json", timeout=180)
    assert proc.returncode == 0, proc.stderr
    final = json.loads(proc.stdout)
    stages = final["result"]["stages"]
    assert stages["sum"]["result"]["value"]["scheduler"] == address
    assert shipyard_json("status", stages["prep"]["job_id"])["cluster"] == address
    # no cluster of the pipeline's own was started beside the user's
    assert "pipeline's Dask cluster" not in cli("logs", final["id"]).stdout
    assert pd.read_parquet(tmp_path / "out" / "prep.parquet")["y"].tolist() == [
        2 * i for i in range(100)]


@pytest.mark.cluster
def test_an_existing_scheduler_is_not_started_or_stopped(home, scheduler):
    address = scheduler.scheduler_address
    assert shipyard_json("cluster", "status", address) == {
        "name": address, "backend": "dask", "address": address, "up": True}
    for action in ("up", "down"):
        proc = cli("cluster", action, address)
        assert proc.returncode == 2 and "does not start or stop it" in proc.stderr
    assert shipyard_json("cluster", "status", "tcp://127.0.0.1:9")["up"] is False


def test_a_profile_with_an_unknown_backend_is_refused(home):
    (home / "clusters").mkdir(parents=True)
    (home / "clusters" / "odd.yaml").write_text("backend: slurm\n")
    proc = cli("cluster", "status", "odd")
    assert proc.returncode == 2 and "backend must be one of dask, kubernetes, local, ray, got 'slurm'" in proc.stderr


@pytest.mark.cluster
def test_cluster_up_with_the_shipped_profile_runs_jobs_on_one_long_lived_cluster(
        home, monkeypatch):
    """`shipyard cluster up` in the repository, as README says: the shipped
    cluster/local.yaml (memory_per_worker: auto) sizes the cluster."""
    monkeypatch.chdir(ROOT)  # ./cluster/local.yaml is the shipped profile
    shipped = load_yaml((ROOT / "cluster" / "local.yaml").read_text())["resources"]
    assert shipped["memory_per_worker"] == "auto"  # what this test is about
    assert "local (local): down" in cli("cluster", "status").stdout
    up = cli("cluster", "up", "--json", timeout=120)
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)  # one JSON document, the shape of `cluster status --json`
    try:
        assert info == shipyard_json("cluster", "status")
        assert info["up"] and info["address"].startswith("tcp://")
        assert (info["workers"], info["threads_per_worker"]) == (
            shipped["workers"], shipped["threads_per_worker"])
        assert info["memory_per_worker"] > 0  # the bytes `auto` came to on this machine
        assert "local (local): up" in cli("cluster", "status").stdout
        first = shipyard.run(job_doc("jobfuncs:dask_sum"))
        run = cli("run", str(write_job(home, "jobfuncs:dask_sum")), "--json")
        assert run.returncode == 0, run.stderr
        second = shipyard.get_job(json.loads(run.stdout)["id"])
        for job in (first, second):
            assert job.status().state is JobState.SUCCEEDED
            assert job.result()["value"]["scheduler"] == info["address"]
        assert any("running local cluster" in (e.message or "") for e in first.events())
        # a job whose module lies only next to its spec (jobs/churn_data.py): the
        # long-lived workers import it from the job's code package (issue 19: they
        # failed with "No module named 'churn_data'")
        data = home.parent / "churn"
        churn = cli("run", "jobs/churn-data.yaml", "--set", "spec.python.params.rows=2000",
                    "--set", f"spec.python.params.output_dir={data}", "--json", timeout=300)
        assert churn.returncode == 0, churn.stderr
        assert len(pd.read_parquet(data / "customers.parquet")) == 2000
        assert shipyard.get_job(json.loads(churn.stdout)["id"]).run_dir.side("code")["files"] > 0
        again = cli("cluster", "up", "--json")  # already up: says so, starts nothing
        assert again.returncode == 0 and json.loads(again.stdout) == info
    finally:
        down = cli("cluster", "down", "--json", timeout=60)
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout) == {"name": "local", "backend": "local", "up": False}
    assert json.loads(down.stdout) == shipyard_json("cluster", "status")
    assert not psutil.pid_exists(info["pid"]) or \
        psutil.Process(info["pid"]).status() == psutil.STATUS_ZOMBIE
    assert "local (local): down" in cli("cluster", "down").stdout  # down again: nothing to do


def write_job(home, entrypoint: str) -> str:
    path = home.parent / "job.yaml"
    path.write_text(yaml.safe_dump(job_doc(entrypoint)))
    return str(path)


@pytest.mark.parametrize("profile", [
    {"backend": "dask", "address": "tcp://dask.example.invalid:8786"},
    {"backend": "ray", "address": "http://ray.example.invalid:8265"}])
def test_local_data_is_refused_for_a_cluster_that_shares_no_disk(home, tmp_path, profile):
    """Issue 19: a local path on a remote cluster was read or written on its nodes' own
    disks. Now it is refused before anything is recorded or the cluster is asked."""
    (home / "clusters").mkdir(parents=True)
    (home / "clusters" / "team.yaml").write_text(yaml.safe_dump(profile))
    (tmp_path / "in.csv").write_text("a\n1\n")
    spec = tmp_path / "prep.yaml"
    spec.write_text(yaml.safe_dump({
        "apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "prep"},
        "spec": {"dataframe": {"inputs": {"main": {"path": str(tmp_path / "in.csv")},
                                          "remote": {"path": "s3://lake/regions.parquet"}},
                               "output": {"path": "out/prep.parquet"}}}}))
    refused = cli("submit", str(spec), "--cluster", "team")
    assert refused.returncode == 2, refused.stderr
    assert "cluster 'team': its nodes do not see this machine's disk" in refused.stderr
    assert "spec.dataframe.inputs.main.path: " in refused.stderr
    assert "spec.dataframe.output.path: 'out/prep.parquet'" in refused.stderr
    error = refused.stderr[refused.stderr.index("error:"):]
    assert "inputs.remote" not in error and "Traceback" not in refused.stderr
    assert shipyard_json("list") == []  # nothing recorded
    pipeline = tmp_path / "pipe.yaml"
    pipeline.write_text(yaml.safe_dump(pipeline_doc(
        {"name": "prep", "dataframe": {"inputs": {"main": {"path": str(tmp_path / "in.csv")}},
                                       "output": {"path": "s3://lake/prep.parquet"}}})))
    stage = cli("submit", str(pipeline), "--cluster", "team")
    assert stage.returncode == 2 and "spec.dataframe.inputs.main.path" in stage.stderr
    # a cluster whose nodes mount the same paths says so; then the cluster is asked
    (home / "clusters" / "team.yaml").write_text(yaml.safe_dump(
        {**profile, "shared_filesystem": True}))
    asked = cli("submit", str(spec), "--cluster", "team")
    assert asked.returncode == 3, asked.stderr
