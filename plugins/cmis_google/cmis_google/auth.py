"""Google's OAuth 2 web-server flow: offline access, forced consent, PKCE, no rotation.

- Consent at ``accounts.google.com/o/oauth2/v2/auth`` with ``access_type=offline`` (else
  no refresh token) and ``prompt=consent`` (else a second connect gets none either).
- PKCE S256: Google accepts ``code_challenge`` on the web-server flow too (its auth
  library's web-flow options take it; the client secret is still sent).
- Tokens at ``oauth2.googleapis.com/token``; access tokens last an hour; refresh tokens
  are not rotated (the stored one is kept). ``invalid_grant`` on refresh is
  :class:`~cmis_core.errors.ReauthRequired`, with the hint that apps left in *Testing*
  publishing status lose their refresh tokens after seven days.
- ``identify`` asks ``/tokeninfo`` (scopes, expiry, and the user's ``sub`` when Google
  gives it); ``revoke`` posts to ``/revoke``.
"""

from __future__ import annotations

import httpx2

from cmis_core import Identity, PlatformContext, TokenSet
from cmis_core.auth.oauth2 import OAuth2Provider, Phase
from cmis_core.errors import CmisError, ReauthRequired, TokenRejected, Transient
from cmis_core.sync.paging import raise_for_response
from cmis_google.client import NAME, list_accessible_customers

TESTING_HINT = (
    "reconnect Google Ads; if this recurs every 7 days, the OAuth app is in Testing "
    "publishing status (its refresh tokens expire after 7 days): publish it"
)


class GoogleAuth(OAuth2Provider):
    """Google's authorization server for the ``adwords`` scope."""

    platform = NAME
    authorize_path = "/o/oauth2/v2/auth"
    token_path = "/token"
    revoke_path = "/revoke"
    pkce = True
    client_auth = "client_secret_post"
    extra_authorize_params = {"access_type": "offline", "prompt": "consent"}

    def token_error(self, response: httpx2.Response, *, phase: Phase) -> CmisError:
        """The base mapping, with the Testing-status hint on a refused grant."""
        error = super().token_error(response, phase=phase)
        if isinstance(error, ReauthRequired):
            error.hint = TESTING_HINT
        return error

    async def identify(self, ctx: PlatformContext, tokens: TokenSet) -> Identity:
        """``POST /tokeninfo``: scopes, expiry, and the Google user id (``sub``)."""
        url = ctx.url("token") + "/tokeninfo"
        try:
            response = await ctx.http.post(url, data={"access_token": tokens.access_token})
        except httpx2.TransportError as exc:
            raise Transient(f"google: tokeninfo failed ({type(exc).__name__})") from None
        if response.status_code == 400:
            raise TokenRejected(
                "Google refused the access token (expired or revoked)",
                platform=NAME,
                code="invalid_token",
                status=400,
            )
        raise_for_response(ctx.platform, response)
        info = response.json()
        user = str(info.get("sub") or "")
        if not user:  # tokens without openid/email scopes may carry no sub
            customers = sorted(
                await list_accessible_customers(ctx, access_token=tokens.access_token)
            )
            user = "customers:" + ",".join(customers[:5])
        scope = info.get("scope")
        return Identity(
            user_id=user,
            name=info.get("email"),
            scopes=tuple(scope.split()) if isinstance(scope, str) else tokens.scopes,
            expires_at=tokens.expires_at,
        )
