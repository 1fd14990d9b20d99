"""Distortion metrics on 8-bit images: MSE, PSNR on RGB and on luma (Y).

Perceptual metrics (MS-SSIM, HaarPSI, LPIPS, DISTS) live in :mod:`licodec.eval.perceptual`.
"""

from __future__ import annotations

import math

import numpy as np

# ITU-R BT.601 luma weights, as in JPEG's full-range YCbCr (and CompressAI's "psnr-y").
_BT601 = np.array([0.299, 0.587, 0.114])


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two uint8 arrays of the same shape, on the 0-255 scale."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(d * d))


def _db(m: float, peak: float) -> float:
    return math.inf if m == 0 else 10 * math.log10(peak * peak / m)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all samples (RGB PSNR for ``(H, W, 3)`` arrays); inf when equal."""
    return _db(mse(a, b), peak)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Full-range BT.601 luma of an ``(H, W, 3)`` uint8 image as float64 on 0-255 (not rounded)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"luma needs an (H, W, 3) image, got {rgb.shape}")
    return rgb.astype(np.float64) @ _BT601


def psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of the BT.601 luma of two ``(H, W, 3)`` uint8 images; inf when equal."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    d = luma(a) - luma(b)
    return _db(float(np.mean(d * d)), 255.0)
