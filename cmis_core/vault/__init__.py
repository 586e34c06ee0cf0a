"""Token encryption at rest, with key rotation.

:class:`Vault` seals bytes with AES-256-GCM under the first configured key and opens them
with any configured key; each sealed value records its key id (:class:`Sealed`).
:func:`rotate` re-seals a credentials table under the newest key, in batches.
"""

from __future__ import annotations

from cmis_core.vault.cipher import Sealed, Vault, credential_context
from cmis_core.vault.keys import KEY_FILE_NAME, SecretKey, key_id_of
from cmis_core.vault.rotation import (
    BatchResult,
    RotationReport,
    key_usage,
    rotate,
    rotate_batch,
    rotate_organizations,
)

__all__ = [
    "KEY_FILE_NAME",
    "BatchResult",
    "RotationReport",
    "Sealed",
    "SecretKey",
    "Vault",
    "credential_context",
    "key_id_of",
    "key_usage",
    "rotate",
    "rotate_batch",
    "rotate_organizations",
]
