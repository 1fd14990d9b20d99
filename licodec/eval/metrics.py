"""Distortion metrics on 8-bit images."""

from __future__ import annotations

import math

import numpy as np


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two uint8 arrays of the same shape, on the 0-255 scale."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(d * d))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all samples (RGB PSNR for ``(H, W, 3)`` arrays); inf when equal."""
    m = mse(a, b)
    return math.inf if m == 0 else 10 * math.log10(peak * peak / m)
