"""SNAC decode: a chunk's codes to PCM in one call, with noise seeded per chunk.

SNAC's ``NoiseBlock`` draws ``torch.randn`` from the global generator, so two decodes of the
same codes differ and concurrent decodes would race for one seed. Each noise block is replaced
by one that takes its noise from the current thread's :class:`~shared.snac.noise.KeyedNoise`,
seeded per chunk and keyed by position: a chunk decoded as its frames arrive gets the same
samples as the chunk decoded whole (``shared.snac.stream``).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from shared.infra.settings import DecoderPath, OrpheusSettings, ProductPrecision
from shared.snac.noise import KeyedNoise
from shared.speech.codec import SnacCodes
from shared.speech.weights import locate_model

_noise = threading.local()

# hubertsiuzdak/snac_24khz's config.json (docs/orpheus.md): build the architecture without weights.
SNAC_24KHZ_CONFIG = {
    "sampling_rate": 24000,
    "encoder_dim": 48,
    "encoder_rates": [2, 4, 8, 8],
    "decoder_dim": 1024,
    "decoder_rates": [8, 8, 4, 2],
    "attn_window_size": None,
    "codebook_size": 4096,
    "codebook_dim": 8,
    "vq_strides": [4, 2, 1],
    "noise": True,
    "depthwise": True,
}


class SeededNoise(nn.Module):
    """SNAC's NoiseBlock, its noise from the calling thread's :class:`KeyedNoise`."""

    def __init__(self, linear: nn.Module) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, length = x.shape
        keyed: KeyedNoise | None = getattr(_noise, "keyed", None)
        if keyed is None:  # outside a decode of Lyre's: SNAC's own draw
            noise = torch.randn((batch, 1, length), device=x.device, dtype=x.dtype)
        else:
            noise = keyed.draw(length).to(x.device, x.dtype).expand(batch, 1, length)
        return x + noise * self.linear(x)


@contextmanager
def seeded_noise(keyed: KeyedNoise):
    _noise.keyed = keyed
    try:
        yield
    finally:
        _noise.keyed = None


def prepare_for_inference(model: nn.Module) -> nn.Module:
    """Fold weight norm into plain weights and make the noise seedable."""
    from snac.layers import NoiseBlock

    for module in list(model.modules()):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, NoiseBlock):
                setattr(parent, name, SeededNoise(child.linear))
    return model.eval()


class SnacDecoder:
    """Codes to PCM. On the CPU the tiled decoder runs (``path="tiled"``, the default); the
    plain path is the stock model with weight norm folded, for GPUs and for comparison."""

    def __init__(
        self,
        model: nn.Module,
        device: str = "cpu",
        path: DecoderPath = "tiled",
        products: ProductPrecision = "auto",
    ) -> None:
        from shared.snac.tiled import TiledSnacDecoder

        self.device = torch.device(device)
        self.model: Any = prepare_for_inference(model).to(self.device)
        tiled = path == "tiled" and self.device.type == "cpu"
        precision = None if products == "auto" else products
        self.tiled = TiledSnacDecoder(self.model, precision) if tiled else None

    @classmethod
    def load(
        cls,
        name_or_path: str,
        device: str = "cpu",
        path: DecoderPath = "tiled",
        products: ProductPrecision = "auto",
    ) -> SnacDecoder:
        from snac import SNAC

        return cls(SNAC.from_pretrained(locate_model(name_or_path)), device, path, products)

    @classmethod
    def from_settings(cls, settings: OrpheusSettings) -> SnacDecoder:
        return cls.load(
            settings.snac_model, settings.device, settings.snac_decoder, settings.snac_products
        )

    def decode(self, codes: SnacCodes, seed: int) -> np.ndarray:
        """Return float32 mono PCM for ``codes``; the same codes and seed give the same samples
        (and the same as ``shared.snac.stream`` gives them decoded as they arrive)."""
        if codes.frames == 0:
            return np.zeros(0, np.float32)
        levels = [torch.from_numpy(level).to(self.device).unsqueeze(0) for level in codes.levels]
        keyed = KeyedNoise(seed)
        if self.tiled is not None:
            return self.tiled.decode(levels, keyed).numpy()  # ends in tanh: within ±1
        with torch.inference_mode(), seeded_noise(keyed):
            audio = self.model.decode(levels)
        return audio.reshape(-1).float().clamp(-1, 1).cpu().numpy()
