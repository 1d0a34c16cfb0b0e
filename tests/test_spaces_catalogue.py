"""`explorer spaces` reads the families' metadata from search_spaces/catalogue.json (no torch);
the file must say exactly what the registry says."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import search_spaces as ss
from explorer.cli import main
from search_spaces._catalogue import PATH, catalogue


def test_catalogue_file_matches_the_registry() -> None:
    stored = json.loads(PATH.read_text(encoding="utf-8"))
    fresh = catalogue()
    assert list(stored["families"]) == ss.list_families()
    for name, details in fresh["families"].items():
        assert stored["families"][name] == details, (
            f"search_spaces/catalogue.json is stale for {name!r}: "
            "run python -m search_spaces._catalogue"
        )
    assert stored == fresh


def test_spaces_list_and_show_do_not_import_torch() -> None:
    code = (
        "import io, json, sys, contextlib\n"
        "from explorer.cli import main\n"
        "out = {}\n"
        "for args in (['spaces', '--format', 'json'], ['spaces', 'show', 'kumar', '--format',"
        " 'json']):\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        try:\n"
        "            main(args)\n"
        "        except SystemExit as e:\n"
        "            assert not e.code, e.code\n"
        "    out[args[1]] = json.loads(buf.getvalue())\n"
        "heavy = sorted(m for m in ('torch', 'search_spaces') if m in sys.modules)\n"
        "print(json.dumps({'heavy': heavy, 'out': out}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    listed = result["out"]["--format"]
    assert [r["family"] for r in listed] == ss.list_families()
    for row in listed:
        fam = ss.get_family(row["family"])
        assert row["presets"] == list(fam.presets) and row["knobs"] == len(fam.space)
    shown = result["out"]["show"]
    assert shown == catalogue()["families"]["kumar"]
    assert {p["preset"] for p in shown["presets"]} == set(ss.get_family("kumar").presets)


def test_unknown_family_is_still_a_one_line_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["spaces", "show", "kumr"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1
    assert "kumr" in err and "kumar" in err
