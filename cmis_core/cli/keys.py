"""`cmis keys`: make encryption keys, see which keys the stored tokens use, rotate them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cmis_core.cli.output import emit, json_option
from cmis_core.errors import ExitCode, UndecryptableCredential

if TYPE_CHECKING:
    from cmis_core.settings import Settings
    from cmis_core.store import Store
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


def credential_usage(store: Store) -> dict[str, int]:
    """Credentials per key id across every organisation (each read in its own context)."""
    from cmis_core.store import tables
    from cmis_core.vault import key_usage

    total: dict[str, int] = {}
    for org in store.list_orgs():
        with store.org(org.id, write=False) as conn:
            for key_id, count in key_usage(conn, tables.credentials, org_id=org.id).items():
                total[key_id] = total.get(key_id, 0) + count
    return dict(sorted(total.items()))


@keys.command("status")
@json_option
def status(as_json: bool) -> int:
    """Credentials per key id, for every configured key and every key in use.

    An old key showing 0 credentials can be removed from CMIS_SECRET_KEYS. Credentials
    under a key that is not configured cannot be opened: exit 2.
    """
    from cmis_core.settings import Settings
    from cmis_core.store import open_store

    settings = Settings.from_env()
    vault = load_vault(settings)
    with open_store(settings) as store:
        rows = status_rows(vault, credential_usage(store))
    emit(rows, as_json=as_json, columns=("key_id", "role", "credentials"))
    _fail_on_missing_keys(rows)
    return int(ExitCode.OK)


def _fail_on_missing_keys(rows: list[dict[str, Any]]) -> None:
    missing = [row for row in rows if row["role"] == "not configured"]
    if missing:
        count = sum(row["credentials"] for row in missing)
        ids = ", ".join(row["key_id"] for row in missing)
        raise UndecryptableCredential(
            f"{count} credential(s) are sealed with key(s) {ids}, which are not configured",
            hint="add the key(s) back to CMIS_SECRET_KEYS (after the first), "
            "then run `cmis keys rotate`",
        )


@keys.command("rotate")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=100_000),
    default=500,
    show_default=True,
    help="Credentials re-sealed per transaction.",
)
def rotate_keys(batch_size: int) -> int:
    """Re-seal every credential under the first key of CMIS_SECRET_KEYS.

    Goes organisation by organisation, in batches, each its own transaction: interrupted
    (even by kill -9), it finishes when run again. Prints how many credentials still use
    each old key; exit 1 while some do.
    """
    import structlog

    from cmis_core.settings import Settings
    from cmis_core.store import open_store, tables
    from cmis_core.vault import BatchResult, rotate_organizations

    settings = Settings.from_env()
    vault = load_vault(settings)
    log = structlog.get_logger(__name__)

    def progress(org_id: Any, batch: BatchResult) -> None:
        log.info(
            "keys.rotate_batch", org_id=org_id, rewritten=batch.rewritten, conflicts=batch.conflicts
        )

    with open_store(settings) as store:
        orgs = [org.id for org in store.list_orgs()]
        report = rotate_organizations(
            orgs,
            lambda org_id: store.org(org_id),
            tables.credentials,
            vault,
            batch_size=batch_size,
            on_batch=progress,
        )
    for line in rotation_lines(report):
        click.echo(line)
    return int(ExitCode.OK if report.complete else ExitCode.PARTIAL)
