"""Running the real `pasa` command in a subprocess, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASA = str(Path(sys.executable).with_name("pasa"))
AS_OF = "2026-11-24"


def run(
    cwd: Path, db_url: str, *args: str, ok: bool = True, actor: str = "test-operator"
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PASA_DATABASE_URL": db_url,
        "PASA_ACTOR": actor,
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [PASA, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result
