"""What runs inside or beside one attempt of a job, wherever the backend started it.

- :mod:`~shipyard.runtime.runner` - the attempt itself (``python -m shipyard.runtime.runner``):
  loads the spec, runs the workload, writes ``result.json`` and the report;
- :mod:`~shipyard.runtime.supervisor` - the per-job process of the local and ``dask``
  backends that runs the attempts (retries, timeouts, cancel);
- :mod:`~shipyard.runtime.process_main` - the ``main`` of such a detached process;
- :mod:`~shipyard.runtime.context` - the :class:`JobContext` a workload is given;
- :mod:`~shipyard.runtime.dask_session`, :mod:`~shipyard.runtime.ray_session` - the
  attempt's Dask client and Ray connection, started on first use;
- :mod:`~shipyard.runtime.worker_logs`, :mod:`~shipyard.runtime.ray_logs`,
  :mod:`~shipyard.runtime.log_capture` - the workers' lines in the attempt log, with times;
- :mod:`~shipyard.runtime.code` - the job's code package: on ``sys.path``, and sent to a
  Dask cluster the attempt did not start;
- :mod:`~shipyard.runtime.task_progress` - the Dask task counts in the job's progress;
- :mod:`~shipyard.runtime.reporting` - the job's HTML page from its run directory.
"""
