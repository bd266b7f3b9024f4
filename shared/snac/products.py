"""The tiled decoder's matrix products, in the narrowest precision this CPU multiplies fastest:
bf16 with AVX512-BF16 (oneDNN), 12-bit integers with AVX2 alone (``shared.snac.int16_gemm``),
else fp32."""

from __future__ import annotations

from typing import Any, Literal

import torch

from shared.infra.settings import UnsupportedSetting
from shared.snac import int16_gemm

Precision = Literal["bf16", "int16", "fp32"]


def fastest_precision() -> Precision:
    """The matrix products' precision this CPU runs fastest at 30 dB or better."""
    if torch.cpu._is_avx512_bf16_supported():
        return "bf16"
    # with AVX-512, fp32 FMAs are as wide as AVX2's integer multiply-adds: int16 gains nothing
    avx2_only = torch.backends.cpu.get_cpu_capability() == "AVX2"
    return "int16" if avx2_only and int16_gemm.supported() else "fp32"


def check_runs_here(precision: Precision) -> None:
    """Raise ``UnsupportedSetting`` where products in ``precision`` cannot run on this CPU."""
    if precision == "int16" and not int16_gemm.supported():
        raise UnsupportedSetting(
            "LYRE_ORPHEUS__SNAC_PRODUCTS=int16 needs an x86 CPU with AVX2 and Numba "
            "compiling for it (NUMBA_CPU_NAME unset); use auto"
        )


class Matrix:
    """A layer's (K, N) weights for ``x @ weight`` products in one precision.

    ``operand(x)`` converts fp32 rows once (bf16, or quantised rows for int16) so that one input
    can feed several products; ``accumulate`` adds a product into an fp32 ``out``.
    """

    def __init__(self, weight: torch.Tensor, precision: Precision) -> None:
        self.precision = precision
        if precision == "int16":
            self.weight: Any = int16_gemm.Int16Weights(weight.float())
            self.nbytes = self.weight.packed.nbytes
        else:
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            self.weight = weight.to(dtype).contiguous()
            self.nbytes = self.weight.nbytes

    def operand(self, x: torch.Tensor) -> Any:
        if self.precision == "int16":
            return int16_gemm.Int16Operand.quantise(x)
        return x.to(torch.bfloat16) if self.precision == "bf16" else x

    def accumulate(self, x: Any, out: torch.Tensor) -> torch.Tensor:
        """``out += x @ weight`` for an ``operand``; ``out`` is fp32."""
        if self.precision == "int16":
            return self.weight.accumulate(x, out)
        if self.precision == "bf16":  # two passes beat one mixed-dtype add
            return out.add_((x @ self.weight).float())
        return out.addmm_(x, self.weight)

    def product(self, x: Any) -> torch.Tensor:
        """``x @ weight`` as a new tensor."""
        if self.precision == "int16":
            return self.weight.accumulate(x, torch.zeros(x.rows, self.weight.shape[1]))
        return x @ self.weight  # bf16 stays bf16: the caller's add takes it as it is
