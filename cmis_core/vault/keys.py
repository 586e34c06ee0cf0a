"""Encryption keys: parsing, ids, generation, and the SQLite key file.

A key is 32 random bytes written as URL-safe base64 (44 characters). ``CMIS_SECRET_KEYS``
is a comma-separated list of such keys; the first encrypts, every one decrypts. A key's id
is the first 8 hex digits of SHA-256 over ``b"cmis-key-id:" + key`` (a one-way digest:
the id reveals nothing of the key) and is stored beside every ciphertext, so an operator
can see which rows still need an old key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

import attrs
import structlog

from cmis_core.errors import ConfigurationError

log = structlog.get_logger(__name__)

KEY_BYTES = 32
KEY_FILE_NAME = "secret.key"


def key_id_of(material: bytes) -> str:
    """The short, stable, public id of a key: 8 hex digits of a domain-separated SHA-256."""
    return hashlib.sha256(b"cmis-key-id:" + material).hexdigest()[:8]


@attrs.frozen(kw_only=True)
class SecretKey:
    """One AES-256 key and its id. The key material never appears in a repr."""

    id: str
    material: bytes = attrs.field(repr=False)

    @classmethod
    def parse(cls, text: str, *, source: str) -> SecretKey:
        """Decode one URL-safe base64 key; ``source`` names it in errors (never the value)."""
        stripped = text.strip()
        try:
            padded = stripped.encode("ascii") + b"=" * (-len(stripped) % 4)
            material = base64.urlsafe_b64decode(padded)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            material = b""
        if len(material) != KEY_BYTES:
            raise ConfigurationError(
                f"{source} is not a key: expected {KEY_BYTES} bytes in URL-safe base64",
                hint="make one with `cmis keys generate`",
            )
        return cls(id=key_id_of(material), material=material)

    @classmethod
    def generate(cls) -> SecretKey:
        """A new random key."""
        material = secrets.token_bytes(KEY_BYTES)
        return cls(id=key_id_of(material), material=material)

    def encoded(self) -> str:
        """The key as written in ``CMIS_SECRET_KEYS`` (a secret: print it only on request)."""
        return base64.urlsafe_b64encode(self.material).decode("ascii")


def parse_keys(text: str, *, source: str) -> tuple[SecretKey, ...]:
    """Parse a comma- (or newline-) separated key list, first key first, duplicates dropped."""
    parts = [p.strip() for p in text.replace("\n", ",").split(",")]
    keys: list[SecretKey] = []
    seen: set[str] = set()
    for position, part in enumerate((p for p in parts if p), start=1):
        key = SecretKey.parse(part, source=f"{source} entry {position}")
        if key.id not in seen:
            seen.add(key.id)
            keys.append(key)
    return tuple(keys)


def read_key_file(path: Path) -> tuple[SecretKey, ...]:
    """The keys in ``path`` (same format as ``CMIS_SECRET_KEYS``); warns when others can read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the key file {path}: {type(exc).__name__}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("vault.key_file_permissions", path=str(path), mode=oct(mode & 0o777))
    keys = parse_keys(text, source=f"key file {path}")
    if not keys:
        raise ConfigurationError(f"the key file {path} holds no key")
    return keys


def create_key_file(path: Path) -> bool:
    """Create ``path`` holding a new key, mode 0600, atomically; False if it already existed.

    The key is written and flushed to a private temporary file in the same folder, which is
    then hard-linked to ``path``: the link fails if another process won the race, so every
    process ends up reading the same, complete key.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        return False
    key = SecretKey.generate()
    fd, tmp_name = tempfile.mkstemp(prefix=".secret-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(key.encoded() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return False
        _fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
