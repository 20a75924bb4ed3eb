"""Keel's configuration, read from the environment once at start-up."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass

from cmdb.db import DEFAULT_DATABASE


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE
    secret_key: str = ""
    # Cookies carry `Secure` unless explicitly running plain-HTTP local development.
    secure_cookies: bool = True
    provider_key: str = "PROVIDER"
    provider_name: str = "Managed Services Provider"
    session_hours: int = 12
    token_days: int = 30
    debug: bool = False
    # Escalations and email run in a background scheduler; every process may run one, a
    # database lease lets one work at a time. Off by default in code (tests), on for `keel serve`.
    run_scheduler: bool = False
    scheduler_tick_seconds: float = 15.0

    @classmethod
    def from_env(cls) -> Settings:
        secret = os.environ.get("KEEL_SECRET_KEY", "")
        if not secret:
            # A per-process secret only breaks CSRF tokens across restarts or between workers;
            # production sets KEEL_SECRET_KEY so every worker agrees.
            secret = secrets.token_urlsafe(32)
            print("keel: KEEL_SECRET_KEY is not set; using a random one for this process", file=sys.stderr)
        return cls(
            database_url=os.environ.get("KEEL_DATABASE_URL") or DEFAULT_DATABASE,
            secret_key=secret,
            secure_cookies=_flag("KEEL_SECURE_COOKIES", True),
            provider_key=os.environ.get("KEEL_PROVIDER_KEY", "PROVIDER"),
            provider_name=os.environ.get("KEEL_PROVIDER_NAME", "Managed Services Provider"),
            session_hours=int(os.environ.get("KEEL_SESSION_HOURS", "12")),
            token_days=int(os.environ.get("KEEL_TOKEN_DAYS", "30")),
            debug=_flag("KEEL_DEBUG", False),
            run_scheduler=_flag("KEEL_SCHEDULER", True),
            scheduler_tick_seconds=float(os.environ.get("KEEL_SCHEDULER_TICK", "15")),
        )
