"""Where weights come from: a local directory, or a hub id resolved through the HF cache."""

from __future__ import annotations

from pathlib import Path

from shared.infra.settings import ORPHEUS_HUB_ID, OrpheusSettings

# Only what inference reads: skips optimizer states and duplicate formats in the repos
# (``model.bin``: a CTranslate2 model's weights, Whisper's for the transcription check).
_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "pytorch_model.bin", "model.bin"]


class ModelNotFound(Exception):
    """The model is neither a local directory nor in the local hub cache."""


def locate_model(name_or_path: str, download: bool = False) -> str:
    """Return a local directory holding ``name_or_path``, downloading it only if asked."""
    if Path(name_or_path).is_dir():
        return str(name_or_path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return snapshot_download(
            name_or_path, allow_patterns=_PATTERNS, local_files_only=not download
        )
    except LocalEntryNotFoundError as exc:
        if download:
            reason = f"cannot download model {name_or_path!r}: the hub is unreachable"
        else:
            reason = (
                f"model {name_or_path!r} is not available locally "
                "(run `lyre models pull`, or name a local directory)"
            )
        raise ModelNotFound(reason) from exc
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot fetch model {name_or_path!r}: {exc}") from exc


def orpheus_configured(settings: OrpheusSettings) -> bool:
    """True when Orpheus weights are named in settings or already in the hub cache."""
    if settings.model:
        return True
    try:
        locate_model(ORPHEUS_HUB_ID)
    except ModelNotFound:
        return False
    return True


def pull_models(settings: OrpheusSettings) -> list[str]:
    """Download Orpheus and SNAC into the hub cache; return their local directories."""
    return [
        locate_model(settings.model or ORPHEUS_HUB_ID, download=True),
        locate_model(settings.snac_model, download=True),
    ]
