"""The `keel` command as scripts use it: a real process on the test database."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import World


def keel(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        check=False,
    )


async def test_user_add_reads_the_password_from_stdin_and_can_sign_in(world: World) -> None:
    result = keel("user", "add", "nina", "--role", "engineer", "--role", "change_manager", stdin="nina-secret-pw\n")
    assert result.returncode == 0, result.stderr
    assert "created nina" in result.stdout
    from cmdb.accounts import Accounts

    _, _, actor = await Accounts(world.clock).sign_in("nina", "nina-secret-pw", "api")
    assert {role.value for role in actor.roles} == {"engineer", "change_manager"}


async def test_user_add_refuses_bad_input_with_the_reason(world: World) -> None:
    result = keel("user", "add", "zed", "--role", "wizard", stdin="zed-secret-pw\n")
    assert result.returncode == 2
    assert "roles" in result.stderr and "wizard" in result.stderr
    result = keel("user", "add", "cust", "--role", "customer", "--customer", "ACME", stdin="short\n")
    assert result.returncode == 2 and "password" in result.stderr


async def test_impact_prints_a_tree(world: World) -> None:
    svc = await world.ci("ACME", "shop-service", "service")
    app = await world.ci("ACME", "shop-app", "application")
    db = await world.ci("ACME", "shop-db", "database")
    await world.link(svc.id, app.id)
    await world.link(app.id, db.id)
    result = keel("impact", "ACME:shop-db")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("shop-db (database, ACME) impacts")
    assert lines[1].endswith("shop-app (application, ACME)")
    assert lines[2].strip().endswith("shop-service (service, ACME)")
    assert lines[2].startswith("    ")
    up = keel("impact", str(svc.id), "--up", "--depth", "1")
    assert up.returncode == 0 and "shop-app" in up.stdout and "shop-db" not in up.stdout
    missing = keel("impact", "no-such-ci")
    assert missing.returncode == 1 and "No CI" in missing.stderr
