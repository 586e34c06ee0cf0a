"""The sandbox toolkit: write a faithful fake of a platform's API as an ASGI app.

A sandbox is a :class:`FakePlatform` (tokens, rate limits, faults, call log, control API)
with the platform's routes declared on it, data from :mod:`.data`, paging from
:mod:`.paging`, and the platform's error shapes in an :class:`ApiStyle` subclass. See
``docs/writing-a-plugin.md`` and ``plugins/cmis_example/cmis_example/sandbox.py``.

Needs the ``server`` extra (starlette, uvicorn).
"""

from cmis_core.testing.sandbox.calls import CallLog
from cmis_core.testing.sandbox.clock import Clock
from cmis_core.testing.sandbox.data import (
    LazyTable,
    count_of,
    last_days,
    money,
    pick,
    preset,
    rng_for,
    select_fields,
)
from cmis_core.testing.sandbox.faults import Fault, FaultPlan
from cmis_core.testing.sandbox.limits import RateLimiter
from cmis_core.testing.sandbox.oauth import OAuthConfig, OAuthError, OAuthServer, s256
from cmis_core.testing.sandbox.paging import (
    InvalidCursor,
    InvalidParameter,
    Slice,
    cursor_page,
    cursor_paging,
    decode_cursor,
    encode_cursor,
    next_link,
    offset_page,
    page_token_page,
    read_int,
)
from cmis_core.testing.sandbox.platform import (
    Call,
    FakePlatform,
    SandboxError,
    app_key,
    grant_key,
)
from cmis_core.testing.sandbox.style import ApiStyle, Usage
from cmis_core.testing.sandbox.tokens import Grant, TokenProblem, TokenStore
from cmis_core.testing.sandbox.webhooks import Delivery, Handshake, HmacWebhooks, WebhookFaker

__all__ = [
    "ApiStyle",
    "Call",
    "CallLog",
    "Clock",
    "Delivery",
    "FakePlatform",
    "Fault",
    "FaultPlan",
    "Grant",
    "Handshake",
    "HmacWebhooks",
    "InvalidCursor",
    "InvalidParameter",
    "LazyTable",
    "OAuthConfig",
    "OAuthError",
    "OAuthServer",
    "RateLimiter",
    "SandboxError",
    "Slice",
    "TokenProblem",
    "TokenStore",
    "Usage",
    "WebhookFaker",
    "app_key",
    "count_of",
    "cursor_page",
    "cursor_paging",
    "decode_cursor",
    "encode_cursor",
    "grant_key",
    "last_days",
    "money",
    "next_link",
    "offset_page",
    "page_token_page",
    "pick",
    "preset",
    "read_int",
    "rng_for",
    "s256",
    "select_fields",
]


def sandbox_env(
    platform: str, base_url: str, *, client_id: str, client_secret: str, **extra: str
) -> dict[str, str]:
    """The ``CMIS_<P>_*`` settings pointing a plugin at a sandbox served at ``base_url``.

    ``extra`` adds further settings by short name (``WEBHOOK_SECRET="..."``).
    """
    p = f"CMIS_{platform.upper()}_"
    env = {
        p + "API_URL": base_url,
        p + "AUTH_URL": base_url,
        p + "TOKEN_URL": base_url,
        p + "CLIENT_ID": client_id,
        p + "CLIENT_SECRET": client_secret,
    }
    env.update({p + name.upper(): value for name, value in extra.items()})
    return env


__all__ += ["sandbox_env"]
