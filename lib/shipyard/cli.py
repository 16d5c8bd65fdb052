"""The ``shipyard`` command: a thin shell over :mod:`shipyard.jobs.api`.

Exit codes (DESIGN.md): 0 success; 1 the job failed or was cancelled; 2 invalid spec,
bad arguments or bad input data; 3 the cluster could not be reached or started;
124 ``wait --timeout`` ran out while the job was still going. Errors are one paragraph on
stderr without a traceback (``SHIPYARD_DEBUG=1`` shows it). ``--json`` prints one JSON
document on stdout and nothing else there.

Heavy modules (Dask, pydantic, rich) are imported inside the commands that need them,
so ``list`` and ``status`` answer quickly.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from shipyard import __version__
from shipyard.core.errors import ShipyardError

__all__ = ["cli", "main"]

WAIT_TIMED_OUT = 124


class _ShipyardGroup(click.Group):
    """Maps shipyard's exceptions to exit codes and one-paragraph messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShipyardError as err:
            click.echo(f"error: {err.message}", err=True)
            ctx.exit(err.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # the reader went away (`shipyard logs ID | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except Exception as err:
            if os.environ.get("SHIPYARD_DEBUG"):
                raise
            click.echo(f"internal error: {type(err).__name__}: {err} "
                       "(set SHIPYARD_DEBUG=1 to see the traceback)", err=True)
            ctx.exit(1)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


_set_option = click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE",
    help="Override a spec field by dotted path, e.g. spec.resources.workers=4 (repeatable).")
_cluster_option = click.option(
    "--cluster", default=None, metavar="NAME",
    help="Cluster profile name or tcp://host:port (default: spec.cluster, then local).")
_json_option = click.option("--json", "as_json", is_flag=True,
                            help="Print one JSON document on stdout and nothing else.")
_sample_option = click.option(
    "--sample", type=click.FloatRange(min=0, min_open=True, max=1), default=None,
    metavar="FRACTION",
    help="A trial run on this share of each input (e.g. 0.01), on the local cluster, "
         "outputs kept in the run directory: catches errors before paying for the full run.")
_pipeline_options = [
    click.option("--no-cache", is_flag=True,
                 help="Pipelines: run every stage, even those with a cached result."),
    click.option("--from", "from_stage", default=None, metavar="STAGE",
                 help="Pipelines: run STAGE and the stages after it again; the stages "
                      "before it are taken from their latest successful run."),
]


def _with_pipeline_options(command):
    for option in reversed(_pipeline_options):
        command = option(command)
    return command


@click.group(cls=_ShipyardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shipyard")
def cli() -> None:
    """Run batch machine-learning jobs on a laptop or a cluster."""


# -- submitting ----------------------------------------------------------------------


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@_set_option
@_sample_option
def validate(spec: str, overrides: tuple[str, ...], sample: float | None) -> None:
    """Check a job or pipeline spec without running it; with --sample, run it on a
    sample of its inputs, locally, and say how every stage went."""
    from shipyard.spec import load

    job_spec = load(spec, overrides)
    if job_spec.workload_name == "pipeline":
        described = (f"pipeline {job_spec.name!r}: "
                     + ", ".join(f"{n} ({job_spec.stages[n].workload_name})"
                                 for n in job_spec.order))
    else:
        described = f"{job_spec.workload_name} job {job_spec.name!r}"
    click.echo(f"{spec}: valid {described}")
    if sample is not None:
        _run_and_report(job_spec, None, (), as_json=False, sample=sample)


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@_cluster_option
@_set_option
@_sample_option
@_with_pipeline_options
def submit(spec: str, cluster: str | None, overrides: tuple[str, ...],
           sample: float | None, no_cache: bool, from_stage: str | None) -> None:
    """Submit a job or pipeline and print its id."""
    from shipyard.jobs.api import submit as submit_job

    click.echo(submit_job(spec, cluster=cluster, overrides=overrides, sample=sample,
                          no_cache=no_cache, from_stage=from_stage).id)


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@_cluster_option
@_set_option
@_json_option
@_sample_option
@_with_pipeline_options
def run(spec: str, cluster: str | None, overrides: tuple[str, ...], as_json: bool,
        sample: float | None, no_cache: bool, from_stage: str | None) -> None:
    """Submit a job or pipeline, stream its log and wait for it to end.

    Ctrl-C cancels it. The exit code says how it ended (0 succeeded, 1 failed or
    cancelled, 2 bad input, 3 cluster unreachable).
    """
    _run_and_report(spec, cluster, overrides, as_json=as_json, sample=sample,
                    no_cache=no_cache, from_stage=from_stage)


@cli.command()
@click.argument("job_id")
@_json_option
def resume(job_id: str, as_json: bool) -> None:
    """Run a failed pipeline again from its failed stage: the stages that succeeded
    are reused, the others run (a new run; its id is printed)."""
    from shipyard.jobs.api import resume as resume_pipeline

    _watch_and_report(resume_pipeline(job_id), as_json)


def _run_and_report(spec: Any, cluster: str | None, overrides: tuple[str, ...], *,
                    as_json: bool, **options: Any) -> None:
    from shipyard.jobs.api import submit as submit_job

    _watch_and_report(submit_job(spec, cluster=cluster, overrides=overrides, **options),
                      as_json)


def _watch_and_report(job, as_json: bool) -> None:
    """Stream the job's log until it ends, print how it ended, exit with its code."""
    from shipyard.console import format_stages, summary, watch
    from shipyard.jobs.api import exit_code_for

    if not as_json:
        click.echo(f"[shipyard] submitted {job.id} (run dir {job.run_dir})", err=True)
    try:
        record = job.wait() if as_json else watch(job)
    except KeyboardInterrupt:
        click.echo(f"[shipyard] interrupted: cancelling {job.id}", err=True)
        record = job.cancel()
    if as_json:
        status = job.status_document()
        status["result"] = (job.result(failed=True)
                            if record.state == "SUCCEEDED" or record.kind == "pipeline"
                            else None)
        _print_json(status)
    else:
        if record.kind == "pipeline":
            click.echo("stages:\n" + format_stages(job.stages()), err=True)
        click.echo(summary(record, str(job.run_dir)), err=True)
    sys.exit(exit_code_for(record))


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@_cluster_option
@_set_option
def render(spec: str, cluster: str | None, overrides: tuple[str, ...]) -> None:
    """Print the Kubernetes manifests a submission would create (submits nothing)."""
    import yaml

    from shipyard.jobs.api import render as render_manifests

    click.echo(yaml.safe_dump_all(render_manifests(spec, cluster=cluster, overrides=overrides),
                                  sort_keys=False), nl=False)


# -- watching ------------------------------------------------------------------------


@cli.command()
@click.argument("job_id")
@_json_option
def status(job_id: str, as_json: bool) -> None:
    """Show a job's state, reason, attempt, progress and events."""
    from shipyard.jobs.api import get_job

    job = get_job(job_id)
    if as_json:
        _print_json(job.status_document())
    else:
        from shipyard.console import format_stages, format_status

        record = job.status()
        text = format_status(record, job.events(), str(job.run_dir))
        if record.kind == "pipeline":
            text += "\nstages:\n" + format_stages(job.stages())
        click.echo(text)


@cli.command(name="list")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the newest N jobs.")
@_json_option
def list_command(limit: int | None, as_json: bool) -> None:
    """List jobs, oldest first."""
    if as_json:
        from shipyard.jobs.api import list_statuses

        click.echo(json.dumps(list_statuses(limit=limit)))
        return
    from shipyard.jobs.api import list_jobs

    records = list_jobs(limit=limit)
    if records:
        from shipyard.console import format_table

        click.echo(format_table(records))
    else:
        click.echo("no jobs yet", err=True)


@cli.command()
@click.argument("job_id")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="S",
              help=f"Give up after S seconds (exit {WAIT_TIMED_OUT}; the job keeps running).")
@_json_option
def wait(job_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait for a job to end; the exit code says how it ended."""
    from shipyard.jobs.api import exit_code_for, get_job

    job = get_job(job_id)
    try:
        record = job.wait(timeout=timeout)
    except TimeoutError as err:
        click.echo(str(err), err=True)
        sys.exit(WAIT_TIMED_OUT)
    if as_json:
        _print_json(record.to_status())
    else:
        reason = f": {record.reason}" if record.reason else ""
        click.echo(f"{record.id} {record.state}{reason}")
    sys.exit(exit_code_for(record))


@cli.command()
@click.argument("job_id")
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing until the job ends, with its progress (a live view on a "
                   "terminal, state and phase lines on stderr elsewhere).")
def logs(job_id: str, follow: bool) -> None:
    """Print a job's log (every attempt)."""
    from shipyard.jobs.api import get_job

    job = get_job(job_id)
    if follow:
        from shipyard.console import watch

        watch(job)
        return
    for line in job.logs():
        click.echo(line)


@cli.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a job; everything it started is ended within seconds."""
    from shipyard.jobs.api import get_job

    job = get_job(job_id)
    before = job.status().state
    record = job.cancel()
    if before.is_terminal():
        click.echo(f"{job_id} had already ended {before}; nothing to cancel")
    else:
        click.echo(f"{job_id} {record.state}")


@cli.command()
@click.argument("job_id")
def result(job_id: str) -> None:
    """Print a finished job's result.json. A pipeline has one however it ended (each
    stage's state and result); exit 1 if it did not succeed."""
    from shipyard.jobs.api import get_job

    job = get_job(job_id)
    _print_json(job.result(failed=True))
    record = job.status()
    if record.state != "SUCCEEDED":  # a pipeline (a job that did not succeed has none)
        click.echo(f"pipeline {record.id} ended {record.state}: {record.reason}", err=True)
        sys.exit(1)


@cli.command()
@click.argument("job_id")
@click.option("--open", "open_page", is_flag=True, help="Open it in the web browser too.")
def report(job_id: str, open_page: bool) -> None:
    """Print the path of a job's HTML report (figures, tables, timings, log tail)."""
    from shipyard.jobs.api import get_job

    path = get_job(job_id).report()
    click.echo(str(path))
    if open_page:
        import webbrowser

        if not webbrowser.open(path.as_uri()):
            click.echo(f"no web browser found; open {path.as_uri()}", err=True)


# -- clusters ------------------------------------------------------------------------


@cli.group()
def cluster() -> None:
    """Start, stop and inspect clusters (local: a long-lived Dask LocalCluster)."""


def _backend(name: str | None):
    from shipyard.backends import get_backend
    from shipyard.backends.profiles import resolve_cluster
    from shipyard.core.home import Home
    from shipyard.core.store import JobStore

    home = Home.from_env()
    return get_backend(resolve_cluster(name, home.clusters), home, JobStore(home.db))


def _describe(info: dict[str, Any]) -> str:
    state = "up" if info.get("up") else "down"
    lines = [f"{info['name']} ({info['backend']}): {state}"]
    for key in ("address", "dashboard", "workers", "threads_per_worker", "memory_per_worker"):
        value = info.get(key)
        if value is not None:
            if key == "memory_per_worker" and isinstance(value, int):
                from dask.utils import format_bytes

                value = format_bytes(value)
            lines.append(f"  {key}: {value}")
    if not info.get("up") and info["backend"] == "local":
        lines.append("  jobs start a LocalCluster of their own per attempt")
    return "\n".join(lines)


def _show_cluster(info: dict[str, Any], as_json: bool) -> None:
    """Print a cluster's description: the JSON document, or the lines for people."""
    if as_json:
        _print_json(info)
    else:
        click.echo(_describe(info))


@cluster.command(name="up")
@click.argument("name", required=False)
@_json_option
def cluster_up(name: str | None, as_json: bool) -> None:
    """Start a long-lived local cluster that local jobs then compute on (exit 2 for a
    bad profile, 3 when it cannot start)."""
    _show_cluster(_backend(name).up(), as_json)


@cluster.command(name="down")
@click.argument("name", required=False)
@_json_option
def cluster_down(name: str | None, as_json: bool) -> None:
    """Stop a cluster started with `cluster up`."""
    _show_cluster(_backend(name).down(), as_json)


@cluster.command(name="status")
@click.argument("name", required=False)
@_json_option
def cluster_status(name: str | None, as_json: bool) -> None:
    """Say whether a cluster is up, with its address and dashboard."""
    _show_cluster(_backend(name).describe(), as_json)


def main() -> None:
    """Entry point of the ``shipyard`` console script."""
    cli(prog_name="shipyard")


if __name__ == "__main__":
    main()
