"""`shipyard list --json` with 10,000 jobs in the store.

Variants, interleaved and repeated (medians):

- plain read: a Python script that reads the same SQLite table and prints it as JSON
  (the least any tool could do);
- shipyard list --json: the real CLI.

Target (issue 2): under 0.3 s.

Run: .venv/bin/python tests/bench/bench_list.py [--jobs N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from timing import SHIPYARD, interleave, median, print_table, run_timed  # noqa: E402

from shipyard.core.ids import new_job_id  # noqa: E402
from shipyard.core.states import JobState  # noqa: E402
from shipyard.core.store import JobStore  # noqa: E402

PLAIN_READ = textwrap.dedent('''
    import json, sqlite3, sys
    conn = sqlite3.connect(sys.argv[1])
    conn.row_factory = sqlite3.Row
    print(json.dumps([dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY created_at")]))
''')


def fill(store: JobStore, count: int) -> None:
    """``count`` finished jobs, as a busy team's history would have them."""
    now = time.time() - count * 60
    outcomes = [(JobState.SUCCEEDED, "completed")] * 8 + [(JobState.FAILED, "ValueError: boom"),
                                                        (JobState.CANCELLED, "cancelled")]
    for i in range(count):
        name = random.choice(["churn-prep", "train-forest", "nightly-report", "basics"])
        record = store.create(lambda: new_job_id(name, now=now + i * 60), name=name,
                              cluster="local", backend="local", max_attempts=2)
        store.transition(record.id, JobState.RUNNING, "attempt 1 started")
        store.set_progress(record.id, {"phase": "write", "done": 4, "total": 4})
        state, reason = random.choice(outcomes)
        store.transition(record.id, state, reason)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="shipyard-bench-list-"))
    store = JobStore(home / "jobs.db")
    started = time.perf_counter()
    fill(store, args.jobs)
    print(f"filled {args.jobs} jobs in {time.perf_counter() - started:.1f} s")
    (home / "plain.py").write_text(PLAIN_READ)
    env = dict(os.environ, SHIPYARD_HOME=str(home))
    listed = json.loads(__import__("subprocess").run(
        [*SHIPYARD, "list", "--json"], env=env, capture_output=True, text=True).stdout)
    assert len(listed) == args.jobs

    samples = interleave({
        "plain sqlite read + json": lambda: run_timed(
            [sys.executable, str(home / "plain.py"), str(home / "jobs.db")]),
        "shipyard list --json": lambda: run_timed([*SHIPYARD, "list", "--json"], env=env),
    }, args.repeats)
    plain = median(samples["plain sqlite read + json"])
    listing = median(samples["shipyard list --json"])
    verdict = "meets" if listing < 0.3 else "MISSES"
    print_table(f"list with {args.jobs} jobs, {args.repeats} interleaved runs each, medians",
                [("plain sqlite read + json", plain, "baseline"),
                 ("shipyard list --json", listing, f"{verdict} the < 0.3 s target")],
                baseline="plain sqlite read + json")


if __name__ == "__main__":
    main()
