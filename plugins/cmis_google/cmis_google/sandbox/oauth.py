"""Google's OAuth 2 server, as the sandbox plays it.

The toolkit's server with Google's paths (``/o/oauth2/v2/auth``, ``/token``, ``/revoke``)
and Google's rules: a refresh token only for ``access_type=offline``, and only on the first
consent unless ``prompt=consent`` asks again; refresh tokens are not rotated; an access
token lives an hour. ``/tokeninfo`` answers what Google's does for an access token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmis_core.testing.sandbox import OAuthConfig, OAuthServer, TokenStore
from cmis_core.testing.sandbox.tokens import TokenRefused


class GoogleOAuthServer(OAuthServer):
    """Refresh tokens for offline access only; ``/tokeninfo`` besides the usual endpoints."""

    def __init__(self, config: OAuthConfig, tokens: TokenStore) -> None:
        super().__init__(config, tokens)
        self.online_codes: set[str] = set()
        self.consented: set[str] = set()  # users who already consented once

    def routes(self) -> list[Route]:
        return [*super().routes(), Route("/tokeninfo", self.tokeninfo, methods=["GET", "POST"])]

    async def authorize(self, request: Request) -> Response:
        response = await super().authorize(request)
        location = response.headers.get("location")
        code = dict(parse_qsl(urlsplit(location).query)).get("code") if location else None
        if code:
            q = request.query_params
            first = self.config.user_id not in self.consented
            again = q.get("prompt") == "consent"
            if q.get("access_type") != "offline" or not (first or again):
                self.online_codes.add(code)
            self.consented.add(self.config.user_id)
        return response

    async def _authorization_code(
        self, params: Mapping[str, str], client_id: str
    ) -> Mapping[str, Any]:
        online = params.get("code", "") in self.online_codes
        body = dict(await super()._authorization_code(params, client_id))
        if online:
            body.pop("refresh_token", None)
        return body

    async def tokeninfo(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(parse_qsl((await request.body()).decode("utf-8", "replace")))
        token = params.get("access_token")
        try:
            grant = self.tokens.check(token)
        except TokenRefused:
            return JSONResponse(
                {"error": "invalid_token", "error_description": "Invalid Value"}, status_code=400
            )
        record = self.tokens.access[token or ""]
        now = self.tokens.clock.now()
        left = int(record.expires_at - now) if record.expires_at is not None else 3600
        return JSONResponse(
            {
                "azp": grant.client_id,
                "aud": grant.client_id,
                "sub": "110000000000000000001",
                "scope": " ".join(grant.scopes),
                "exp": str(int(now) + left),
                "expires_in": str(left),
                "access_type": "offline",
            }
        )
