"""The fake OAuth server behaves as a strict RFC 6749 / 7636 / 7009 server."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from cmis_core.contract import SandboxOptions
from cmis_core.testing.sandbox import FakePlatform, OAuthConfig, s256
from cmis_core.testing.serve import serve

REDIRECT = "http://127.0.0.1:8000/callback"
VERIFIER = "v" * 50


def build(**oauth: object) -> FakePlatform:
    config = OAuthConfig(client_id="cid", client_secret="csecret", **oauth)  # type: ignore[arg-type]
    fake = FakePlatform("demo", options=SandboxOptions(token_ttl=60), oauth=config)

    @fake.get("/v1/me")
    async def me(call):  # type: ignore[no-untyped-def]
        return call.json({"id": call.grant.user_id})

    return fake


@pytest.fixture(scope="module")
def fake() -> FakePlatform:
    return build(require_pkce=True, scopes=("read", "write"))


@pytest.fixture(scope="module")
def base_url(fake: FakePlatform) -> Iterator[str]:
    with serve(fake.app()) as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


async def authorize(http: httpx2.AsyncClient, base_url: str, **params: str) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": "cid",
        "redirect_uri": REDIRECT,
        "state": "st-1",
        "scope": "read",
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
    }
    query.update(params)
    response = await http.get(f"{base_url}/oauth/authorize", params=query)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def exchange(
    http: httpx2.AsyncClient, base_url: str, code: str, **extra: str
) -> httpx2.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": "cid",
        "client_secret": "csecret",
    }
    data.update(extra)
    return await http.post(f"{base_url}/oauth/token", data=data)


async def test_code_flow_issues_tokens_that_open_the_api(http, base_url) -> None:
    params = await authorize(http, base_url)
    assert params["state"] == "st-1"
    response = await exchange(http, base_url, params["code"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 60
    assert body["scope"] == "read"
    me = await http.get(
        f"{base_url}/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json() == {"id": "sbx_user_1"}


async def test_code_is_single_use_and_replay_revokes_its_tokens(http, base_url) -> None:
    code = (await authorize(http, base_url))["code"]
    first = (await exchange(http, base_url, code)).json()
    again = await exchange(http, base_url, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    me = await http.get(
        f"{base_url}/v1/me", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "token_revoked"


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"redirect_uri": REDIRECT + "/other"}, "redirect_uri"),
        ({"code_verifier": "w" * 50}, "code_verifier"),
        ({"code_verifier": ""}, "code_verifier"),
    ],
)
async def test_token_request_must_match_the_authorization(http, base_url, extra, why) -> None:
    code = (await authorize(http, base_url))["code"]
    response = await exchange(http, base_url, code, **extra)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert why in response.json()["error_description"]


async def test_pkce_required_and_plain_refused(http, base_url) -> None:
    no_pkce = await authorize(http, base_url, code_challenge="", code_challenge_method="")
    assert no_pkce["error"] == "invalid_request"
    plain = await authorize(http, base_url, code_challenge="p" * 43, code_challenge_method="plain")
    assert plain["error"] == "invalid_request"
    assert plain["state"] == "st-1"


async def test_unknown_scope_and_denial_redirect_with_state(http, base_url, fake) -> None:
    assert (await authorize(http, base_url, scope="read admin"))["error"] == "invalid_scope"
    fake.oauth.deny_next()
    denied = await authorize(http, base_url)
    assert denied == {
        "error": "access_denied",
        "error_description": "the user refused",
        "state": "st-1",
    }
    assert "code" in await authorize(http, base_url)  # only the next one was refused


async def test_bad_client_or_redirect_is_not_redirected(http, base_url) -> None:
    response = await http.get(
        f"{base_url}/oauth/authorize",
        params={"response_type": "code", "client_id": "nope", "redirect_uri": REDIRECT},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


async def test_client_authentication(http, base_url) -> None:
    code = (await authorize(http, base_url))["code"]
    wrong = await exchange(http, base_url, code, client_secret="bad")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    code = (await authorize(http, base_url))["code"]
    basic = base64.b64encode(b"cid:csecret").decode()
    response = await http.post(
        f"{base_url}/oauth/token",
        headers={"Authorization": f"Basic {basic}"},
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
        },
    )
    assert response.status_code == 200


async def test_refresh_rotates_and_the_old_token_is_refused(http, base_url) -> None:
    code = (await authorize(http, base_url))["code"]
    tokens = (await exchange(http, base_url, code)).json()
    creds = {"client_id": "cid", "client_secret": "csecret"}
    first = await http.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **creds},
    )
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != tokens["refresh_token"]
    reused = await http.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **creds},
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    ok = await http.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated, **creds},
    )
    assert ok.status_code == 200


async def test_revocation_kills_the_grant(http, base_url) -> None:
    code = (await authorize(http, base_url))["code"]
    tokens = (await exchange(http, base_url, code)).json()
    creds = {"client_id": "cid", "client_secret": "csecret"}
    revoked = await http.post(
        f"{base_url}/oauth/revoke", data={"token": tokens["refresh_token"], **creds}
    )
    assert revoked.status_code == 200
    unknown = await http.post(f"{base_url}/oauth/revoke", data={"token": "never-issued", **creds})
    assert unknown.status_code == 200  # RFC 7009 2.2
    refresh = await http.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **creds},
    )
    assert refresh.json()["error"] == "invalid_grant"
    me = await http.get(
        f"{base_url}/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 401


async def test_access_tokens_expire_after_token_ttl(http, base_url, fake) -> None:
    code = (await authorize(http, base_url))["code"]
    token = (await exchange(http, base_url, code)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await http.get(f"{base_url}/v1/me", headers=headers)).status_code == 200
    await http.post(f"{base_url}/_sandbox/clock/advance", json={"seconds": 61})
    response = await http.get(f"{base_url}/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_unsupported_grant_type(http, base_url) -> None:
    response = await http.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "password", "client_id": "cid", "client_secret": "csecret"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_no_refresh_tokens_when_the_platform_has_none(http) -> None:
    fake = build(refresh_tokens=False)
    with serve(fake.app()) as url:
        code = (await authorize(http, url))["code"]
        body = (await exchange(http, url, code)).json()
        assert "refresh_token" not in body
