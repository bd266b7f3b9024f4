import threading
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_farm
from shared.farm.live import live_publisher
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


@pytest.fixture()
def working(burst):
    """The farm's stages on a thread, as its workers would, while the test asks; interactive
    chunks published as they are made, as a gpu worker publishes them."""
    burst.live = live_publisher(burst.farm.settings)
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            if not burst.drain():
                time.sleep(0.02)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield burst
    stop.set()
    thread.join(timeout=30)
