""":class:`PluginConformance`: every section, the class a plugin's tests subclass."""

from __future__ import annotations

from cmis_core.testing.conformance.auth import AuthSection, StoredAuthSection
from cmis_core.testing.conformance.contract import ContractSection
from cmis_core.testing.conformance.sync import EngineSyncSection, SyncSection
from cmis_core.testing.conformance.webhooks import WebhookSection


class PluginConformance(
    ContractSection,
    AuthSection,
    StoredAuthSection,
    WebhookSection,
    SyncSection,
    EngineSyncSection,
):
    """Every section. Subclass as ``TestXConformance`` with ``platform = "x"``."""
