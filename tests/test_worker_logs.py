"""Worker output in the attempt log: Dask workers' lines forwarded to the runner's stderr
(once, with the time and the worker's name), Ray workers' lines given a time."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
import uuid
from pathlib import Path

import pytest

from helpers import wait_until
from shipyard.runtime import ray_logs, worker_logs
from shipyard.runtime.dask_session import DaskSession
from shipyard.spec import Resources

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def chatty(tag: str) -> str:
    """A task that prints, to stdout and stderr, logs, and writes below sys.stderr."""
    print(f"out-{tag}")
    print("err", tag, sep="-", file=sys.stderr)  # several writes make one line
    logger = logging.getLogger(f"jobcode.{tag}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.warning("log-%s", tag)
    logger.removeHandler(handler)
    os.write(2, f"fd-{tag}\n".encode())  # not captured: goes to the worker's own stderr
    return tag


class Output:
    """What the test process printed to stderr (the forwarded lines), accumulated."""

    def __init__(self, capsys):
        self.capsys, self.text = capsys, ""

    def read(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text

    def wait_for(self, *needles: str, timeout: float = 60) -> str:
        wait_until(lambda: all(n in self.read() for n in needles), timeout=timeout,
                   what=f"{needles} in the forwarded output")
        return self.text


def closes(session: DaskSession) -> None:
    """Close ``session`` and fail if it hangs (60 s only stops a hung test: how long a
    close takes is not what is tested)."""
    closing = threading.Thread(target=session.close, daemon=True)
    closing.start()
    closing.join(60)
    assert not closing.is_alive(), "DaskSession.close() hung"


@contextlib.contextmanager
def children_print_to(path: Path):
    """Processes started within the block print to ``path`` (file descriptors 1 and 2),
    as a LocalCluster's workers print to the runner's stderr, the attempt log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


class Cluster:
    def __init__(self, session: DaskSession, raw: Path):
        self.session, self.raw = session, raw

    def raw_text(self) -> str:
        return self.raw.read_text(errors="replace")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A DaskSession's own LocalCluster (as the runner starts it): one worker process,
    whose own stdout/stderr go to a file we can read."""
    raw = tmp_path_factory.mktemp("worker-output") / "raw.log"
    session = DaskSession(Resources(workers=1, threads_per_worker=2),
                          scratch_dir=str(raw.parent / "scratch"))
    with children_print_to(raw):
        session.client  # noqa: B018  (starts the cluster)
    yield Cluster(session, raw)
    session.close()


@pytest.mark.cluster
def test_local_cluster_lines_reach_the_runner_once_with_time_and_worker(local, capsys):
    out = Output(capsys)
    tag = uuid.uuid4().hex[:8]
    assert local.session.client.submit(chatty, tag, pure=False).result() == tag

    text = out.wait_for(f"out-{tag}", f"err-{tag}", f"log-{tag}")
    assert re.search(rf"^{STAMP} worker-0 stdout: out-{tag}$", text, re.M), text
    assert re.search(rf"^{STAMP} worker-0 stderr: err-{tag}$", text, re.M), text
    assert re.search(rf"^{STAMP} worker-0 stderr: WARNING jobcode.{tag}: log-{tag}$",
                     text, re.M), text
    # written below sys.stderr: printed by the worker itself (it reaches the attempt log
    # unformatted); which shows that the raw output is where we look for duplicates
    wait_until(lambda: f"fd-{tag}" in local.raw_text(), what="the worker's raw output")
    raw = local.raw_text()
    for needle in (f"out-{tag}", f"err-{tag}", f"log-{tag}"):
        assert text.count(needle) + raw.count(needle) == 1, (needle, text, raw)
    assert f"fd-{tag}" not in text


@pytest.mark.cluster
def test_lines_of_many_threads_stay_whole(local, capsys):
    out = Output(capsys)
    tag = uuid.uuid4().hex[:8]

    def noisy(tag: str, n: int) -> int:
        import sys

        for i in range(n):
            print("part", tag, i, "end", sep="|", file=sys.stdout if i % 2 else sys.stderr)
        return n

    client = local.session.client
    assert sum(client.gather(client.map(noisy, [tag] * 4, [200] * 4, pure=False))) == 800
    out.wait_for(f"part|{tag}|199|end")
    wait_until(lambda: out.read().count(f"|{tag}|") == 800, what="all 800 lines")
    lines = [line for line in out.text.splitlines() if f"|{tag}|" in line]
    assert all(re.fullmatch(rf"{STAMP} worker-0 std(out|err): part\|{tag}\|\d+\|end", line)
               for line in lines), lines[:5]
    assert f"|{tag}|" not in local.raw_text()


@pytest.mark.cluster
def test_remote_workers_lines_are_forwarded_and_forwarding_is_removed_on_close(local, capsys):
    """A ``tcp://`` scheduler's workers: forwarded to this client, kept in the workers'
    own output too; closing the session takes the plugin and the subscription away."""
    scheduler = local.session._cluster.scheduler
    remote = DaskSession(Resources(workers=1), address=local.session._cluster.scheduler_address)
    try:
        client = remote.client
        forwarding = remote._forwarding
        assert forwarding is not None and forwarding.echo
        tag = uuid.uuid4().hex[:8]
        assert client.submit(chatty, tag, pure=False).result() == tag
        Output(capsys).wait_for(f"worker-0 stdout: out-{tag}")
        # echo: the worker's own output keeps its copy (a pod's log, a daemon's log)
        wait_until(lambda: f"out-{tag}" in local.raw_text(), what="the worker's own copy")
        assert forwarding.plugin_name in scheduler.worker_plugins
        assert client.id in scheduler._broker._topics[forwarding.topic].subscribers
    finally:
        closes(remote)

    assert forwarding.plugin_name not in scheduler.worker_plugins
    assert client.id not in scheduler._broker._topics[forwarding.topic].subscribers
    plugins = local.session.client.run(lambda dask_worker: list(dask_worker.plugins))
    assert all(forwarding.plugin_name not in names for names in plugins.values())
    # the runner's own forwarding is still in place
    assert all(local.session._forwarding.plugin_name in names for names in plugins.values())


@pytest.mark.cluster
def test_lines_stay_after_the_remote_cluster_is_gone(tmp_path, capsys):
    """A separately started scheduler and worker, reached by address: what its worker
    printed, even an unfinished line, is in the runner's output after it has gone."""
    from distributed import LocalCluster

    with children_print_to(tmp_path / "remote-raw.log"):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
    session = DaskSession(Resources(workers=1), address=cluster.scheduler_address)
    tag = uuid.uuid4().hex[:8]

    def print_and_leave_a_line_unfinished(tag: str) -> str:
        print(f"done-{tag}")
        print(f"unfinished-{tag}", end="")  # sent when the worker closes
        return tag

    try:
        client = session.client
        assert client.submit(print_and_leave_a_line_unfinished, tag).result() == tag
        cluster.close()  # as a DaskJob's pods go when it ends
        closes(session)  # the scheduler is gone: must not hang
    finally:
        session.close()
        cluster.close()
    text = Output(capsys).wait_for(f"done-{tag}")
    assert re.search(rf"^{STAMP} worker-0 stdout: done-{tag}$", text, re.M), text
    assert re.search(rf"^{STAMP} worker-0 stdout: unfinished-{tag}$", text, re.M), text


@pytest.mark.cluster
def test_a_failure_to_forward_fails_no_task_and_loses_no_line(local, capsys):
    out = Output(capsys)
    client = local.session.client

    def break_sending(dask_worker) -> None:
        def log_event(topic, msg):
            raise RuntimeError("the scheduler is unreachable")
        dask_worker.log_event = log_event

    client.run(break_sending)
    try:
        first, second = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
        assert client.submit(chatty, first, pure=False).result() == first
        assert client.submit(chatty, second, pure=False).result() == second
        # not forwarded, not lost: the worker prints them itself, as without forwarding
        wait_until(lambda: f"log-{second}" in local.raw_text(), what="the raw lines")
        raw = local.raw_text()
        for tag in (first, second):
            assert f"out-{tag}" in raw and f"err-{tag}" in raw
        assert raw.count("forwarding this worker's output to the client stopped") == 1
        assert f"out-{first}" not in out.read()
        # the worker's streams are its own again
        tapped = client.run(lambda: "write" in vars(sys.stdout) or "write" in vars(sys.stderr))
        assert not any(tapped.values())
    finally:
        client.run(lambda dask_worker: vars(dask_worker).pop("log_event", None))
        # forwarding installed afresh works again (the session's own is inert now)
        local.session._forwarding.close()
        local.session._forward_worker_output()
    tag = uuid.uuid4().hex[:8]
    assert client.submit(chatty, tag, pure=False).result() == tag
    out.wait_for(f"worker-0 stdout: out-{tag}")


# --- the capture itself, without a cluster ---------------------------------------------

class FakeLoop:
    """Runs the callbacks when told, as a worker's event loop runs them later."""

    def __init__(self):
        self.callbacks = []

    def add_callback(self, callback):
        self.callbacks.append(callback)

    def run(self):
        while self.callbacks:
            self.callbacks.pop(0)()


class FakeWorker:
    name, address = "pod-a", "tcp://10.0.0.9:1234"

    def __init__(self, on_send=None):
        self.loop, self.events, self.on_send = FakeLoop(), [], on_send

    def log_event(self, topic, msg):
        if self.on_send:
            self.on_send()
        self.events.append((topic, msg))

    def lines(self) -> list[str]:
        return [line for _, msg in self.events for _, _, line in msg.get("lines", [])]


def test_sending_does_not_capture_what_sending_prints(capsys):
    capture = worker_logs._Capture()
    worker = FakeWorker(on_send=lambda: print("printed while sending"))
    capture.subscribe("topic", worker, echo=False)
    try:
        print("one")
        sys.stderr.write("partial ")
        sys.stderr.write("line\n")
        worker.loop.run()
        print("unfinished", end="")
    finally:
        capture.unsubscribe("topic", worker)
    assert worker.lines() == ["one", "partial line", "unfinished"]
    assert {msg["name"] for _, msg in worker.events} == {"pod-a"}
    captured = capsys.readouterr()
    assert captured.out == "printed while sending\n" * 2 and captured.err == ""
    assert "write" not in vars(sys.stdout) and "write" not in vars(sys.stderr)


def test_threads_lines_do_not_interleave(capsys):
    capture = worker_logs._Capture()
    worker = FakeWorker()
    capture.subscribe("topic", worker, echo=False)
    try:
        def talk(n: int) -> None:
            for i in range(300):
                print("t", n, "line", i, "end", sep=":")

        threads = [threading.Thread(target=talk, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        worker.loop.run()
    finally:
        capture.unsubscribe("topic", worker)
    lines = worker.lines()
    assert len(lines) == 1800
    assert all(re.fullmatch(r"t:\d:line:\d+:end", line) for line in lines), lines[:5]
    assert capsys.readouterr().out == ""


def test_format_time_is_the_runners_asctime():
    # LogRecord itself, not makeLogRecord: once Ray is imported in this process its
    # record factory resets ``created`` from time_ns() but keeps the old ``msecs``,
    # so a factory-made record's asctime can be a millisecond off its own ``created``.
    record = logging.LogRecord("", logging.INFO, "", 0, "x", None, None)
    assert worker_logs.format_time(record.created) == \
        logging.Formatter("%(asctime)s").format(record)


def test_ray_worker_lines_get_a_time():
    """Ray's own print_worker_logs, wrapped: no Ray instance needed."""
    pytest.importorskip("ray")
    from ray._private import worker as ray_worker

    original = ray_worker.print_worker_logs
    assert ray_logs.install_ray_log_timestamps()
    assert ray_logs.install_ray_log_timestamps()  # idempotent
    try:
        sink = io.StringIO()
        ray_worker.print_worker_logs(
            {"pid": 4242, "ip": "10.0.0.7", "localhost": "10.0.0.1", "is_err": False,
             "actor_name": "RayTrainWorker", "lines": ["epoch 1: loss 0.5", "done"]}, sink)
    finally:
        ray_logs.uninstall_ray_log_timestamps()
    assert ray_worker.print_worker_logs is original
    lines = sink.getvalue().splitlines()
    assert all(re.fullmatch(rf"{STAMP} \(RayTrainWorker pid=4242, ip=10\.0\.0\.7\) .+", line)
               for line in lines), lines
    assert [line[24:] for line in lines] == [
        "(RayTrainWorker pid=4242, ip=10.0.0.7) epoch 1: loss 0.5",
        "(RayTrainWorker pid=4242, ip=10.0.0.7) done"]
