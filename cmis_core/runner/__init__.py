"""The runner: due work for schedulers, in process or on Celery workers.

- :mod:`cmis_core.runner.locks`: the per-integration lock (advisory lock / lease).
- :mod:`cmis_core.runner.schedule`: what is due, marking it started, queued, rescheduled.
- :mod:`cmis_core.runner.work`: one integration's refresh and sync under its lock.
- :mod:`cmis_core.runner.local`: ``run_due`` and ``sync_now``, in this process.
- :mod:`cmis_core.runner.celery_app`: the Celery app, its tasks and ``enqueue_due``.
- :mod:`cmis_core.runner.report`: what a run did, and its exit code.

Nothing here is imported by ``import cmis_core.runner``: each command imports what it uses.
"""
