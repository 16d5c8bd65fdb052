"""Pipelines: several stages, each one job's workload, run as one submission.

- :mod:`~shipyard.spec.pipeline`: the ``kind: Pipeline`` spec and its stage graph,
- :mod:`~shipyard.pipelines.cache`: stage cache keys (spec, inputs, code) and the cache,
- :mod:`~shipyard.pipelines.store`: the stages' state in the job store,
- :mod:`~shipyard.pipelines.driver`: the process that runs a pipeline's stages as jobs,
- :mod:`~shipyard.pipelines.tracker`: submit, watch, cancel and resume pipelines.
"""
