import pytest

from tests.burst import BurstFarm


@pytest.fixture()
def burst(farm_settings):
    """The farm's stages in this process, messages drained by the test."""
    farm = BurstFarm(farm_settings)
    yield farm
    farm.close()
