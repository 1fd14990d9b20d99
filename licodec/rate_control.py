"""Target size: find the quality whose file lands on a requested size.

The file size of a variable-rate codec grows with its continuous quality, so a bracketed
search over quality finds a target: each trial is a real encode, and sizes are the whole
``.lic`` file's bytes (header and every sub-stream), the number a user sees. The search
interpolates in log size between the bracketing trials (regula falsi, safeguarded by
bisection) and stops within ``tolerance`` of the target. When the target lies between two
sizes the model can write (tiny images: one quality step moves many percent) it returns the
nearest it found, and says so; a target outside what the model reaches for this image is an
error that names the reachable range.

Sizes on the command line: ``40000``, ``40k`` / ``40kb`` (x1000), ``40kib`` (x1024),
``2m`` / ``2mb`` (x10^6), ``2mib`` (x2^20).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from licodec.errors import LicodecError

TOLERANCE = 0.03  # relative distance to the target that counts as landing on it
MAX_TRIALS = 16
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 10**6, "mb": 10**6, "mib": 1 << 20}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """``"40k"`` -> 40000 bytes (units in the module docstring)."""
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise LicodecError(f"cannot read the size {text!r}; write bytes such as 40000, 40k, 40kib or 1.5m")
    value = round(float(m.group(1)) * _UNITS[unit])
    if value < 1:
        raise LicodecError(f"target size must be at least 1 byte, got {text!r}")
    return value


@dataclass(frozen=True)
class TargetResult:
    """How a target-size search ended: the chosen ``quality``, its ``size`` in bytes, the
    ``target`` in bytes, whether it landed within the tolerance, and the number of encodes."""

    quality: float
    size: int
    target: int
    landed: bool
    trials: int

    @property
    def error(self) -> float:
        """Relative distance of the size to the target (0.02 = 2% over)."""
        return self.size / self.target - 1

    def describe(self, pixels: int) -> str:
        bpp = 8 * self.size / pixels
        where = (f"within {TOLERANCE:.0%} of" if self.landed
                 else "the nearest size this model reaches for this image to")
        return (f"quality {self.quality:.3f}: {self.size:,} bytes ({bpp:.4f} bpp), {self.error:+.1%}, "
                f"{where} the target {self.target:,} bytes ({8 * self.target / pixels:.4f} bpp); {self.trials} encodes")


def search_quality(encode: Callable[[float], bytes], target: int, quality_range: tuple[float, float],
                   tolerance: float = TOLERANCE, max_trials: int = MAX_TRIALS,
                   integer: bool = False) -> tuple[bytes, TargetResult]:
    """The encoding whose size is nearest ``target`` bytes, searching quality in ``quality_range``
    (only its integers with ``integer``: codecs whose qualities are discrete rungs).

    ``encode(quality) -> bytes`` is called at most ``max_trials`` times. Raises
    :class:`LicodecError` when the target is outside the sizes of the range's two ends."""
    lo, hi = quality_range
    tried: dict[float, bytes] = {}

    def trial(q: float) -> int:
        if q not in tried:
            tried[q] = encode(q)
        return len(tried[q])

    def result(q: float, landed: bool) -> tuple[bytes, TargetResult]:
        return tried[q], TargetResult(q, len(tried[q]), target, landed, len(tried))

    def close(size: int) -> bool:
        return abs(size / target - 1) <= tolerance

    s_lo = trial(lo)
    if close(s_lo):
        return result(lo, True)
    if s_lo > target:
        raise LicodecError(f"target {target:,} bytes is below the smallest file this model writes for this "
                           f"image ({s_lo:,} bytes at quality {lo:g}); ask for more, or use a smaller image")
    s_hi = trial(hi)
    if close(s_hi):
        return result(hi, True)
    if s_hi < target:
        raise LicodecError(f"target {target:,} bytes is above the largest file this model writes for this "
                           f"image ({s_hi:,} bytes at quality {hi:g}); ask for less")
    log_t = math.log(target)
    while len(tried) < max_trials and hi - lo > (1 if integer else 1e-3):
        # interpolate in log size, but never closer than 10% of the bracket to its ends
        t = (log_t - math.log(s_lo)) / (math.log(s_hi) - math.log(s_lo))
        q = lo + min(max(t, 0.1), 0.9) * (hi - lo)
        if integer:
            q = float(min(max(round(q), lo + 1), hi - 1))
        s = trial(q)
        if close(s):
            return result(q, True)
        if s < target:
            lo, s_lo = q, s
        else:
            hi, s_hi = q, s
    nearest = min(tried, key=lambda q: abs(math.log(len(tried[q]) / target)))
    return result(nearest, close(len(tried[nearest])))
