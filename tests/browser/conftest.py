"""The web application in a real browser: Debian's Chromium driven by Playwright.

``live_app`` serves PASA with uvicorn on a free port over a SQLite hub seeded with a small
synthetic trust (provisioned, with an identity team member, a system owner and an auditor)
and the demo sign-in on. Playwright launches ``/usr/bin/chromium`` (``make test`` installs it
with ``scripts/ensure-chromium.sh``); no browser is ever downloaded. Every page a test visits
is checked with axe-core (``web/node_modules``, installed by ``make assets``), and the main
pages are saved to ``docs/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

from playwright.sync_api import Browser, Page, sync_playwright

from pasa.config import Settings
from pasa.hr.importer import import_extract
from pasa.hr.synthetic import generate_workforce
from pasa.policy.document import load_policy_file
from pasa.service import access, provisioning
from pasa.store.db import make_engine, migrate
from pasa.store.policy_repo import save_policy
from pasa.web.app import create_app
from support.served import served

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"

IDENTITY, OWNER, AUDITOR = "identity.team@nhs.net", "system.owner@nhs.net", "auditor@nhs.net"


@dataclass(frozen=True)
class LiveApp:
    """The served app; ``engine`` is its hub (tests seed their own scenarios into it) and
    ``work`` the directory its SQLite target systems live under (``work / "var"``)."""

    url: str
    engine: Engine
    work: Path
    today: dt.date


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (make test runs scripts/ensure-chromium.sh)")
    if not AXE.exists():
        pytest.skip("axe-core is not installed (make test runs make assets)")
    work = tmp_path_factory.mktemp("browser")
    engine = make_engine(f"sqlite:///{work / 'pasa.db'}")
    migrate(engine)
    today = dt.date.today()
    here = Path.cwd()
    os.chdir(work)  # the example policy's target systems are SQLite files under ./var
    try:
        with engine.begin() as conn:
            policy = load_policy_file(REPO / "examples" / "policy.yaml")
            save_policy(conn, policy, source="tests", actor="tests")
        generate_workforce(work / "esr.csv", staff=100, org="RXL", seed=5, as_of=today)
        import_extract(engine, work / "esr.csv", actor="tests", as_of=today)
        provisioning.apply(engine, today, actor="tests")
        provisioning.execute(engine)
    finally:
        os.chdir(here)
    access.grant_role(engine, IDENTITY, "org_admin", organisation="RXL", actor="tests")
    access.grant_role(engine, OWNER, "system_owner", organisation="RXL", target="ad", actor="tests")
    access.grant_role(engine, AUDITOR, "auditor", organisation="RXL", actor="tests")
    settings = Settings(
        dev_signin=True,
        session_cookie_secure=False,
        session_secret="browser-tests-session-secret-0123456789",
        signin_rate_limit=0,
    )
    with served(create_app(engine, settings=settings)) as url:
        yield LiveApp(url, engine, work, today)
    engine.dispose()


@pytest.fixture(scope="session")
def browser(live_app: LiveApp) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, live_app: LiveApp) -> Iterator[Page]:
    context = browser.new_context(base_url=live_app.url, viewport={"width": 1100, "height": 900})
    # axe-core from the local file, in every page the test opens.
    context.add_init_script(path=str(AXE))
    opened = context.new_page()
    yield opened
    context.close()
