"""What this CPU computes natively: bf16 autocast pays only where it does."""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=None)
def native_bf16() -> bool:
    """True where this CPU computes bf16 natively (oneDNN's check: AVX-512 BF16 or AMX).

    Elsewhere autocast emulates it: on a 2-core AVX2 AMD EPYC, a 1024^2 bf16 matmul ran at
    0.86 GFLOP/s against 70 in fp32, and a ``vqgan-flow`` training step took 10 s against
    1.3 s in fp32. Training (``licodec train`` without ``--bf16``) and encode-time refinement
    (:mod:`licodec.codec.refine`) use bf16 only where this is True.
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
