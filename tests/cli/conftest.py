"""A working directory holding the example policy, as the README's quick start has it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import REPO


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "policy.yaml").write_text(
        (REPO / "examples" / "policy.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return tmp_path
