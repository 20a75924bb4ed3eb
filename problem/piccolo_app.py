import os

from piccolo.conf.apps import AppConfig, table_finder

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="problem",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=table_finder(modules=["problem.tables", "problem.report_tables"], exclude_imported=True),
    migration_dependencies=["cmdb.piccolo_app", "change.piccolo_app", "release.piccolo_app", "incident.piccolo_app"],
    commands=[],
)
