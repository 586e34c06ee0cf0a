"""The vault seals with the first key, opens with any, and fails clearly and safely."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from cmis_core.errors import ExitCode, UndecryptableCredential
from cmis_core.types import TokenSet
from cmis_core.vault import Sealed, SecretKey, Vault, credential_context

CANARY = "canary-tok-9f3b1c7e"


def tokens() -> TokenSet:
    return TokenSet(
        access_token=CANARY,
        refresh_token=CANARY + "-refresh",
        expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        scopes=("ads_read", "leads_retrieval"),
        extra={"user_id": "42"},
    )


def assert_safe(text: str, sealed: Sealed, *keys: SecretKey) -> None:
    """No plaintext, ciphertext (raw, hex or base64) or key material in ``text``."""
    assert CANARY not in text
    assert sealed.ciphertext.hex() not in text
    assert base64.b64encode(sealed.ciphertext).decode() not in text
    for key in keys:
        assert key.encoded() not in text
        assert key.material.hex() not in text


def test_tokens_round_trip_under_the_first_key(key_a: SecretKey, key_b: SecretKey) -> None:
    vault = Vault([key_a, key_b])
    sealed = vault.seal_tokens(tokens(), org_id="o1", integration_id="i1")
    assert sealed.key_id == key_a.id == vault.primary_key_id
    assert CANARY.encode() not in sealed.ciphertext
    assert vault.open_tokens(sealed, org_id="o1", integration_id="i1") == tokens()


def test_each_seal_is_fresh(key_a: SecretKey) -> None:
    vault = Vault([key_a])
    one = vault.encrypt(b"same", context=("x",))
    two = vault.encrypt(b"same", context=("x",))
    assert one.ciphertext != two.ciphertext
    assert vault.decrypt(one, context=("x",)) == vault.decrypt(two, context=("x",)) == b"same"


def test_any_configured_key_opens(key_a: SecretKey, key_b: SecretKey) -> None:
    old = Vault([key_a]).seal_tokens(tokens(), org_id="o1", integration_id="i1")
    rotated = Vault([key_b, key_a])
    assert rotated.open_tokens(old, org_id="o1", integration_id="i1") == tokens()
    again = rotated.reencrypt(old, context=credential_context("o1", "i1"))
    assert again.key_id == key_b.id
    assert Vault([key_b]).open_tokens(again, org_id="o1", integration_id="i1") == tokens()


def test_reencrypt_leaves_a_current_value_alone(key_a: SecretKey) -> None:
    vault = Vault([key_a])
    sealed = vault.encrypt(b"v", context=("x",))
    assert vault.reencrypt(sealed, context=("x",)) is sealed


@pytest.mark.parametrize("position", [0, 1, 12, 13, 20, -16, -1])
def test_one_altered_byte_fails_clearly(key_a: SecretKey, position: int) -> None:
    vault = Vault([key_a])
    sealed = vault.seal_tokens(tokens(), org_id="o1", integration_id="i1")
    blob = bytearray(sealed.ciphertext)
    blob[position] ^= 0x01
    altered = Sealed(key_id=sealed.key_id, ciphertext=bytes(blob))
    with pytest.raises(UndecryptableCredential) as info:
        vault.open_tokens(altered, org_id="o1", integration_id="i1")
    error = info.value
    assert error.exit_code == ExitCode.USAGE
    assert key_a.id in error.message
    assert "integration i1" in error.message
    assert info.value.__cause__ is None
    assert_safe(f"{error} {error.hint} {error!r}", altered, key_a)


def test_a_ciphertext_copied_to_another_row_does_not_open(key_a: SecretKey) -> None:
    vault = Vault([key_a])
    sealed = vault.seal_tokens(tokens(), org_id="o1", integration_id="i1")
    for org, integration in [("o1", "i2"), ("o2", "i1")]:
        with pytest.raises(UndecryptableCredential, match="belongs to another row"):
            vault.open_tokens(sealed, org_id=org, integration_id=integration)


def test_a_relabelled_key_id_does_not_open(key_a: SecretKey, key_b: SecretKey) -> None:
    vault = Vault([key_a, key_b])
    sealed = vault.encrypt(b"v", context=("x",))
    with pytest.raises(UndecryptableCredential, match=key_b.id):
        vault.decrypt(Sealed(key_id=key_b.id, ciphertext=sealed.ciphertext), context=("x",))


def test_an_unconfigured_key_is_named(key_a: SecretKey, key_b: SecretKey) -> None:
    sealed = Vault([key_a]).seal_tokens(tokens(), org_id="o1", integration_id="i1")
    with pytest.raises(UndecryptableCredential) as info:
        Vault([key_b]).open_tokens(sealed, org_id="o1", integration_id="i1")
    message = info.value.message
    assert f"key {key_a.id}, which is not configured" in message
    assert key_b.id in message
    assert info.value.exit_code == ExitCode.USAGE
    assert_safe(f"{info.value} {info.value.hint}", sealed, key_a, key_b)


@pytest.mark.parametrize("blob", [b"", b"\x01short", b"\x02" + bytes(40)])
def test_a_truncated_or_foreign_blob_is_a_configuration_error(
    key_a: SecretKey, blob: bytes
) -> None:
    with pytest.raises(UndecryptableCredential, match=f"key {key_a.id}"):
        Vault([key_a]).decrypt(Sealed(key_id=key_a.id, ciphertext=blob), context=("x",))


def test_a_sealed_value_that_is_not_a_token_set(key_a: SecretKey) -> None:
    vault = Vault([key_a])
    sealed = vault.encrypt(
        b'{"not": "' + CANARY.encode() + b'"', context=credential_context("o", "i")
    )
    with pytest.raises(UndecryptableCredential, match="does not hold a token set") as info:
        vault.open_tokens(sealed, org_id="o", integration_id="i")
    assert info.value.__context__ is None
    assert CANARY not in str(info.value)


def test_reprs_hide_key_material_and_ciphertext(key_a: SecretKey) -> None:
    vault = Vault([key_a])
    sealed = vault.seal_tokens(tokens(), org_id="o1", integration_id="i1")
    text = f"{vault!r} {key_a!r} {sealed!r} {tokens()!r}"
    assert key_a.id in text
    assert_safe(text, sealed, key_a)
