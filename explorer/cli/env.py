"""``explorer env``: what this machine and installation are."""

from __future__ import annotations

import typer

from explorer.environment import environment

from ._app import app
from ._output import Format, print_json, print_table


@app.command("env")
def env_command(
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Versions of Python, torch, ONNX Runtime and optional packages; CPU and GPU."""
    info = environment()
    if format is Format.json:
        print_json(info)
        return
    rows = [(k, v) for k, v in info.items() if k != "packages"]
    rows += [(name, ver or "not installed") for name, ver in info["packages"].items()]
    print_table(rows, ["item", "value"], title="explorer environment")
