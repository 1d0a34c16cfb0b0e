"""``explorer spaces``: the architecture families, their presets and search spaces."""

from __future__ import annotations

import dataclasses

import typer

from ._app import app
from ._output import Format, print_json, print_table

spaces_app = typer.Typer(
    help="List the architecture families, or show one family's search space and presets.",
    invoke_without_command=True,
)
app.add_typer(spaces_app, name="spaces")


def _family_summary(name: str) -> dict:
    import search_spaces as ss  # imports torch: only when a space command runs

    fam = ss.get_family(name)
    return {
        "family": name,
        "summary": fam.summary,
        "paper": fam.paper,
        "presets": list(fam.presets),
        "knobs": len(fam.space),
    }


@spaces_app.callback()
def spaces_list(
    ctx: typer.Context,
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """List the registered families with their presets."""
    if ctx.invoked_subcommand is not None:
        return
    import search_spaces as ss

    rows = [_family_summary(name) for name in ss.list_families()]
    if format is Format.json:
        print_json(rows)
        return
    print_table(
        [(r["family"], r["summary"], ", ".join(r["presets"]) or "-", r["knobs"]) for r in rows],
        ["family", "what", "presets", "knobs"],
        title="architecture families (explorer spaces show FAMILY for the knobs)",
        right_align=[3],
    )


def family_details(name: str) -> dict:
    """Everything `spaces show` prints: knobs with ranges, defaults and conditions; presets."""
    import search_spaces as ss

    fam = ss.get_family(name)
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(fam.config_cls)
        if f.default is not dataclasses.MISSING
    }
    knobs = [
        {
            "field": field,
            "values": param.describe(),
            "default": defaults.get(field),
            "when": {k: list(v) for k, v in param.when.items()},
        }
        for field, param in fam.space.items()
    ]
    presets = []
    for preset, config in fam.presets.items():
        pub = fam.published.get(preset)
        presets.append(
            {
                "preset": preset,
                "config": ss.config_to_dict(config),
                "published": dataclasses.asdict(pub) if pub else None,
            }
        )
    return {**_family_summary(name), "knobs": knobs, "presets": presets}


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
                k["default"],
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
