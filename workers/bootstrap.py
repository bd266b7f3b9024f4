"""One-shot set-up the farm needs before it starts: database, schema, bucket.

``python -m workers.bootstrap`` is compose's and k8s's migrate step: it creates the database if
the server lacks it, runs ``alembic upgrade head`` and creates the bucket if it is missing.
"""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.infra.db import migrate
from shared.infra.settings import get_settings
from shared.infra.storage import S3Store


def ensure_database(url: str) -> None:
    target = make_url(url)
    if not target.drivername.startswith("postgresql"):
        return
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def main() -> None:
    settings = get_settings()
    ensure_database(settings.database.url)
    migrate(settings.database.url)
    if settings.storage.backend == "s3":
        S3Store(settings.storage).ensure_bucket()


if __name__ == "__main__":
    main()
