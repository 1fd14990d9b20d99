"""A video frame and a video's description: :class:`Frame` (RGB or YUV 4:2:0, the other form made
on request) and :class:`VideoInfo`, shared by :mod:`licodec.video.readers`,
:mod:`licodec.video.writers` and the codec."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from licodec.errors import LicodecError
from licodec.video.color import YUV420, Matrix, rgb_to_yuv420, yuv420_to_rgb

FpsLike = int | float | str | Fraction


@dataclass(frozen=True)
class VideoInfo:
    """What a reader yields (or a writer expects): frame size, rate, count and where it came from.

    ``fps`` is exact (e.g. ``Fraction(30000, 1001)``); ``frames`` is None when the source cannot tell
    without decoding everything; ``source_format`` is a short description such as ``"y4m C420jpeg"``.
    """

    width: int
    height: int
    fps: Fraction
    frames: int | None
    source_format: str


class Frame:
    """One frame, stored as RGB ``(H, W, 3)`` uint8 or as :class:`YUV420`; the other form is made on
    first request and cached. ``native`` says which one the source gave (``"rgb"`` or ``"yuv"``),
    ``matrix`` and ``full_range`` say how to convert between them (:mod:`licodec.video.color`),
    ``index`` is the frame's position in its source (None when built by hand). Arrays read from a
    file may be read-only views of its bytes: copy them before changing them in place.
    """

    __slots__ = ("_rgb", "_yuv", "native", "matrix", "full_range", "index")

    def __init__(
        self,
        *,
        rgb: np.ndarray | None = None,
        yuv: YUV420 | None = None,
        matrix: Matrix = "bt601",
        full_range: bool = False,
        index: int | None = None,
    ) -> None:
        if (rgb is None) == (yuv is None):
            raise LicodecError("a Frame is built from exactly one of rgb= or yuv=")
        if rgb is not None and (
            not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3
        ):
            raise LicodecError("Frame rgb must be an (H, W, 3) uint8 array")
        if yuv is not None and not isinstance(yuv, YUV420):
            raise LicodecError("Frame yuv must be a YUV420")
        self._rgb, self._yuv = rgb, yuv
        self.native: Literal["rgb", "yuv"] = "rgb" if rgb is not None else "yuv"
        self.matrix, self.full_range, self.index = matrix, full_range, index

    @property
    def height(self) -> int:
        return self._rgb.shape[0] if self._rgb is not None else self._yuv.height

    @property
    def width(self) -> int:
        return self._rgb.shape[1] if self._rgb is not None else self._yuv.width

    def rgb(self) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB."""
        if self._rgb is None:
            self._rgb = yuv420_to_rgb(self._yuv, self.matrix, self.full_range)
        return self._rgb

    def yuv(self) -> YUV420:
        """:class:`YUV420` planes, 8-bit."""
        if self._yuv is None:
            self._yuv = rgb_to_yuv420(self._rgb, self.matrix, self.full_range)
        return self._yuv

    def __repr__(self) -> str:
        return f"Frame({self.width}x{self.height}, native={self.native}, index={self.index})"


# ----------------------------------------------------------------------------- checks


def fps_fraction(fps: FpsLike, name: str) -> Fraction:
    """An exact positive frame rate; floats near an NTSC rate (n*1000/1001) snap to it."""
    try:
        if isinstance(fps, float):
            ntsc = round(fps * 1.001)
            if abs(fps - round(fps)) > 0.005 and abs(fps - ntsc * 1000 / 1001) < 0.005:
                value = Fraction(ntsc * 1000, 1001)
            else:
                value = Fraction(fps).limit_denominator(1000)
        else:
            value = Fraction(fps)
    except (ValueError, ZeroDivisionError, TypeError):
        raise LicodecError(f"{name}: frame rate {fps!r} is not a number") from None
    if value <= 0:
        raise LicodecError(f"{name}: frame rate {fps!r} must be positive")
    return value


def check_size(size, name: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise LicodecError(f"{name}: size must be (width, height), got {size!r}") from None
    if width <= 0 or height <= 0:
        raise LicodecError(f"{name}: size {width}x{height} must be positive")
    return width, height
