"""`cmis keys`: make encryption keys, see which keys the stored tokens use, rotate them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cmis_core.errors import ExitCode

if TYPE_CHECKING:
    from cmis_core.settings import Settings
    from cmis_core.vault import RotationReport, Vault


def announce_key_file(path: Path) -> None:
    """Tell the operator, on stderr, where a new key file was created."""
    click.echo(
        f"note: created the encryption key file {path} (mode 0600); back it up: "
        "without it the stored tokens cannot be read",
        err=True,
    )


def load_vault(settings: Settings) -> Vault:
    """The vault of ``settings``, saying on stderr when a key file had to be created.

    Every command that reads or writes tokens builds its vault through this.
    """
    from cmis_core.vault import Vault

    return Vault.from_settings(settings, on_key_file_created=announce_key_file)


def status_rows(vault: Vault, usage: Mapping[str, int]) -> list[dict[str, Any]]:
    """One row per key id, for `cmis keys status`: configured keys first (sealing key
    first), then key ids that credentials use but no configured key matches."""
    rows: list[dict[str, Any]] = [
        {
            "key_id": key_id,
            "role": "sealing" if key_id == vault.primary_key_id else "old",
            "credentials": usage.get(key_id, 0),
        }
        for key_id in vault.key_ids
    ]
    rows.extend(
        {"key_id": key_id, "role": "not configured", "credentials": count}
        for key_id, count in sorted(usage.items())
        if not vault.has_key(key_id) and count
    )
    return rows


def rotation_lines(report: RotationReport) -> list[str]:
    """What `cmis keys rotate` prints: rows rewritten, then rows left under each old key."""
    lines = [f"rewrote {report.rewritten} credential(s) under key {report.primary_key_id}"]
    if report.conflicts:
        lines.append(f"{report.conflicts} changed by another writer meanwhile (retried)")
    for key_id, count in sorted(report.remaining.items()):
        lines.append(f"{count} credential(s) still use key {key_id}")
    if report.complete:
        lines.append("no credential uses an old key: old keys can be removed")
    else:
        lines.append("run `cmis keys rotate` again before removing any old key")
    return lines


@click.group()
def keys() -> None:
    """Encryption keys of the stored tokens."""


@keys.command("generate")
def generate() -> int:
    """Print a new key (on stdout; its id on stderr).

    Put it first in CMIS_SECRET_KEYS, keep the old keys after it, then run
    `cmis keys rotate`.
    """
    from cmis_core.vault import SecretKey

    key = SecretKey.generate()
    click.echo(key.encoded())
    click.echo(
        f"key id {key.id}: put it first in CMIS_SECRET_KEYS, keep the old keys after it, "
        "then run `cmis keys rotate`",
        err=True,
    )
    return int(ExitCode.OK)
