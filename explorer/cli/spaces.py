"""``explorer spaces``: the architecture families, their presets and search spaces."""

from __future__ import annotations

import typer

from ._app import app
from ._output import Format, print_json, print_table

spaces_app = typer.Typer(
    help="List the architecture families, or show one family's search space and presets.",
    invoke_without_command=True,
)
app.add_typer(spaces_app, name="spaces")


def _catalogue() -> dict:
    """The families from ``search_spaces/catalogue.json``, read without importing the package
    (its families import torch); ``{}`` when the file is missing or from another format."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec("search_spaces")  # locates, does not import
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            data = json.loads((Path(folder) / "catalogue.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") == 1:  # _catalogue.CATALOGUE_FORMAT
            return dict(data.get("families") or {})
    return {}


def family_details(name: str) -> dict:
    """Everything `spaces show` prints: knobs with ranges, defaults and conditions; presets."""
    known = _catalogue()
    if name in known:
        return known[name]
    import search_spaces as ss

    return ss.family_details(name)  # imports torch; an unknown name gets the registry's error


def _family_summary(details: dict) -> dict:
    return {
        "family": details["family"],
        "summary": details["summary"],
        "paper": details["paper"],
        "presets": [p["preset"] for p in details["presets"]],
        "knobs": len(details["knobs"]),
    }


@spaces_app.callback()
def spaces_list(
    ctx: typer.Context,
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """List the registered families with their presets."""
    if ctx.invoked_subcommand is not None:
        return
    known = _catalogue()
    if not known:
        import search_spaces as ss

        known = ss.catalogue()["families"]
    rows = [_family_summary(details) for details in known.values()]
    if format is Format.json:
        print_json(rows)
        return
    print_table(
        [(r["family"], r["summary"], ", ".join(r["presets"]) or "-", r["knobs"]) for r in rows],
        ["family", "what", "presets", "knobs"],
        title="architecture families (explorer spaces show FAMILY for the knobs)",
        right_align=[3],
    )


@spaces_app.command("show")
def spaces_show(
    family: str = typer.Argument(..., help="Family name, e.g. lu."),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Show a family's searchable knobs (range, default, condition) and its presets."""
    details = family_details(family)
    if format is Format.json:
        print_json(details)
        return
    print_table(
        [
            (
                k["field"],
                k["values"],
                tuple(k["default"]) if isinstance(k["default"], list) else k["default"],
                ", ".join(f"{c} in {v}" for c, v in k["when"].items()) or "-",
            )
            for k in details["knobs"]
        ],
        ["knob", "values", "default", "only when"],
        title=f"{family}: {details['summary']} ({details['paper']})",
    )
    print_table(
        [
            (
                p["preset"],
                (p["published"] or {}).get("params") or "-",
                (p["published"] or {}).get("flops") or "-",
                (p["published"] or {}).get("note") or "",
            )
            for p in details["presets"]
        ],
        ["preset", "published params", "published FLOPs", "note"],
        title="presets",
    )
