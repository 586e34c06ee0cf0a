"""Variants of the example plugin, each with one deliberate bug the kit must catch.

Registered by the conformance kit through ``plugin = "kit_variants:<NAME>"``: objects whose
methods are the plugin's hookimpls, the example's pieces with one of them swapped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx2
from cmis_example import client, plugin
from cmis_example.auth import ExampleAuth
from cmis_example.client import api_url
from cmis_example.streams import ExampleStream, MetricsStream, streams
from cmis_example.webhooks import SCHEME, SIGNATURE_HEADER, TIMESTAMP_HEADER, ExampleWebhooks

from cmis_core import Page, Partition, PlatformContext, WebhookRequest, hookimpl
from cmis_core.errors import PlatformError, SignatureInvalid, Transient
from cmis_core.settings import PlatformSettings
from cmis_core.sync.paging import cursor_pages


class Variant:
    """The example plugin, with ``platform``, ``webhooks`` or ``streams`` replaced."""

    def __init__(self, *, platform: Any = None, webhooks: Any = None, streams: Any = None) -> None:
        self._platform = platform
        self._webhooks = webhooks
        self._streams = streams

    @hookimpl
    def cmis_platforms(self) -> list[Any]:
        return [self._platform or client.platform()]

    @hookimpl
    def cmis_auth_providers(self) -> list[Any]:
        return [ExampleAuth()]

    @hookimpl
    def cmis_webhook_verifiers(self) -> list[Any]:
        return [self._webhooks or ExampleWebhooks()]

    @hookimpl
    def cmis_streams(self) -> list[Any]:
        return self._streams or streams()

    @hookimpl
    def cmis_sandboxes(self) -> list[Any]:
        return plugin.cmis_sandboxes()


# --- 1. a verifier that accepts a bad signature ----------------------------------------


class TrustingWebhooks(ExampleWebhooks):
    """Checks that a signature is present and the timestamp fresh, never that it matches."""

    def verify(self, request: WebhookRequest, settings: PlatformSettings) -> None:
        if not request.header(SIGNATURE_HEADER):
            raise SignatureInvalid("signature missing", reason="missing_signature")
        SCHEME.check_timestamp(request.header(TIMESTAMP_HEADER))


BAD_SIGNATURE = Variant(webhooks=TrustingWebhooks())


# --- 2. streams that stop after the first page ------------------------------------------


def _first_page_only(stream: ExampleStream) -> ExampleStream:
    @attrs.define(kw_only=True)
    class FirstPage(type(stream)):  # type: ignore[misc]
        async def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
            url = api_url(ctx, self.path.format(account_id=partition.account_id))
            params = self.params(partition)
            async for items in cursor_pages(ctx, url, params=params, max_pages=1):
                yield Page(records=[self.mapper(item, partition) for item in items])

    return FirstPage(**attrs.asdict(stream, recurse=False))


FIRST_PAGE_ONLY = Variant(streams=[_first_page_only(s) for s in streams()])  # type: ignore[arg-type]
assert any(isinstance(s, MetricsStream) for s in FIRST_PAGE_ONLY._streams)


# --- 3. an expired token classified as Transient ---------------------------------------


def classify_expired_as_transient(response: httpx2.Response) -> PlatformError | None:
    error = client.classify(response)
    if error is not None and error.code == "token_expired":
        return Transient("Example Ads: token expired (try again later?)", code=error.code)
    return error


EXPIRED_IS_TRANSIENT = Variant(
    platform=attrs.evolve(client.platform(), classify=classify_expired_as_transient)
)
