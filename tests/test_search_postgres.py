"""Two workers sharing a study on a real PostgreSQL server (started by .ci/run).

Skipped, with the reason, when ``EXPLORER_TEST_POSTGRES_URL`` is unset, psycopg is missing or
the server does not answer.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests._search_helpers import subprocess_env
from tests.test_search_workers import run_two_workers

URL = os.environ.get("EXPLORER_TEST_POSTGRES_URL", "")


def _reachable(url: str) -> str:
    """'' when a server answers at ``url``, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("select 1")
    except Exception as exc:
        return f"no PostgreSQL server answers at {url}: {type(exc).__name__}: {exc}"
    return ""


@pytest.mark.skipif(
    not URL,
    reason="EXPLORER_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL server and sets it)",
)
def test_two_workers_share_one_postgres_study(tmp_path: Path) -> None:
    why = _reachable(URL)
    if why:
        pytest.skip(why)
    import optuna

    name = f"tiny-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "run"
    out.mkdir()
    try:
        run_two_workers(URL, out, subprocess_env(tmp_path / "features"), trials=4, study_name=name)
    finally:
        from explorer.search._study import _storage

        optuna.delete_study(study_name=name, storage=_storage(URL, heartbeat_s=10))
