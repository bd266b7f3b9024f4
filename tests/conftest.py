from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings
from tests.checkpoints import build_orpheus, build_snac


@pytest.fixture(scope="session")
def orpheus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orpheus(tmp_path_factory.mktemp("orpheus"))


@pytest.fixture(scope="session")
def snac_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_snac(tmp_path_factory.mktemp("snac"))


@pytest.fixture()
def orpheus_settings(orpheus_dir: Path, snac_dir: Path) -> Settings:
    """Settings for the tiny checkpoints, with short chunks so that tests stay quick."""
    return Settings.model_validate(
        {
            "engine": "orpheus",
            "chunking": {"max_chars": 80},
            "orpheus": {
                "model": str(orpheus_dir),
                "snac_model": str(snac_dir),
                "tokens_per_char": 0.5,
                "min_tokens": 14,
                "max_tokens": 140,
            },
        }
    )


@pytest.fixture()
def orpheus_env(orpheus_settings: Settings) -> dict[str, str]:
    """The same settings as LYRE_* variables, for the CLI in a subprocess."""
    o = orpheus_settings.orpheus
    return {
        "LYRE_ENGINE": "orpheus",
        "LYRE_CHUNKING__MAX_CHARS": "80",
        "LYRE_ORPHEUS__MODEL": o.model,
        "LYRE_ORPHEUS__SNAC_MODEL": o.snac_model,
        "LYRE_ORPHEUS__TOKENS_PER_CHAR": str(o.tokens_per_char),
        "LYRE_ORPHEUS__MIN_TOKENS": str(o.min_tokens),
        "LYRE_ORPHEUS__MAX_TOKENS": str(o.max_tokens),
    }
