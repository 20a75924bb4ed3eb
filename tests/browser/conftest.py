"""Browser tests: `keel serve` in a subprocess on a free port, against a fresh SQLite file filled
by tests/browser/seed.py, driven by Playwright in Debian's headless Chromium.

The tests are plain synchronous functions using `playwright.sync_api`: pytest-asyncio runs no
event loop while a sync test runs, so Playwright's sync API (which refuses to run inside a
running loop) is safe here. Chromium is Debian's (`/usr/bin/chromium`, or KEEL_CHROMIUM): no
browser download. A missing Chromium fails these tests, with the command that installs it; it
never skips them.

On a failure the test's page is saved as a PNG in a temporary directory; the failure report
gives the path (section "browser screenshot").
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("KEEL_CHROMIUM", "/usr/bin/chromium")
# As the machine's notes say: without the background-networking flags Chromium keeps trying
# to reach Google's hosts, which a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 60.0
ACTION_TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class Server:
    base_url: str
    facts: dict[str, Any]
    log: Path

    def url(self, path: str) -> str:
        return self.base_url + path

    def password(self, username: str) -> str:
        return str(self.facts["passwords"][username])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _keel_command() -> list[str]:
    keel = Path(sys.executable).parent / "keel"
    if not keel.exists():
        pytest.fail(f"`keel` is not installed next to {sys.executable}: run `pip install -e '.[test]'`")
    return [str(keel)]


def _environment(database: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # Always a SQLite file of its own, whichever database the rest of the suite uses.
            "KEEL_DATABASE_URL": str(database),
            "KEEL_SECURE_COOKIES": "false",  # plain http://127.0.0.1
            "KEEL_SCHEDULER": "off",
            "KEEL_PASSWORD_HASH": os.environ.get("KEEL_PASSWORD_HASH", "fast"),
            "KEEL_SECRET_KEY": "browser-tests-secret-key-0123456789-abcdef",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("KEEL_SMTP_HOST", None)
    return env


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`keel serve` exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(
        f"`keel serve` did not answer /health in {START_TIMEOUT:.0f}s:\n{log.read_text(errors='replace')[-3000:]}"
    )


@pytest.fixture(scope="session")
def keel_server() -> Iterator[Server]:
    workdir = Path(tempfile.mkdtemp(prefix="keel-browser-"))
    database = workdir / "keel.sqlite"
    env = _environment(database)
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.browser.seed"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    lines = [line for line in seeded.stdout.splitlines() if line.startswith("SEEDED ")]
    if seeded.returncode != 0 or not lines:
        pytest.fail(
            f"tests/browser/seed.py failed ({seeded.returncode}):\n{seeded.stdout[-2000:]}\n{seeded.stderr[-3000:]}"
        )
    facts = json.loads(lines[-1].removeprefix("SEEDED "))
    port = _free_port()
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*_keel_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=workdir,  # not the source tree: the installed package finds its own templates
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, process, log)
        yield Server(base_url, facts, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium per test module. Not per session: while Playwright's sync API is started it
    marks its event loop as running in the main thread, and pytest-asyncio then refuses to run
    the async tests of the other modules; stopping it at the module's end clears that."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser tests need Debian's chromium package "
            "(`apt-get install chromium`, which .ci/run does) or KEEL_CHROMIUM set to a Chromium binary. "
            "They never download a browser.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: `pip install -e '.[test]'`", pytrace=False)
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(chromium: Any, keel_server: Server) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page per test."""
    context = chromium.new_context(base_url=keel_server.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    browser_page = context.new_page()
    try:
        yield browser_page
    finally:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        browser_page = getattr(item, "funcargs", {}).get("page")
        if browser_page is not None:
            shots = Path(tempfile.gettempdir()) / "keel-browser-screenshots"
            shots.mkdir(exist_ok=True)
            target = shots / f"{item.name}-{int(time.time())}.png"
            try:
                browser_page.screenshot(path=str(target), full_page=True)
                where = f"{target} (page {browser_page.url})"
            except Exception as error:  # the page may be gone; the failure itself matters more
                where = f"could not take a screenshot: {error}"
            report.sections.append(("browser screenshot", where))
            print(f"\nbrowser screenshot: {where}", file=sys.stderr)
    return report


def sign_in(page: Any, server: Server, username: str) -> None:
    """The sign-in form, as a person fills it in."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(server.password(username))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
