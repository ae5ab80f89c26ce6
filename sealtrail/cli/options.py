"""Options and argument types shared by several commands."""

from __future__ import annotations

from pathlib import Path

import click

from sealtrail.custody.keys import PublicKey, SigningKey, load_private_key, load_public_key
from sealtrail.terminal import printable


def key_option(required: bool = True):  # noqa: ANN201 - click decorator
    return click.option(
        "--key",
        "key_path",
        envvar="SEALTRAIL_KEY",
        required=required,
        type=click.Path(path_type=Path),
        help="Private key file that signs (or set SEALTRAIL_KEY=FILE).",
    )


def trust_option(help_text: str = "Public key file to trust (repeatable)."):  # noqa: ANN201
    return click.option(
        "--trust",
        "trust_paths",
        multiple=True,
        type=click.Path(path_type=Path),
        help=help_text,
    )


def warn_user(text: str) -> None:
    """A warning for the user: one line on stderr."""
    click.echo(f"warning: {printable(text)}", err=True)


def load_signing_key(path: Path) -> SigningKey:
    return load_private_key(path, warn=warn_user)


def load_trusted(paths: tuple[Path, ...]) -> list[PublicKey]:
    return [load_public_key(path) for path in paths]


case_argument = click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path))
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
