"""`cmis keys`: make encryption keys, see which keys the stored tokens use, rotate them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cmis_core.errors import ExitCode

if TYPE_CHECKING:
    from cmis_core.settings import Settings
    from cmis_core.vault import Vault


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
