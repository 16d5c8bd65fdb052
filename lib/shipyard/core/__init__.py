"""The bottom layer: what every other part of shipyard shares and that depends on none
of them.

- :mod:`~shipyard.core.states` - job states, their transitions, failure kinds and exit codes;
- :mod:`~shipyard.core.errors` - the exceptions, each with its exit code;
- :mod:`~shipyard.core.ids` - job ids;
- :mod:`~shipyard.core.home` - ``$SHIPYARD_HOME`` and the files of a run directory;
- :mod:`~shipyard.core.store` - the job store (records, events, transitions);
- :mod:`~shipyard.core.procs` - processes: alive, start time, terminating a tree;
- :mod:`~shipyard.core.atomic` - files written whole or not at all;
- :mod:`~shipyard.core.run_storage` - a run directory kept in an object store;
- :mod:`~shipyard.core.lifecycle` - the transitions every backend makes (retries, timeouts);
- :mod:`~shipyard.core.runner_cli` - the runner's command line;
- :mod:`~shipyard.core.model` - the base of every validated model;
- :mod:`~shipyard.core.workloads` - what each workload is, by name.

Nothing here imports anything of shipyard outside ``shipyard.core`` (an import-linter
contract in pyproject.toml, checked by tests/test_layers.py).
"""
