import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_farm
from tests.burst import BurstFarm


@pytest.fixture()
def burst(farm_settings):
    """The farm's stages in this process, messages drained by the test."""
    farm = BurstFarm(farm_settings)
    yield farm
    farm.close()


@pytest.fixture()
def client(burst):
    """The API in this process, its farm the burst one."""
    app = create_app()
    app.dependency_overrides[get_farm] = lambda: burst.farm
    with TestClient(app) as client:
        yield client
