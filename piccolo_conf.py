"""Piccolo's configuration: which database, which apps. KEEL_DATABASE_URL picks the engine:
a SQLite path (the default, var/keel.sqlite) or postgresql://..."""

from piccolo.conf.apps import AppRegistry

from cmdb.db import engine_from_url

DB = engine_from_url()

APP_REGISTRY = AppRegistry(
    apps=[
        "cmdb.piccolo_app",
        "change.piccolo_app",
        "release.piccolo_app",
        "incident.piccolo_app",
        "problem.piccolo_app",
    ]
)
