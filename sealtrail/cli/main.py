"""The ``sealtrail`` command group and its error boundary.

Exit status: 0 success; 1 verification found a problem (also: ingest refused for that reason);
2 usage error (bad arguments, bad key file, not a case folder, bad or refused SQL); 3 any
other failure (a collection that could not finish, I/O errors).
Library errors become one ``Error:`` line on stderr; ``--verbose`` shows the traceback instead.
Text output escapes what a terminal could act on (``sealtrail.terminal``), log lines too.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from sealtrail import __version__
from sealtrail.errors import AnalysisError, CaseError, KeyFileError, SealtrailError, UsageError
from sealtrail.terminal import printable

EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_FAILURE = 3


class PrintableFormatter(logging.Formatter):
    """Log lines quote evidence paths too; the traceback (``--verbose``) is left as it is."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return printable(super().formatMessage(record))


class SealtrailGroup(click.Group):
    """Turns library exceptions into one-line errors with the documented exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("Error: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly, as a shell tool does.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:
            if (ctx.obj or {}).get("verbose"):
                raise
            code = EXIT_FAILURE
            if isinstance(exc, UsageError | KeyFileError | CaseError | AnalysisError):
                code = EXIT_USAGE
            if getattr(exc, "exit_code", None) == EXIT_PROBLEM:
                code = EXIT_PROBLEM
            if isinstance(exc, SealtrailError):
                message = str(exc)
            else:
                message = f"internal error: {type(exc).__name__}: {exc} (rerun with --verbose)"
            click.echo(f"Error: {printable(message)}", err=True)
            sys.exit(code)


@click.group(cls=SealtrailGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sealtrail")
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and debug logging.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Collect evidence into signed bundles and keep a verifiable custody ledger.

    \b
    Typical flow:
      sealtrail keys generate --name alice --out keys/
      sealtrail case init case1 --title "Breach 2026-03" --examiner Alice --key keys/alice.key
      sealtrail collect case1 --source /mnt/web01 --key keys/alice.key
      sealtrail verify case1 --trust keys/alice.pub
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])


def register() -> None:
    from sealtrail.cli import (
        acquire,
        analysis,
        artifacts,
        bundle,
        case,
        collect,
        findings,
        image,
        keys,
        ledger,
        verify,
    )

    for module in (keys, case, collect, acquire, bundle, ledger, verify, artifacts, image):
        cli.add_command(module.command)
    for command in (analysis.ingest, analysis.query, analysis.timeline, analysis.export_command,
                    analysis.scan, findings.analyze, findings.findings_group):
        cli.add_command(command)


register()


def main() -> None:
    cli(prog_name="sealtrail")


if __name__ == "__main__":
    main()
