"""A typed client for the ``/_sandbox/`` control API every toolkit sandbox exposes."""

from __future__ import annotations

import base64
from typing import Any

import httpx2

from cmis_core.types import WebhookRequest


class SandboxControl:
    """Drive a served sandbox: ground truth, token expiry and revocation, faults, webhooks."""

    def __init__(self, base_url: str, http: httpx2.AsyncClient, *, platform: str) -> None:
        self.base_url = base_url.rstrip("/") + "/_sandbox"
        self.http = http
        self.platform = platform

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = await self.http.request(method, self.base_url + path, json=json)
        response.raise_for_status()
        return response.json()

    async def expected(self) -> dict[str, int]:
        """Records per stream a complete read with empty state must return."""
        data = await self._call("GET", "/expected")
        return {str(k): int(v) for k, v in data["streams"].items()}

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/stats")
        return result

    async def reset_stats(self) -> None:
        await self._call("POST", "/stats/reset")

    async def expire_tokens(self, access_token: str | None = None) -> int:
        """Expire one access token (or all); the platform then refuses it as expired."""
        body = {"access_token": access_token} if access_token else {}
        return int((await self._call("POST", "/tokens/expire", body))["expired"])

    async def revoke(self, token: str | None = None) -> int:
        """Revoke the grant behind ``token`` (or every grant), as a user removing the app."""
        body = {"token": token} if token else {}
        return int((await self._call("POST", "/tokens/revoke", body))["revoked"])

    async def fault(self, **fault: Any) -> int:
        """Plan a fault (``path``, ``method``, ``kind``, ``status``, ``body``, ``times``...)."""
        return int((await self._call("POST", "/faults", fault))["pending"])

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def deny_next_authorization(self, count: int = 1) -> None:
        await self._call("POST", "/authorize/deny", {"count": count})

    async def advance_clock(self, seconds: float) -> None:
        await self._call("POST", "/clock/advance", {"seconds": seconds})

    async def webhook_sample(
        self, *, signature: str = "valid", timestamp_offset: float = 0.0
    ) -> tuple[WebhookRequest, bool]:
        """A delivery as the platform would send it, and whether its scheme signs a timestamp."""
        data = await self._call(
            "POST",
            "/webhooks/sample",
            {"signature": signature, "timestamp_offset": timestamp_offset},
        )
        return self._request(data), bool(data.get("timestamped"))

    async def webhook_handshake(self) -> tuple[WebhookRequest, int, bytes] | None:
        """The platform's handshake request and the expected answer, or ``None`` if it has none."""
        response = await self.http.get(self.base_url + "/webhooks/handshake")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data = response.json()
        expect = data["expect"]
        return self._request(data["request"]), int(expect["status"]), expect["body"].encode()

    def _request(self, data: dict[str, Any]) -> WebhookRequest:
        return WebhookRequest(
            platform=self.platform,
            method=data["method"],
            path=data["path"],
            query=dict(data.get("query") or {}),
            headers={k.lower(): v for k, v in data["headers"].items()},
            body=base64.b64decode(data["body_b64"]),
        )
