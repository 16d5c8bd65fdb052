"""Shared fixtures: an isolated SHIPYARD_HOME per test and spec files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import FIXTURES, job_doc


@pytest.fixture
def home(tmp_path, monkeypatch, request) -> Path:
    """A fresh SHIPYARD_HOME, and the test job functions importable as `jobfuncs`.

    Jobs draw no figures unless the test is marked ``figures``: a figure that fails
    never fails its job, so only the tests that look at figures learn anything from
    drawing them (the rest spent a fifth of their time on it)."""
    path = tmp_path / "home"
    monkeypatch.setenv("SHIPYARD_HOME", str(path))
    if request.node.get_closest_marker("figures") is None:
        monkeypatch.setenv("SHIPYARD_REPORT_FIGURES", "false")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(FIXTURES), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.chdir(tmp_path)
    return path


@pytest.fixture
def write_spec(tmp_path) -> Callable[..., Path]:
    """Write a python-workload spec file; returns its path."""
    counter = iter(range(10_000))

    def write(entrypoint: str, params: dict | None = None, name: str = "test-job",
              **spec: Any) -> Path:
        path = tmp_path / f"spec-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(job_doc(entrypoint, params, name, **spec)))
        return path

    return write


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API server (moto) on loopback, as s3fs's own tests use."""
    from moto.server import ThreadedMotoServer

    # port 0: the server binds any free one itself (a port picked here first could be
    # taken before it binds, and then start() waits for ever)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
