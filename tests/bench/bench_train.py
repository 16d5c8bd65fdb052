"""The digits CNN trained three ways: the shipyard job (Ray Train), plain PyTorch DDP
started by ``torchrun`` with as many processes, and a single-process loop.

All three train the same model (``shipyard.train.examples.DigitsCNN``) on the same
splits with the same optimiser, learning rate, per-process batch size and epochs, and
validate after every epoch (``plain_ddp.py`` is the plain side, written without shipyard
or Ray). Each round runs each variant once, in its own process, the order rotated.

Reported, as medians over rounds:

- steady-state throughput: training samples/s, the median over epochs after the first
  (measured inside the training loop by each variant; the job's DDP all-reduce, sampler
  and loop are Ray Train's ``prepare_model``/``prepare_data_loader``), and its ratio to
  plain DDP (target: shipyard >= 0.9x);
- start-up: seconds from launching the command to the start of training (shipyard:
  submit, supervisor, runner, Ray start, placing the workers, process group; torchrun:
  interpreter and torch import, process group);
- time to accuracy: seconds from launch to the end of the first epoch whose validation
  accuracy reaches ``--target``.

Two sizes: 2 workers (every core of a 2-core machine busy training, so Ray's own
processes and the threads of its worker runtime compete with the training loops), and
1 worker (a core to spare, as on a cluster node whose workers do not use every core).

Run::

    .venv/bin/python tests/bench/bench_train.py [--repeats 3] [--epochs 20] [--target 0.95]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from timing import SHIPYARD, run_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLAIN = Path(__file__).parent / "plain_ddp.py"
TORCHRUN = str(Path(sys.executable).parent / "torchrun")
BATCH, LR = 32, 0.005


def shipyard_job(epochs: int, home: Path, workers: int) -> dict:
    launched = time.time()
    env = dict(os.environ, SHIPYARD_HOME=str(home))
    wall, status = run_json([*SHIPYARD, "run", str(ROOT / "jobs" / "digits-cnn.yaml"), "--json",
                             "--set", f"spec.torch.config.epochs={epochs}",
                             "--set", f"spec.torch.scaling.workers={workers}",
                             "--set", f"spec.torch.config.batch_size={BATCH}",
                             "--set", f"spec.torch.config.lr={LR}"], env=env, timeout=600)
    if status["state"] != "SUCCEEDED":
        raise RuntimeError(f"the job ended {status['state']}: {status['reason']}")
    history = status["result"]["metrics"]
    first = history[0]
    return {"wall": wall,
            "startup": first["timestamp"] - first["elapsed_s"] - launched,
            "rates": [e["samples_per_s"] for e in history],
            "epochs_at": [(e["val_accuracy"], e["timestamp"] - launched) for e in history]}


def plain(epochs: int, processes: int, threads: int | None = None) -> dict:
    """``torchrun`` with ``processes`` (one thread each, as torchrun sets for several), or
    with ``threads`` a single plain process."""
    launched = time.time()
    args = [str(PLAIN), "--epochs", str(epochs), "--batch-size", str(BATCH), "--lr", str(LR)]
    if threads is None:
        command = [TORCHRUN, "--standalone", f"--nproc_per_node={processes}", *args,
                   "--threads", "1"]
    else:
        command = [sys.executable, *args, "--threads", str(threads)]
    wall, report = run_json(command, timeout=600)
    started = report["started_at"]
    return {"wall": wall,
            "startup": started + report["training_started_s"] - launched,
            "rates": [e["samples_per_s"] for e in report["epochs"]],
            "epochs_at": [(e["val_accuracy"], started + e["elapsed_s"] - launched)
                          for e in report["epochs"]]}


def summarise(runs: list[dict], target: float) -> dict:
    steady = [statistics.median(r["rates"][1:]) for r in runs]
    reached = [next((t for acc, t in r["epochs_at"] if acc >= target), float("nan"))
               for r in runs]
    return {"rate": statistics.median(steady), "startup": statistics.median(r["startup"] for r in runs),
            "to_target": statistics.median(reached), "wall": statistics.median(r["wall"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--target", type=float, default=0.95)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="shipyard-bench-train-"))
    variants = {
        "shipyard job (Ray Train, 2 workers)": lambda: shipyard_job(args.epochs, home, 2),
        "torchrun DDP (2 processes)": lambda: plain(args.epochs, 2),
        "single process (2 threads)": lambda: plain(args.epochs, 1, threads=2),
        "shipyard job (Ray Train, 1 worker)": lambda: shipyard_job(args.epochs, home, 1),
        "torchrun DDP (1 process)": lambda: plain(args.epochs, 1),
    }
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    try:
        names = list(variants)
        for round_ in range(args.repeats):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                runs[name].append(variants[name]())
                print(f"round {round_ + 1}: {name} done", file=sys.stderr)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    summary = {name: summarise(r, args.target) for name, r in runs.items()}
    print(f"\ndigits CNN, {args.epochs} epochs, batch {BATCH}/process, lr {LR}; medians of "
          f"{args.repeats} rounds; ratios against torchrun DDP of the same size")
    header = (f"{'variant':<36} {'samples/s':>10} {'ratio':>7} {'startup s':>10} "
              f"{'to {:.0%} s'.format(args.target):>10} {'ratio':>7} {'wall s':>8}")
    print(header)
    for name, s in summary.items():
        base = summary["torchrun DDP (1 process)" if "1 " in name else "torchrun DDP (2 processes)"]
        print(f"{name:<36} {s['rate']:>10.0f} {s['rate'] / base['rate']:>6.2f}x "
              f"{s['startup']:>10.2f} {s['to_target']:>10.2f} "
              f"{s['to_target'] / base['to_target']:>6.2f}x {s['wall']:>8.2f}")


if __name__ == "__main__":
    main()
