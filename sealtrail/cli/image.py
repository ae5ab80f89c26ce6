"""``sealtrail image info``: what is on a disk image (like ``mmls`` + ``fsstat`` + ``ewfinfo``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sealtrail.acquisition.image_collection import inspect_image
from sealtrail.terminal import printable


@click.group("image")
def command() -> None:
    """Inspect disk images (raw/dd, split raw, E01, qcow2, block devices)."""


@command.command("info")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(image: Path, as_json: bool) -> None:
    """Show an image's format, media size, EWF metadata and stored hashes, and each
    partition with its file system. The image is parsed in a worker process.

    \b
    Examples:
      sealtrail image info web01.E01
      sealtrail image info disk.raw --json
    """
    details = inspect_image(image)
    if as_json:
        click.echo(json.dumps(details, sort_keys=True))
        return
    p = printable
    click.echo(f"image     {p(details['path'])}")
    click.echo(f"format    {p(details['format'])}")
    click.echo(f"size      {details['size']:,} bytes")
    for segment in details.get("segments") or []:
        click.echo(f"segment   {p(segment)}")
    for name, value in (details.get("metadata") or {}).items():
        click.echo(f"{p(name):<25} {p(value)}")
    for name, value in (details.get("stored_hashes") or {}).items():
        click.echo(f"stored {p(name):<18} {p(value)}")
    vs = details.get("volume_system")
    click.echo(f"volume system: {p(vs or 'none (one file system over the whole image)')}")
    click.echo(f"{'#':>3}  {'start':>12}  {'length':>12}  {'type':<24}  file system")
    for part in details["partitions"]:
        fs = part.get("fs") or {}
        if part.get("fs_type"):
            what = (f"{part['fs_type']} (block {fs.get('block_size')}, "
                    f"{fs.get('block_count')} blocks)") if fs else part["fs_type"]
        else:
            what = f"none: {part.get('fs_error')}"
        what = p(what)
        click.echo(f"{part['index']:>3}  {part['start_offset']:>12}  {part['length']:>12}  "
                   f"{p(part['type_desc'] or '(unnamed)'):<24}  {what}")
        if part.get("fs_note"):
            click.echo(f"{'':>3}  warning: {p(part['fs_note'])}")
