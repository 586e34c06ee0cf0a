"""HMAC signature checks: known vectors, every rejection reason, timestamps."""

from __future__ import annotations

import base64

import pytest

from cmis_core.errors import SignatureInvalid
from cmis_core.webhooks.hmac import HmacScheme

# GitHub's documented example for X-Hub-Signature-256.
GITHUB = HmacScheme(prefix="sha256=")
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_known_vector_signs_and_verifies() -> None:
    assert GITHUB.sign(GITHUB_SECRET, b"Hello, World!") == GITHUB_SIG
    GITHUB.verify(GITHUB_SECRET, b"Hello, World!", GITHUB_SIG)


@pytest.mark.parametrize(
    ("body", "signature", "reason"),
    [
        (b"Hello, World!", None, "missing_signature"),
        (b"Hello, World!", "", "missing_signature"),
        (b"Hello, World!", GITHUB_SIG.removeprefix("sha256="), "malformed_signature"),
        (b"Hello, World!", "sha256=zz", "malformed_signature"),
        (b"Hello, World?", GITHUB_SIG, "bad_signature"),
        (b"Hello, World!", GITHUB_SIG[:-1] + "f", "bad_signature"),
    ],
)
def test_rejections_carry_a_reason(body: bytes, signature: str | None, reason: str) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        GITHUB.verify(GITHUB_SECRET, body, signature)
    assert caught.value.reason == reason
    assert caught.value.status == 401
    assert GITHUB_SECRET not in str(caught.value)


def test_base64_and_other_hashes() -> None:
    scheme = HmacScheme(algorithm="sha1", encoding="base64")
    signature = scheme.sign(b"key", b"body")
    assert len(base64.b64decode(signature)) == 20
    scheme.verify(b"key", b"body", signature)
    with pytest.raises(SignatureInvalid):
        scheme.verify(b"other", b"body", signature)


def test_signed_timestamps_within_tolerance_only() -> None:
    scheme = HmacScheme(timestamped=True, tolerance=300)
    signature = scheme.sign("s", b"{}", timestamp="1000")
    scheme.verify("s", b"{}", signature, timestamp="1000", now=1200)
    with pytest.raises(SignatureInvalid) as stale:
        scheme.verify("s", b"{}", signature, timestamp="1000", now=1301)
    assert stale.value.reason == "stale_timestamp"
    with pytest.raises(SignatureInvalid) as moved:  # the timestamp is part of the signed text
        scheme.verify("s", b"{}", signature, timestamp="1001", now=1001)
    assert moved.value.reason == "bad_signature"
    with pytest.raises(SignatureInvalid) as missing:
        scheme.verify("s", b"{}", signature, timestamp=None, now=1000)
    assert missing.value.reason == "missing_timestamp"
    with pytest.raises(ValueError, match="timestamp"):
        scheme.sign("s", b"{}")
