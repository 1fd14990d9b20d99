"""RGB <-> YUV 4:2:0 (8-bit) conversion and the YUV PSNR of video coding papers.

Conventions (the same in both directions, so a round trip is self-consistent):

- **Matrix**: BT.601 by default (what ffmpeg uses for ``yuv420p`` when it converts PNG
  frames, and what the HEVC test sequences were made with); ``matrix="bt709"`` for HD material.
- **Range**: limited ("TV") by default: Y in [16, 235], U and V in [16, 240], so black is
  ``(16, 128, 128)`` and white ``(235, 128, 128)``; ``full_range=True`` uses [0, 255] for all three.
- **Chroma**: downsampling averages each 2x2 block (odd sizes: the last row or column is
  replicated); upsampling is nearest (each chroma sample covers its 2x2 block), which is what
  ffmpeg's default yuv420p -> RGB conversion does. The pair makes YUV -> RGB -> YUV lossless up to
  rounding and clipping (about 60 dB on the HEVC sequences, against 47 dB in chroma with bilinear
  upsampling), so an RGB codec scored in YUV is not charged for the conversion. Both filters treat
  chroma as centred on its block (JPEG / MPEG-1 siting, y4m ``C420jpeg``); MPEG-2 ("left") sited
  material such as the HEVC test sequences goes through the same filters.
- Arithmetic in float64, rounded to nearest (halves up) and clipped to [0, 255].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from licodec.errors import LicodecError

Matrix = Literal["bt601", "bt709"]

# (Kr, Kb) luma weights of red and blue; green's is 1 - Kr - Kb.
_LUMA_WEIGHTS: dict[str, tuple[float, float]] = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}

PSNR_CAP_DB = 100.0
"""PSNR of identical planes: the MSE is floored at ``255**2 * 10**-10`` so the value stays finite."""


@dataclass(frozen=True)
class YUV420:
    """Planar YUV 4:2:0, 8-bit: ``y`` ``(H, W)``, ``u`` and ``v`` ``(ceil(H/2), ceil(W/2))``, all uint8."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        for name in ("y", "u", "v"):
            plane = getattr(self, name)
            if not isinstance(plane, np.ndarray) or plane.dtype != np.uint8 or plane.ndim != 2:
                raise LicodecError(f"YUV420 plane {name} must be a 2-D uint8 array")
        chroma = chroma_shape(*self.y.shape)
        if self.u.shape != chroma or self.v.shape != chroma:
            raise LicodecError(
                f"YUV420 chroma planes are {self.u.shape} and {self.v.shape}; "
                f"a {self.y.shape} luma plane needs {chroma}"
            )

    @property
    def height(self) -> int:
        return self.y.shape[0]

    @property
    def width(self) -> int:
        return self.y.shape[1]

    def tobytes(self) -> bytes:
        """I420 layout: all of Y, then U, then V."""
        return self.y.tobytes() + self.u.tobytes() + self.v.tobytes()

    @classmethod
    def frombytes(cls, data: bytes, width: int, height: int) -> YUV420:
        """Inverse of :meth:`tobytes`; ``data`` must be exactly :func:`frame_bytes` long."""
        ch, cw = chroma_shape(height, width)
        if len(data) != frame_bytes(width, height):
            expected = frame_bytes(width, height)
            raise LicodecError(f"an I420 frame of {width}x{height} is {expected} bytes, got {len(data)}")
        buf = np.frombuffer(data, dtype=np.uint8)
        y_end, u_end = width * height, width * height + ch * cw
        return cls(buf[:y_end].reshape(height, width), buf[y_end:u_end].reshape(ch, cw), buf[u_end:].reshape(ch, cw))


def chroma_shape(height: int, width: int) -> tuple[int, int]:
    """Shape of a 4:2:0 chroma plane for a ``height`` x ``width`` luma plane."""
    return (height + 1) // 2, (width + 1) // 2


def frame_bytes(width: int, height: int) -> int:
    """Bytes of one 8-bit I420 frame: ``W*H + 2*ceil(W/2)*ceil(H/2)``."""
    ch, cw = chroma_shape(height, width)
    return width * height + 2 * ch * cw


def _weights(matrix: str) -> tuple[float, float, float]:
    if matrix not in _LUMA_WEIGHTS:
        raise LicodecError(f"unknown colour matrix {matrix!r}; use 'bt601' or 'bt709'")
    kr, kb = _LUMA_WEIGHTS[matrix]
    return kr, 1.0 - kr - kb, kb


def _ranges(full_range: bool) -> tuple[float, float, float]:
    """(luma offset, luma excursion, chroma excursion) in 8-bit code values."""
    return (0.0, 255.0, 255.0) if full_range else (16.0, 219.0, 224.0)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def _downsample_2x2(plane: np.ndarray) -> np.ndarray:
    """Mean of each 2x2 block of a float ``(H, W)`` plane; odd sizes replicate the last row/column."""
    h, w = plane.shape
    padded = np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")
    return 0.25 * (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2])


def _upsample(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Chroma ``(ceil(H/2), ceil(W/2))`` -> ``(H, W)`` float64, nearest (each sample fills its 2x2 block)."""
    return np.repeat(np.repeat(plane.astype(np.float64), 2, axis=0), 2, axis=1)[:height, :width]


def rgb_to_yuv420(rgb: np.ndarray, matrix: Matrix = "bt601", full_range: bool = False) -> YUV420:
    """``(H, W, 3)`` uint8 RGB -> :class:`YUV420` (see the module docstring for the conventions)."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise LicodecError("RGB frames must be (H, W, 3) uint8 arrays")
    kr, kg, kb = _weights(matrix)
    y_off, y_scale, c_scale = _ranges(full_range)
    rgb01 = rgb.astype(np.float64) / 255.0
    r, g, b = rgb01[..., 0], rgb01[..., 1], rgb01[..., 2]
    luma = kr * r + kg * g + kb * b  # [0, 1]
    cb = (b - luma) / (2.0 * (1.0 - kb))  # [-1/2, 1/2]
    cr = (r - luma) / (2.0 * (1.0 - kr))
    return YUV420(
        y=_to_uint8(y_off + y_scale * luma),
        u=_to_uint8(128.0 + c_scale * _downsample_2x2(cb)),
        v=_to_uint8(128.0 + c_scale * _downsample_2x2(cr)),
    )


def yuv420_to_rgb(yuv: YUV420, matrix: Matrix = "bt601", full_range: bool = False) -> np.ndarray:
    """:class:`YUV420` -> ``(H, W, 3)`` uint8 RGB: the inverse matrix of :func:`rgb_to_yuv420`, nearest chroma."""
    kr, kg, kb = _weights(matrix)
    y_off, y_scale, c_scale = _ranges(full_range)
    h, w = yuv.y.shape
    luma = (yuv.y.astype(np.float64) - y_off) / y_scale
    cb = (_upsample(yuv.u, h, w) - 128.0) / c_scale
    cr = (_upsample(yuv.v, h, w) - 128.0) / c_scale
    r = luma + 2.0 * (1.0 - kr) * cr
    b = luma + 2.0 * (1.0 - kb) * cb
    g = (luma - kr * r - kb * b) / kg
    return _to_uint8(255.0 * np.stack([r, g, b], axis=-1))


def plane_psnr(ref: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of two same-shaped 8-bit planes (peak 255), capped at :data:`PSNR_CAP_DB`."""
    mse = float(np.mean((ref.astype(np.float64) - test.astype(np.float64)) ** 2))
    floor = 255.0**2 * 10.0 ** (-PSNR_CAP_DB / 10.0)
    return 10.0 * math.log10(255.0**2 / max(mse, floor))


def yuv420_psnr(ref: YUV420, test: YUV420) -> dict[str, float]:
    """Per-plane PSNR of one frame and their weighted mean ``psnr_yuv = (6 Y + U + V) / 8``.

    The weighting is the usual one of learned video coding test conditions (DCVC and the HEVC CTC
    reports): it averages the per-plane PSNRs, not the MSEs. Each PSNR has peak 255 and is capped at
    :data:`PSNR_CAP_DB` (identical planes). For a sequence, average these per-frame values.
    Returns ``{"psnr_y", "psnr_u", "psnr_v", "psnr_yuv"}`` in dB.
    """
    if ref.y.shape != test.y.shape:
        (rh, rw), (th, tw) = ref.y.shape, test.y.shape
        raise LicodecError(f"cannot compare frames of different sizes: {rw}x{rh} and {tw}x{th}")
    scores = {f"psnr_{name}": plane_psnr(getattr(ref, name), getattr(test, name)) for name in ("y", "u", "v")}
    scores["psnr_yuv"] = (6.0 * scores["psnr_y"] + scores["psnr_u"] + scores["psnr_v"]) / 8.0
    return scores
