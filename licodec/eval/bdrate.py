"""Bjøntegaard delta rate and PSNR (VCEG-M33; pchip variant as in VCEG-AL22 / JVET common test conditions).

Rates are compared in the log domain: the curves ``log(rate)`` against distortion are
interpolated (piecewise cubic Hermite by default; Akima or the classic cubic polynomial
on request) and integrated over the distortion range both curves cover.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

from licodec.errors import LicodecError

METHODS = ("pchip", "akima", "cubic")


def _curve(rate, dist, name: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64).ravel()
    d = np.asarray(dist, dtype=np.float64).ravel()
    if r.size != d.size:
        raise LicodecError(f"curve {name}: {r.size} rates but {d.size} distortions")
    if r.size < 2:
        raise LicodecError(f"curve {name} needs at least 2 points, has {r.size}")
    if not (np.isfinite(r).all() and np.isfinite(d).all()) or (r <= 0).any():
        raise LicodecError(f"curve {name} has non-finite or non-positive values")
    order = np.argsort(r)
    r, d = r[order], d[order]
    if (np.diff(d) <= 0).any() or (np.diff(r) <= 0).any():
        raise LicodecError(f"curve {name} is not monotonic (quality must rise with rate)")
    return np.log(r), d


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    if method == "pchip":
        return float(PchipInterpolator(x, y).integrate(lo, hi))
    if method == "akima":
        if x.size < 3:
            return float(PchipInterpolator(x, y).integrate(lo, hi))
        return float(Akima1DInterpolator(x, y).integrate(lo, hi))
    if method == "cubic":
        deg = min(3, x.size - 1)
        p = np.polyint(np.polyfit(x, y, deg))
        return float(np.polyval(p, hi) - np.polyval(p, lo))
    raise LicodecError(f"unknown BD method {method!r} (choose from {', '.join(METHODS)})")


def _overlap(a: np.ndarray, b: np.ndarray, what: str) -> tuple[float, float]:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if hi <= lo:
        raise LicodecError(f"the curves do not overlap in {what}")
    if (hi - lo) < 0.25 * min(np.ptp(a), np.ptp(b)):
        warnings.warn(f"the curves overlap over only {hi - lo:.3g} of {what}; the BD figure is unreliable",
                      stacklevel=3)
    return lo, hi


def bd_rate(rate_a, dist_a, rate_b, dist_b, method: str = "pchip") -> float:
    """Average rate difference of curve B against anchor A at equal distortion, in percent.

    Negative means B needs fewer bits. Rates in any unit (bpp), distortion in dB.
    """
    la, da = _curve(rate_a, dist_a, "A")
    lb, db = _curve(rate_b, dist_b, "B")
    lo, hi = _overlap(da, db, "distortion")
    avg = (_integral(db, lb, lo, hi, method) - _integral(da, la, lo, hi, method)) / (hi - lo)
    return (math.exp(avg) - 1) * 100


def bd_psnr(rate_a, dist_a, rate_b, dist_b, method: str = "pchip") -> float:
    """Average distortion difference (dB) of curve B against anchor A at equal rate; positive is better."""
    la, da = _curve(rate_a, dist_a, "A")
    lb, db = _curve(rate_b, dist_b, "B")
    lo, hi = _overlap(la, lb, "log rate")
    return (_integral(lb, db, lo, hi, method) - _integral(la, da, lo, hi, method)) / (hi - lo)
