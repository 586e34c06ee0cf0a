"""The vault: AES-256-GCM with a key id per ciphertext and associated data per row.

Why AES-GCM rather than MultiFernet: each row records the id of the key that sealed it,
so `cmis keys status` can count rows per key and an unknown key is named in the error
instead of "no key worked"; and the associated data binds a ciphertext to its row (org and
integration), so a ciphertext copied onto another row does not open.

Sealed layout: ``b"\\x01" + nonce(12) + AES-GCM(ciphertext || tag(16))``; the associated
data is the format version, the key id and the length-prefixed context parts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cmis_core.errors import MissingSetting, UndecryptableCredential
from cmis_core.settings import Settings
from cmis_core.types import TokenSet
from cmis_core.vault.keys import (
    KEY_FILE_NAME,
    SecretKey,
    create_key_file,
    parse_keys,
    read_key_file,
)

log = structlog.get_logger(__name__)

FORMAT_V1 = 1
_NONCE_BYTES = 12
_TAG_BYTES = 16


@attrs.frozen(kw_only=True)
class Sealed:
    """A ciphertext and the id of the key that sealed it: the two columns a row stores."""

    key_id: str
    ciphertext: bytes = attrs.field(repr=False)


def credential_context(org_id: int | str, integration_id: int | str) -> tuple[str, ...]:
    """The associated data of an integration's credential row (ids as text: 7 and "7" match)."""
    return ("credential", str(org_id), str(integration_id))


def _associated_data(key_id: str, context: Sequence[str]) -> bytes:
    parts = [b"cmis-vault", bytes([FORMAT_V1]), key_id.encode()]
    parts.extend(part.encode("utf-8") for part in context)
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _describe(context: Sequence[str]) -> str:
    if len(context) == 3 and context[0] == "credential":
        return f"the credential of integration {context[2]} (org {context[1]})"
    return "the value for " + "/".join(context)


class Vault:
    """Seal and open secrets with the configured keys; the first key seals.

    Build it with :meth:`from_settings` (the CLI and services) or :meth:`from_keys`.
    """

    def __init__(self, keys: Sequence[SecretKey], *, key_file: Path | None = None) -> None:
        if not keys:
            raise MissingSetting("CMIS_SECRET_KEYS", "no encryption key is configured")
        self._keys = {key.id: key for key in keys}
        self._aead = {key.id: AESGCM(key.material) for key in keys}
        self._primary = keys[0].id
        self._order = tuple(key.id for key in keys)
        self.key_file = key_file

    def __repr__(self) -> str:
        return f"Vault(primary={self._primary!r}, key_ids={self._order!r})"

    @classmethod
    def from_keys(cls, keys: Sequence[str]) -> Vault:
        """A vault over encoded keys, first key first (``SecretKey.encoded()`` form)."""
        return cls(parse_keys(",".join(keys), source="key list"))

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        on_key_file_created: Callable[[Path], None] | None = None,
    ) -> Vault:
        """The vault of ``settings``.

        ``CMIS_SECRET_KEYS`` wins when set. Otherwise, with SQLite only, the key file
        ``$CMIS_HOME/secret.key`` is used, created (mode 0600, atomically) on first use, in
        which case ``on_key_file_created`` is called with its path (or, without it, a
        ``vault.key_file_created`` warning is logged). With any other database
        a missing ``CMIS_SECRET_KEYS`` is a :class:`MissingSetting` error (exit 2).
        """
        if settings.secret_keys:
            return cls(parse_keys(",".join(settings.secret_keys), source="CMIS_SECRET_KEYS"))
        if not settings.is_sqlite:
            raise MissingSetting(
                "CMIS_SECRET_KEYS",
                "a key is required outside SQLite; make one with `cmis keys generate`",
            )
        path = settings.home / KEY_FILE_NAME
        if create_key_file(path):
            if on_key_file_created is None:
                log.warning("vault.key_file_created", path=str(path))
            else:
                on_key_file_created(path)
        return cls(read_key_file(path), key_file=path)

    @property
    def primary_key_id(self) -> str:
        """The id of the key that seals new values."""
        return self._primary

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every configured key id, the sealing key first."""
        return self._order

    def has_key(self, key_id: str) -> bool:
        """True when ``key_id`` is configured (rows under it can be opened)."""
        return key_id in self._keys

    def encrypt(self, plaintext: bytes, *, context: Sequence[str]) -> Sealed:
        """Seal ``plaintext`` with the first key, bound to ``context`` (e.g. org and row ids)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self._primary].encrypt(
            nonce, plaintext, _associated_data(self._primary, context)
        )
        return Sealed(key_id=self._primary, ciphertext=bytes([FORMAT_V1]) + nonce + sealed)

    def decrypt(self, sealed: Sealed, *, context: Sequence[str]) -> bytes:
        """Open ``sealed``; :class:`UndecryptableCredential` (exit 2) names the key id on failure.

        The error never contains key material, ciphertext or plaintext.
        """
        aead = self._aead.get(sealed.key_id)
        what = _describe(context)
        if aead is None:
            raise UndecryptableCredential(
                f"{what} is sealed with key {sealed.key_id}, which is not configured "
                f"(configured: {', '.join(self._order)})",
                hint="add that key back to CMIS_SECRET_KEYS (after the first), "
                "then run `cmis keys rotate`",
            )
        blob = sealed.ciphertext
        if len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES or blob[0] != FORMAT_V1:
            raise UndecryptableCredential(
                f"{what} (key {sealed.key_id}) is not in a format this cmis can read"
            )
        nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, body, _associated_data(sealed.key_id, context))
        except InvalidTag:
            raise UndecryptableCredential(
                f"{what} does not open with key {sealed.key_id}: "
                "it was altered, or belongs to another row",
                hint="restore the row from a backup, or reconnect the integration",
            ) from None

    def reencrypt(self, sealed: Sealed, *, context: Sequence[str]) -> Sealed:
        """``sealed`` re-sealed with the first key (unchanged if it already uses it)."""
        if sealed.key_id == self._primary:
            return sealed
        return self.encrypt(self.decrypt(sealed, context=context), context=context)

    def seal_tokens(
        self, tokens: TokenSet, *, org_id: int | str, integration_id: int | str
    ) -> Sealed:
        """Seal an integration's tokens for its credential row."""
        return self.encrypt(
            tokens.to_json().encode("utf-8"),
            context=credential_context(org_id, integration_id),
        )

    def open_tokens(
        self, sealed: Sealed, *, org_id: int | str, integration_id: int | str
    ) -> TokenSet:
        """The tokens in an integration's credential row."""
        context = credential_context(org_id, integration_id)
        plaintext = self.decrypt(sealed, context=context)
        try:
            return TokenSet.from_json(plaintext.decode("utf-8"))
        except (ValueError, KeyError, TypeError):
            pass  # raised below, outside the handler: the parse error may quote the plaintext
        raise UndecryptableCredential(f"{_describe(context)} opens but does not hold a token set")
