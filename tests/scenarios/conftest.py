"""The scenario trust: empty hub, the scenario policy, target systems under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from .harness import Trust


@pytest.fixture
def trust(engine: Engine, tmp_path: Path) -> Trust:
    t = Trust(engine=engine, root=tmp_path)
    t.install_policy()
    return t
