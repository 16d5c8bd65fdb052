"""The ``kubernetes`` backend, in parts that change for different reasons.

- :mod:`~shipyard.backends.kubernetes.settings` - the profile's settings (validated);
- :mod:`~shipyard.backends.kubernetes.render` - a job's manifests (DaskJob, RayJob, Job);
- :mod:`~shipyard.backends.kubernetes.client` - the API client: credentials, bounded and
  retried requests, errors that say what to fix;
- :mod:`~shipyard.backends.kubernetes.status` - what a resource, its pods and events say,
  as one observation;
- :mod:`~shipyard.backends.kubernetes.backend` - the backend: submit, read, cancel, logs.

Importing this package imports none of them (``render`` must not pay for the client).
"""
