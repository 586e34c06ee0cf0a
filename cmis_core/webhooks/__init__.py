"""Webhooks: receive every delivery, lose none, apply each once.

- :mod:`~cmis_core.webhooks.receive`: one delivery read with limits, handshake, verified
  on its raw bytes, stored, answered (used by ``cmis_core.service.webhook_routes``);
- :mod:`~cmis_core.webhooks.writer`: the durable inbox write, async with group commit;
- :mod:`~cmis_core.webhooks.inbox`: inbox rows: claim with a lease, finish, park, list,
  retry, requeue unroutable, purge;
- :mod:`~cmis_core.webhooks.process`: :class:`InboxProcessor` and :func:`process_inbox`
  (for the runner): parse, route, fetch, apply, exactly once;
- :mod:`~cmis_core.webhooks.contexts`: the injected context provider for fetches;
- :mod:`~cmis_core.webhooks.leads`: lead records to rows, and listing them;
- :mod:`~cmis_core.webhooks.metrics`: counters and the Prometheus rendering;
- :mod:`~cmis_core.webhooks.hmac`: constant-time HMAC helpers and a verifier base class.
"""
