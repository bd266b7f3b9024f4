from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.infra.db import session_scope
from shared.infra.settings import Settings
from shared.infra.storage import S3Store
from tests.services import (
    REDIS_TEST_PREFIX,
    REDIS_TEST_URL,
    create_database,
    drop_database,
    forget_redis_keys,
    start_moto,
)
from workers.farm_processes import free_port


@pytest.fixture(scope="session")
def orpheus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.checkpoints import build_orpheus  # torch: only for the tests that use it

    return build_orpheus(tmp_path_factory.mktemp("orpheus"))


@pytest.fixture(scope="session")
def snac_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.checkpoints import build_snac

    return build_snac(tmp_path_factory.mktemp("snac"))


@pytest.fixture(scope="session")
def orpheus_env(orpheus_dir: Path, snac_dir: Path) -> dict[str, str]:
    """Settings for the tiny checkpoints, with short chunks so that tests stay quick, as the
    LYRE_* variables of a process (the CLI, the farm's workers). Random weights are not speech:
    nearly every take fails its checks, which run and report it; one take a chunk keeps the
    tests from making each three times."""
    return {
        "LYRE_ENGINE": "orpheus",
        "LYRE_CHECKS__TAKES": "1",
        "LYRE_CHUNKING__MAX_CHARS": "80",
        "LYRE_ORPHEUS__MODEL": str(orpheus_dir),
        "LYRE_ORPHEUS__SNAC_MODEL": str(snac_dir),
        "LYRE_ORPHEUS__TOKENS_PER_CHAR": "0.5",
        "LYRE_ORPHEUS__MIN_TOKENS": "14",
        "LYRE_ORPHEUS__MAX_TOKENS": "140",
    }


@pytest.fixture()
def orpheus_settings(orpheus_env: dict[str, str]) -> Settings:
    """The same settings, as this process's Settings."""
    orpheus = {
        name.removeprefix("LYRE_ORPHEUS__").lower(): value
        for name, value in orpheus_env.items()
        if name.startswith("LYRE_ORPHEUS__")
    }
    return Settings.model_validate(
        {
            "engine": "orpheus",
            "chunking": {"max_chars": 80},
            "orpheus": orpheus,
            "checks": {"takes": 1},
        }
    )


# --- the farm's services ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database_url():
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    child = start_moto(port, tmp_path_factory.mktemp("moto") / "moto.log")
    yield f"http://127.0.0.1:{port}"
    child.terminate()
    child.wait(timeout=10)


@pytest.fixture(scope="session")
def farm_env(database_url: str, s3_endpoint: str) -> dict[str, str]:
    """LYRE_* settings that point every part of the farm at the test services."""
    return {
        "LYRE_DATABASE__URL": database_url,
        "LYRE_REDIS__URL": REDIS_TEST_URL,
        "LYRE_REDIS__KEY_PREFIX": REDIS_TEST_PREFIX,
        "LYRE_STORAGE__ENDPOINT_URL": s3_endpoint,
        "LYRE_STORAGE__ACCESS_KEY_ID": "test",
        "LYRE_STORAGE__SECRET_ACCESS_KEY": "test-secret",
        "LYRE_STORAGE__BUCKET": "lyre-test",
        "LYRE_WEBHOOKS__ALLOWLIST": '["127.0.0.0/8"]',
        "LYRE_WEBHOOKS__BASE_DELAY_S": "0.2",
        "LYRE_FARM__LEASE_S": "4",
        "LYRE_FARM__RECONCILE_EVERY_S": "1",
        "LYRE_CHUNKING__MAX_CHARS": "80",
    }


@contextmanager
def services_for(farm_env: dict[str, str]) -> Iterator[Settings]:
    """The farm's settings in this process, with every table emptied, this run's Redis keys
    gone and the bucket ready; the environment as it was afterwards."""
    from shared.infra import db
    from shared.infra.settings import get_settings

    with pytest.MonkeyPatch.context() as patch:
        for key, value in farm_env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        db.dispose_engines()
        settings = get_settings()
        with session_scope() as session:
            session.execute(text("TRUNCATE tenant, job, webhook_delivery, deleted_job CASCADE"))
        forget_redis_keys()
        S3Store(settings.storage).ensure_bucket()
        try:
            yield settings
        finally:
            get_settings.cache_clear()
            db.dispose_engines()


@pytest.fixture()
def farm_settings(farm_env) -> Iterator[Settings]:
    """The farm's services, fresh for one test."""
    with services_for(farm_env) as settings:
        yield settings
