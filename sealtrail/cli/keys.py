"""``sealtrail keys``: make and inspect Ed25519 key files."""

from __future__ import annotations

from pathlib import Path

import click

from sealtrail.cli.options import warn_user
from sealtrail.custody.keys import SigningKey, check_key_name, load_key_file, write_key_pair
from sealtrail.terminal import printable


@click.group("keys")
def command() -> None:
    """Generate and show Ed25519 signing keys."""


@command.command("generate")
@click.option("--name", required=True, help="Key name (the examiner's handle), e.g. alice.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write NAME.key (mode 0600) and NAME.pub into (created 0700).")
def generate(name: str, out_dir: Path) -> None:
    """Generate a key pair; refuses to overwrite existing files.

    Example: sealtrail keys generate --name alice --out ~/.sealtrail/keys
    """
    key = SigningKey.generate(check_key_name(name))
    private_path, public_path = write_key_pair(key, out_dir)
    click.echo(f"private key: {printable(private_path)} (keep it secret; mode 0600)")
    click.echo(f"public key:  {printable(public_path)}")
    click.echo(f"key id:      {key.key_id}")


@command.command("show")
@click.argument("key_file", type=click.Path(path_type=Path))
def show(key_file: Path) -> None:
    """Print a key file's name, kind, key id and public key (never the private part).

    Example: sealtrail keys show keys/alice.pub
    """
    key = load_key_file(key_file, warn=warn_user)
    public = key.public if isinstance(key, SigningKey) else key
    click.echo(f"name:       {printable(public.name)}")
    click.echo("kind:       " + ("private key (keep it secret; its public half is shown)"
                                 if isinstance(key, SigningKey) else "public key"))
    click.echo(f"key id:     {public.key_id}")
    click.echo(f"public key: {public.b64}")
    click.echo(f"note key:   {public.note_verifier}")
