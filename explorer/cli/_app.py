"""The typer application every command module registers itself on."""

from __future__ import annotations

import typer

from explorer import __version__

app = typer.Typer(
    name="explorer",
    help="Profile, measure, predict and search lightweight audio-visual emotion networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"explorer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """explorer: hardware-aware design-space exploration for audio-visual emotion recognition."""
