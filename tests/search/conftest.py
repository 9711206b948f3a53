"""Fixtures for the search engine tests: simulated-search configs and a PostgreSQL URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DEFAULT_PG = "postgresql://tgsage:tgsage@127.0.0.1:5432/tgsage"


def _sim_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": f"t-{uuid.uuid4().hex[:10]}",
        "objective": "simulate",
        "space": "layer",
        "strategy": "random",
        "n_candidates": 8,
        "workers": 1,
        "run_dir": str(tmp_path / "run"),
        "simulate": {"sleep": 0.0},
        "heartbeat_interval": 1,
        "grace_period": 3,
    }
    cfg.update(overrides)
    return cfg


def _pg_url() -> str | None:
    url = os.environ.get("TGSAGE_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        import psycopg2
    except ImportError:
        return None
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except Exception:
        return None
    return url


@pytest.fixture
def sim_config(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Factory: a cheap simulated search (no training) in ``tmp_path``, fresh study name."""
    return lambda **overrides: _sim_config(tmp_path, **overrides)


_PG: list[str | None] = []


@pytest.fixture
def postgres_url() -> str:
    """The test PostgreSQL URL; the test is skipped when no server answers."""
    if not _PG:
        _PG.append(_pg_url())
    if _PG[0] is None:
        pytest.skip(
            "no PostgreSQL at $TGSAGE_TEST_POSTGRES_URL or "
            f"{DEFAULT_PG} (start one with .ci/start-postgres.sh)"
        )
    return _PG[0]
