"""OAuth 2 with PKCE, rotating refresh tokens and revocation: the base class does it all."""

from __future__ import annotations

from cmis_core import Identity, PlatformContext, TokenSet
from cmis_core.auth.oauth2 import BearerAuth, OAuth2Provider
from cmis_core.sync.paging import raise_for_response
from cmis_example.client import api_url


class ExampleAuth(OAuth2Provider):
    """Example Ads' authorization server: ``/oauth/authorize`` on www, the rest on api."""

    platform = "example"
    authorize_path = "/oauth/authorize"
    token_path = "/oauth/token"
    revoke_path = "/oauth/revoke"
    pkce = True
    client_auth = "client_secret_basic"

    async def identify(self, ctx: PlatformContext, tokens: TokenSet) -> Identity:
        """``GET /v1/me``: the user id and the scopes granted."""
        response = await ctx.http.get(api_url(ctx, "/me"), auth=BearerAuth(tokens.access_token))
        raise_for_response(ctx.platform, response)
        body = response.json()
        return Identity(
            user_id=str(body["id"]),
            name=body.get("name"),
            scopes=tuple(body.get("scopes") or tokens.scopes),
            expires_at=tokens.expires_at,
        )
