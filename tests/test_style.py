"""The tree stays formatted and lint-clean: ``ruff format`` and ``ruff check`` as in CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = shutil.which("ruff")
    if exe is not None:
        return [exe]
    try:
        import ruff  # noqa: F401
    except ImportError:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return [sys.executable, "-m", "ruff"]


@pytest.mark.parametrize(
    "args, fix",
    [
        (["format", "--check", "."], "run `ruff format .`"),
        (["check", "."], "run `ruff check --fix .` and fix what remains"),
    ],
)
def test_ruff(args: list[str], fix: str) -> None:
    proc = subprocess.run([*_ruff(), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(args)} failed ({fix}):\n{proc.stdout}{proc.stderr}"
