"""The conformance kit: the tests every platform plugin must pass, against its own sandbox.

A plugin's test suite subclasses :class:`PluginConformance`::

    from cmis_core.testing.conformance import PluginConformance

    class TestExampleConformance(PluginConformance):
        platform = "example"

and pytest runs every section against the plugin's sandbox served on loopback. The plugin
is loaded through its installed entry point (``plugin = "pkg.module"`` or
``"pkg.module:object"`` registers that object instead, for variants under test).

Sections, each a mixin class, so adding one is writing a class and adding it to
:class:`PluginConformance`'s bases:

- :class:`ContractSection`: the records the hooks return are valid and consistent.
- :class:`AuthSection`: the connect flow end to end; an expired access token is
  ``TokenRejected``; a revoked grant on refresh is ``ReauthRequired``; never ``Transient``.
- :class:`StoredAuthSection`: the same through the core and a store: connect -> stored
  (sealed, replaced on reconnect) -> an expired token refreshed once for many workers.
- :class:`WebhookSection`: the handshake; a genuine delivery is accepted and parsed; a
  tampered body, a wrong, missing or stale signature are each ``SignatureInvalid``; and
  through `cmis serve`'s app on a fresh SQLite inbox: the handshake answered, a genuine
  delivery stored once (masked) and a redelivery answered 200, a forged one refused
  with 401 and not stored, a stored delivery processed without failing.
- :class:`SyncSection`: every stream read from the accounts down, and every record the
  sandbox holds (``/_sandbox/expected``) arrives once, valid, money in integer micros.
- :class:`EngineSyncSection`: the core's sync engine stores exactly those records in a
  SQLite store, a second (incremental) sync duplicates none, and a run cut short after
  its first commit is resumed by the next one to the same exact counts.

The kit talks HTTP through :meth:`KitHarness.make_http` only: the one place to swap in the
core's shared client.

The modules of this package:

- ``harness``: :class:`KitHarness`, the fixtures and helpers the sections share;
  :class:`SyncResult`; the helpers :func:`raised` and :func:`stream_order`.
- ``contract``: :class:`ContractSection`.
- ``auth``: :class:`AuthSection`, :class:`StoredAuthSection` and its :class:`KitStore`.
- ``webhooks``: :class:`WebhookSection` and its :class:`WebhookService`.
- ``sync``: :class:`SyncSection`, :class:`EngineSyncSection`.
- ``suite``: :class:`PluginConformance`, every section.
"""

from __future__ import annotations

from cmis_core.testing.conformance.auth import AuthSection, KitStore, StoredAuthSection
from cmis_core.testing.conformance.contract import ContractSection
from cmis_core.testing.conformance.harness import KitHarness, SyncResult, raised, stream_order
from cmis_core.testing.conformance.suite import PluginConformance
from cmis_core.testing.conformance.sync import EngineSyncSection, SyncSection
from cmis_core.testing.conformance.webhooks import WebhookSection, WebhookService

__all__ = [
    "AuthSection",
    "ContractSection",
    "EngineSyncSection",
    "KitHarness",
    "KitStore",
    "PluginConformance",
    "StoredAuthSection",
    "SyncResult",
    "SyncSection",
    "WebhookSection",
    "WebhookService",
    "raised",
    "stream_order",
]
