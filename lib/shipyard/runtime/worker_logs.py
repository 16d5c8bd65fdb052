"""Dask workers' output, forwarded into the attempt's log.

The attempt log is what the runner process prints. A Dask worker on another machine (a
DaskJob's worker pods, the workers of a ``tcp://`` scheduler) prints to its own log,
which goes when the cluster goes. This module brings it into the runner's output, one
line per line, each stamped with the time it was printed (the runner's ``%(asctime)s``
format, :func:`format_time`) and the worker it came from::

    2026-11-25 10:00:00,123 worker-0 stdout: loaded 8 partitions

(A Ray worker's output reaches the driver already; :mod:`shipyard.runtime.ray_logs`
puts the same time in front of its lines.)

:func:`forward_dask_worker_output` subscribes the client to its own event topic (the
topic named after the client, which the scheduler drops some time after the client
leaves) and registers :class:`WorkerLogForwarder` with ``Client.register_plugin``, so
workers that join later get it too. On a worker the plugin taps ``write`` and ``flush``
of the ``sys.stdout`` and ``sys.stderr`` objects themselves (as distributed's
``ForwardOutput`` does, so that logging handlers made earlier, which hold those objects,
are included), cuts what is written into lines per thread, and sends them in batches
with ``Worker.log_event`` from the worker's event loop. Unlike ``ForwardOutput`` (whose
``print`` events reach every client as raw text, one event per write, through a buffer
all threads share), lines are kept whole per thread, carry the time and the worker's
name, go only to the client that asked, are bounded in number, and need not also be
printed locally: a LocalCluster's workers inherit the runner's stderr, so there the
forwarded copy replaces the raw one (``echo=False``) and no line appears twice.

What is not captured: output written below ``sys.stdout`` (C extensions writing to file
descriptor 1 or 2, subprocesses, ``sys.stdout.buffer``). On a LocalCluster it still
reaches the attempt log, unformatted; on a remote worker it stays in the worker's own
log.

Forwarding may not fail a job: a failure to forward is logged once and output goes back
to where it went without forwarding.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from distributed.diagnostics.plugin import WorkerPlugin

if TYPE_CHECKING:
    from distributed import Client, Worker

__all__ = ["WorkerLogForwarder", "DaskLogForwarding", "forward_dask_worker_output",
           "format_time", "format_line"]

log = logging.getLogger("shipyard.worker_logs")

#: Marks this module's events among the others on the client's topic (and their version).
EVENT_MARK = "shipyard-worker-logs"
#: Lines waiting to be sent from one worker process; past it lines are not forwarded
#: (they are printed by the worker itself) and a note says how many.
MAX_PENDING_LINES = 10_000
#: A longer line is forwarded in pieces of this many characters.
MAX_LINE_CHARS = 16_384
#: On closing, how long to wait for the workers' last lines.
CLOSE_FLUSH_SECONDS = 2.0


def format_time(created: float) -> str:
    """``created`` (seconds since the epoch) as logging's ``%(asctime)s`` shows it.

    Examples
    --------
    >>> import re
    >>> bool(re.fullmatch(r"\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d,\\d{3}",
    ...                   format_time(1795600800.123)))
    True
    """
    record = logging.LogRecord("", logging.INFO, "", 0, "", None, None)
    record.created, record.msecs = created, int((created - int(created)) * 1000)
    return _TIME_FORMATTER.formatTime(record)


_TIME_FORMATTER = logging.Formatter()


def format_line(created: float, worker: str, stream: str, line: str) -> str:
    """One forwarded line as the attempt log shows it (with its newline).

    Examples
    --------
    >>> format_line(1795600800.5, "worker-0", "stdout", "hello")[23:]
    ' worker-0 stdout: hello\\n'
    """
    return f"{format_time(created)} {worker} {stream}: {line}\n"


def _worker_label(worker: Worker) -> str:
    """The worker's name as one word: a LocalCluster names its workers 0, 1, ...; a
    DaskJob after their pods; a worker without a name is known by its address."""
    name = getattr(worker, "name", None)
    text = "" if name is None else str(name)
    if text.isdigit():  # a worker process gets its LocalCluster name as a string
        return f"worker-{text}"
    return "_".join((text or str(getattr(worker, "address", ""))).split()) or "worker"


# ---------------------------------------------------------------------------------------
# The worker's side

_local = threading.local()


def _busy() -> bool:
    return getattr(_local, "busy", False)


@contextlib.contextmanager
def _passthrough() -> Iterator[None]:
    """Within the block, this thread's writes go straight to the streams, uncaptured:
    what forwarding itself prints (sending, reporting its own failure) is never sent
    again, and a write that arrives while the thread is inside the capture (a signal
    handler, a finalizer) cannot deadlock on its lock."""
    previous = _busy()
    _local.busy = True
    try:
        yield
    finally:
        _local.busy = previous


def _clean(line: str) -> Iterator[str]:
    """What a line shows (after a carriage return, what overwrote it: progress bars),
    text msgpack can encode, in pieces of at most :data:`MAX_LINE_CHARS`."""
    line = line.rstrip("\r")
    if "\r" in line:
        line = line.rsplit("\r", 1)[1]
    if not line.isascii():
        line = line.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    for start in range(0, max(len(line), 1), MAX_LINE_CHARS):
        yield line[start:start + MAX_LINE_CHARS]


class _Tap:
    """``write`` and ``flush`` of one stream object, replaced by the capture's (instance
    attributes, so whoever holds the object, not only ``sys.stdout``, is covered)."""

    def __init__(self, capture: _Capture, name: str, stream: TextIO):
        self.capture, self.name, self.stream = capture, name, stream
        own = vars(stream)
        self._saved = {attr: own[attr] for attr in ("write", "flush") if attr in own}
        self.write_raw: Callable[[str], Any] = stream.write
        self.flush_raw: Callable[[], Any] = stream.flush
        self.removed = False
        self._hooks = {"write": self._write, "flush": self._flush}

    def install(self) -> None:
        for attr, hook in self._hooks.items():
            setattr(self.stream, attr, hook)

    def remove(self) -> None:
        self.removed = True  # from now on a call that still reaches us passes through
        own = vars(self.stream)
        for attr, hook in self._hooks.items():
            if own.get(attr) is not hook:
                continue  # someone replaced ours since: theirs stays
            if attr in self._saved:
                setattr(self.stream, attr, self._saved[attr])
            else:
                delattr(self.stream, attr)

    def _write(self, data: str) -> Any:
        if self.removed or _busy() or not isinstance(data, str):
            return self.write_raw(data)
        with _passthrough():
            try:
                echo = self.capture.take(self.name, data)
            except Exception as err:  # never the writer's problem
                self.capture.fail(err)
                echo = True
        if echo:
            return self.write_raw(data)
        return len(data)

    def _flush(self) -> Any:
        if not self.removed and not _busy():
            with _passthrough():
                self.capture.take_partial(self.name)
        return self.flush_raw()


@dataclass
class _Subscription:
    worker: Worker
    topic: str
    label: str
    echo: bool


class _Capture:
    """The worker process's stdout and stderr, cut into lines and sent to the topics
    subscribed (one per client that forwards; normally one). Shared by the plugins in
    the process, so a second client's plugin does not tap the streams a second time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, _Subscription] = {}
        self._taps: list[_Tap] = []
        self._partial: dict[tuple[int, str], str] = {}  # (thread, stream) -> unfinished line
        self._queue: list[list] = []  # [created, stream, line]
        self._dropped = 0
        self._scheduled = False
        self._echo = True

    # -- subscriptions (on the worker's event loop) --

    def subscribe(self, topic: str, worker: Worker, echo: bool) -> None:
        with self._lock:
            self._subs[topic] = _Subscription(worker, topic, _worker_label(worker), echo)
            self._echo = any(sub.echo for sub in self._subs.values())
            if not self._taps:
                self._taps = self._install_taps()

    def _install_taps(self) -> list[_Tap]:
        taps: list[_Tap] = []
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name, None)
            if stream is None or not hasattr(stream, "__dict__") or \
                    any(tap.stream is stream for tap in taps):
                continue  # no stream, one that takes no attributes, or the same object twice
            tap = _Tap(self, name, stream)
            tap.install()
            taps.append(tap)
        return taps

    def unsubscribe(self, topic: str, worker: Worker) -> None:
        with self._lock:
            sub = self._subs.get(topic)
            if sub is None or sub.worker is not worker:
                return
            if len(self._subs) == 1:  # the last one: unfinished lines go now
                self._queue_partials()
        self.drain()
        with self._lock:
            self._subs.pop(topic, None)
            self._echo = any(s.echo for s in self._subs.values()) if self._subs else True
            taps, leftover = ([], []) if self._subs else (self._taps, self._queue)
            if not self._subs:
                self._taps, self._queue, self._partial = [], [], {}
                self._scheduled = False  # a drain still on its way finds nothing to do
            echoed = sub.echo
        for tap in taps:
            tap.remove()
        if not echoed:
            self._write_raw(leftover)  # written between the drain and the removal

    # -- writes (any thread) --

    def take(self, stream: str, data: str) -> bool:
        """Capture what a thread wrote; return whether it must also be written as is."""
        with self._lock:
            if not self._subs:
                return True
            if len(self._queue) >= MAX_PENDING_LINES:
                self._dropped += data.count("\n")
                return True  # the worker's own output keeps it
            key = (threading.get_ident(), stream)
            lines = (self._partial.pop(key, "") + data).split("\n")
            rest = lines.pop()
            if len(rest) >= MAX_LINE_CHARS:
                lines.append(rest)
            elif rest:
                self._partial[key] = rest
            if lines:
                self._enqueue(stream, lines)
            loop = self._schedule_locked() if lines else None
            echo = self._echo
        if loop is not None:
            self._schedule(loop)
        return echo

    def take_partial(self, stream: str) -> None:
        """A flush: the thread's unfinished line is sent as it is."""
        with self._lock:
            rest = self._partial.pop((threading.get_ident(), stream), None)
            if not rest or not self._subs:
                return
            self._enqueue(stream, [rest])
            loop = self._schedule_locked()
        if loop is not None:
            self._schedule(loop)

    def _enqueue(self, stream: str, lines: list[str]) -> None:
        now = time.time()
        # not the worker's narration of this plugin ("Removing Worker plugin shipyard-...")
        self._queue.extend([now, stream, piece] for line in lines if EVENT_MARK not in line
                           for piece in _clean(line))

    def _queue_partials(self) -> None:
        partial, self._partial = self._partial, {}
        for (_, stream), rest in partial.items():
            self._enqueue(stream, [rest])

    def _schedule_locked(self) -> Any:
        """The loop to send on, if a send is not already on its way."""
        if self._scheduled:
            return None
        self._scheduled = True
        return next(iter(self._subs.values())).worker.loop

    def _schedule(self, loop: Any) -> None:
        try:
            loop.add_callback(self.drain)  # thread-safe; sends after what is queued already
        except Exception as err:  # a closed loop
            self.fail(err)

    # -- sending (the worker's event loop) --

    def drain(self) -> None:
        """Send the lines captured so far, one event per subscribed topic."""
        with _passthrough():
            with self._lock:
                self._scheduled = False
                lines, self._queue = self._queue, []
                dropped, self._dropped = self._dropped, 0
                subs = list(self._subs.values())
            if dropped:
                lines.append([time.time(), "stderr",
                              f"[{dropped} lines not forwarded: they came faster than they "
                              "could be sent; the worker printed them itself]"])
            if not lines or not subs:
                return
            try:
                for sub in subs:
                    # "name": the scheduler sets "worker" to the worker's address
                    sub.worker.log_event(sub.topic, {EVENT_MARK: 1, "name": sub.label,
                                                     "lines": lines})
            except Exception as err:
                self.fail(err, lines)

    def fail(self, err: BaseException, lines: list[list] | None = None) -> None:
        """Stop forwarding in this process: the streams are as they were, and what was
        captured and not sent is printed here, unformatted, rather than lost."""
        with _passthrough():
            with self._lock:
                taps, self._taps = self._taps, []
                echo, self._echo = self._echo, True
                self._queue_partials()
                pending = list(lines or []) + self._queue
                self._queue, self._subs, self._scheduled = [], {}, False
            for tap in taps:
                tap.remove()
            if not echo:
                self._write_raw(pending)
            log.warning("forwarding this worker's output to the client stopped (%s: %s); "
                        "it goes to the worker's own stdout and stderr", type(err).__name__,
                        err)

    @staticmethod
    def _write_raw(lines: list[list]) -> None:
        with _passthrough():
            for _, stream, line in lines:
                try:
                    getattr(sys, stream).write(line + "\n")
                except Exception:  # nowhere left to print it
                    pass


_CAPTURE = _Capture()


class WorkerLogForwarder(WorkerPlugin):
    """Sends what a worker process prints to ``topic`` (see the module docstring).

    Parameters
    ----------
    topic : str
        The event topic the client listens on.
    echo : bool
        Also print the output on the worker, as without forwarding. False where the
        worker's output already reaches the client's (a LocalCluster's workers).
    client_pid, client_host : optional
        The client's process: a worker running in that same process (a LocalCluster
        with ``processes=False``) shares its streams, so there is nothing to forward.
    """

    idempotent = False

    def __init__(self, topic: str, echo: bool = True, client_pid: int | None = None,
                 client_host: str | None = None):
        self.topic = topic
        self.echo = echo
        self.client_pid = client_pid
        self.client_host = client_host

    def _in_client_process(self) -> bool:
        return self.client_pid == os.getpid() and self.client_host == socket.gethostname()

    def setup(self, worker: Worker) -> None:
        # never raises: a worker joining later would fail to start
        if self._in_client_process():
            return
        try:
            _CAPTURE.subscribe(self.topic, worker, self.echo)
        except Exception as err:
            _CAPTURE.fail(err)

    def teardown(self, worker: Worker) -> None:
        try:
            _CAPTURE.unsubscribe(self.topic, worker)
        except Exception as err:
            _CAPTURE.fail(err)
        try:  # after the last lines: the client waits for this before it stops listening
            worker.log_event(self.topic, {EVENT_MARK: 1, "closed": worker.address})
        except Exception:  # the worker is going away without its scheduler
            pass


# ---------------------------------------------------------------------------------------
# The client's side

_write_lock = threading.Lock()


class DaskLogForwarding:
    """Forwarding of the workers' output for one client (see
    :func:`forward_dask_worker_output`); :meth:`close` undoes it."""

    def __init__(self, client: Client, echo: bool, stream: TextIO | None = None):
        self.client = client
        self.echo = echo
        self.topic = client.id  # the scheduler clears a client's topic after it leaves
        self.plugin_name = f"{EVENT_MARK}-{client.id}"
        self._stream = stream
        self._open = False
        self._closed = False
        self._warned = False
        self._closed_by: set[str] = set()
        self._changed = threading.Condition()

    def start(self) -> None:
        # subscribed first: the plugin's first lines have somewhere to go
        self.client.subscribe_topic(self.topic, self._on_event)
        self._open = True
        plugin = WorkerLogForwarder(self.topic, echo=self.echo, client_pid=os.getpid(),
                                    client_host=socket.gethostname())
        try:
            self.client.register_plugin(plugin, name=self.plugin_name)
        except BaseException:
            self.close()
            raise

    def _on_event(self, event: tuple[float, Any]) -> None:
        # on the client's event loop: must not raise (it would end the client's stream)
        try:
            msg = event[1]
            if not isinstance(msg, dict) or msg.get(EVENT_MARK) != 1:
                return  # the scheduler's own events about this client
            if "closed" in msg:
                with self._changed:
                    self._closed_by.add(msg["closed"])
                    self._changed.notify_all()
                return
            if not self._open:
                return
            worker = msg.get("name") or msg.get("worker", "worker")
            text = "".join(format_line(created, worker, stream, line)
                           for created, stream, line in msg["lines"])
            out = self._stream or sys.stderr
            with _passthrough(), _write_lock:
                out.write(text)
                out.flush()
        except Exception as err:
            if not self._warned:
                self._warned = True
                log.warning("could not print the Dask workers' output: %s: %s",
                            type(err).__name__, err)

    def close(self, timeout: float = 5.0) -> None:
        """Remove the plugin from the workers, wait (briefly) for their last lines, stop
        listening. Never raises and never waits much longer than ``timeout``."""
        if self._closed:
            return
        self._closed = True
        client = self.client
        try:
            if client.status == "running":
                responses = client.sync(client.scheduler.unregister_worker_plugin,
                                        name=self.plugin_name, callback_timeout=timeout)
                expected = {address for address, response in (responses or {}).items()
                            if isinstance(response, dict) and response.get("status") == "OK"}
                with self._changed:
                    self._changed.wait_for(lambda: expected <= self._closed_by,
                                           timeout=CLOSE_FLUSH_SECONDS)
        except Exception as err:  # the cluster is gone already, or unreachable
            log.info("could not remove the worker output forwarding from the workers: "
                     "%s: %s", type(err).__name__, err)
        finally:
            self._open = False
            try:
                client.unsubscribe_topic(self.topic)
            except Exception:  # a closed client has no subscriptions left to end
                pass


def forward_dask_worker_output(client: Client, *, echo: bool,
                               stream: TextIO | None = None) -> DaskLogForwarding | None:
    """Print what the client's workers print, now and later ones, to ``stream``.

    Each line as ``<time> <worker> <stdout|stderr>: <line>`` (see :func:`format_line`).

    Parameters
    ----------
    client : distributed.Client
    echo : bool
        Whether the workers also print their output themselves. False where their
        output already reaches this process (a LocalCluster started here), so that no
        line appears twice; True for remote workers, whose own logs keep a copy.
    stream : file, optional
        Where the lines go (default: ``sys.stderr`` at the time of each line).

    Returns
    -------
    DaskLogForwarding or None
        Close it before the client. None where forwarding could not be installed (a
        warning says why); the job goes on without it.

    Examples
    --------
    >>> forwarding = forward_dask_worker_output(client, echo=True)  # doctest: +SKIP
    >>> client.submit(print, "hello").result()  # doctest: +SKIP
    2026-11-25 10:00:00,123 worker-0 stdout: hello
    >>> forwarding.close()  # doctest: +SKIP
    """
    forwarding = DaskLogForwarding(client, echo=echo, stream=stream)
    try:
        forwarding.start()
    except Exception as err:
        log.warning("the Dask workers' output is not forwarded to this job's log (%s: %s)",
                    type(err).__name__, err)
        return None
    return forwarding
