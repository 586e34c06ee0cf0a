"""Facebook Login as the sandbox fakes it: the dialog, the code exchange, ``fb_exchange_token``.

- ``GET www/{version}/dialog/oauth?client_id&redirect_uri&state&scope`` (scopes separated by
  commas) redirects back with ``code`` and ``state``.
- ``GET graph/{version}/oauth/access_token?client_id&redirect_uri&client_secret&code``
  answers ``{"access_token", "token_type": "bearer", "expires_in"}`` with a short-lived
  token (``SandboxOptions.token_ttl``); there is no ``grant_type`` and no refresh token.
- ``...&grant_type=fb_exchange_token&fb_exchange_token=<token>`` exchanges a still-valid
  token for a long-lived one (``LONG_LIVED_TTL``); an expired token is refused with 190.

Errors are Graph envelopes, as Meta answers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmis_core.testing.sandbox import (
    OAuthConfig,
    OAuthError,
    OAuthServer,
    TokenProblem,
    TokenStore,
)
from cmis_core.testing.sandbox.tokens import TokenRefused
from cmis_meta.sandbox.style import TOKEN_ERRORS, graph_error

LONG_LIVED_TTL = 5_183_944  # Meta's sample answer: about 60 days
DATA_ACCESS_TTL = 90 * 86_400

_ERRORS = {
    # RFC 6749 error -> (code, subcode, message) in Graph's words
    "invalid_client": (1, None, "Error validating client secret."),
    "invalid_grant": (100, 36009, "This authorization code has been used."),
    "invalid_request": (100, None, "Missing or invalid parameter."),
    "unsupported_grant_type": (100, None, "Unsupported grant_type."),
}


class MetaOAuthServer(OAuthServer):
    """The toolkit's OAuth server speaking Facebook Login's dialect."""

    def __init__(self, config: OAuthConfig, tokens: TokenStore) -> None:
        super().__init__(config, tokens)
        self.grant_handlers["fb_exchange_token"] = self._exchange
        self.long_lived: set[str] = set()

    def routes(self) -> list[Route]:
        return [
            Route("/{version:graph_version}/dialog/oauth", self.authorize, methods=["GET"]),
            Route(
                "/{version:graph_version}/oauth/access_token", self.token, methods=["GET", "POST"]
            ),
        ]

    async def authorize(self, request: Request) -> Response:
        # Facebook Login takes response_type=code by default.
        if "response_type" not in request.query_params:
            scope = dict(request.scope)
            scope["query_string"] = request.scope["query_string"] + b"&response_type=code"
            request = Request(scope, request.receive)
        return await super().authorize(request)

    async def _params(self, request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(await super()._params(request))
        if "grant_type" not in params and "code" in params:
            params["grant_type"] = "authorization_code"
        return params

    async def _exchange(self, params: Mapping[str, str], client_id: str) -> Mapping[str, Any]:
        presented = params.get("fb_exchange_token", "")
        try:
            grant = self.tokens.check(presented)
        except TokenRefused as exc:
            raise OAuthError("invalid_token", str(exc.problem)) from None
        token = self.tokens.issue_access(grant, LONG_LIVED_TTL)
        self.long_lived.add(token)
        return {"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_TTL}

    def token_body(self, grant: Any, *, with_refresh: bool) -> Mapping[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.tokens.issue_access(grant, self.config.token_ttl),
            "token_type": "bearer",
        }
        if self.config.token_ttl is not None:
            body["expires_in"] = self.config.token_ttl
        return body

    def error_response(self, exc: OAuthError) -> Response:
        if exc.error == "invalid_token":
            code, subcode, message = TOKEN_ERRORS[TokenProblem(exc.description)]
            return graph_error(code, message, subcode=subcode)
        code, subcode, message = _ERRORS.get(exc.error, (100, None, exc.description))
        if exc.error == "invalid_grant" and "redirect_uri" in exc.description:
            code, subcode, message = (
                100,
                36008,
                "Error validating verification code. Please make sure your redirect_uri is "
                "identical to the one you used in the OAuth dialog request",
            )
        kind = "OAuthException"
        return graph_error(code, message, subcode=subcode, kind=kind)
