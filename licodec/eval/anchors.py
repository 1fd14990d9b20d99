"""Classic codecs as anchors, through Pillow's encoders, measured on the same images in the same run.

Each anchor encodes an ``(H, W, 3)`` uint8 image to real bytes at one setting of its
quality knob and decodes them back; bpp comes from those bytes. The knob is the
encoder's own: 0-100 quality for JPEG, WebP and AVIF (higher is better), and the
compression ratio for JPEG 2000 (higher is *smaller*).

Settings: JPEG with optimized Huffman tables; WebP at ``method=6`` (slowest, best);
AVIF (libavif through Pillow) at ``speed=4``; JPEG 2000 (OpenJPEG) with the 9/7 wavelet,
the colour transform (``mct=1``) and a bare codestream (no JP2 box overhead).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, features

from licodec.errors import LicodecError


@dataclass(frozen=True)
class ClassicCodec:
    """One Pillow encoder configuration; ``qualities`` is its default sweep, smallest files first."""

    name: str
    label: str
    pil_format: str
    pil_feature: str  # Pillow feature that must be available (PIL.features.check)
    knob: str  # the save() argument the sweep sets
    qualities: tuple[float, ...]
    options: dict = field(default_factory=dict)
    knob_range: tuple[float, float] = (0, 100)  # the settings the encoder accepts (inclusive)
    lowest: float = 0  # the setting that gives the smallest files

    def check_quality(self, quality: float) -> None:
        lo, hi = self.knob_range
        if not lo <= quality <= hi:
            raise LicodecError(f"{self.name}: {self.knob} must be from {lo:g} to {hi:g}, got {quality:g}")

    def available(self) -> bool:
        return bool(features.check(self.pil_feature))

    def version(self) -> str:
        import PIL

        lib = features.version(self.pil_feature) or "?"
        opts = " ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"Pillow {PIL.__version__} {self.pil_feature} {lib} ({self.knob} sweep; {opts})"

    def _knob_value(self, quality: float):
        if self.knob == "quality_layers":
            return [float(quality)]
        return int(round(quality))

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        if not self.available():
            raise LicodecError(f"{self.name}: this Pillow has no {self.pil_feature} support")
        self.check_quality(quality)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=self.pil_format, **{self.knob: self._knob_value(quality)},
                                  **self.options)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))


_JPEG_Q = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)

ANCHORS: dict[str, ClassicCodec] = {c.name: c for c in (
    ClassicCodec("jpeg420", "JPEG 4:2:0", "JPEG", "jpg", "quality", _JPEG_Q, {"subsampling": 2, "optimize": True},
                 knob_range=(1, 100), lowest=1),
    ClassicCodec("jpeg444", "JPEG 4:4:4", "JPEG", "jpg", "quality", _JPEG_Q, {"subsampling": 0, "optimize": True},
                 knob_range=(1, 100), lowest=1),
    ClassicCodec("webp", "WebP", "WEBP", "webp", "quality", (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
                 {"method": 6}),
    ClassicCodec("avif", "AVIF 4:2:0", "AVIF", "avif", "quality", (5, 15, 25, 35, 45, 55, 65, 75, 85, 92),
                 {"speed": 4, "subsampling": "4:2:0"}),
    ClassicCodec("avif444", "AVIF 4:4:4", "AVIF", "avif", "quality", (5, 15, 25, 35, 45, 55, 65, 75, 85, 92),
                 {"speed": 4, "subsampling": "4:4:4"}),
    ClassicCodec("jpeg2000", "JPEG 2000", "JPEG2000", "jpg_2000", "quality_layers",
                 (200, 150, 100, 70, 50, 35, 25, 18, 12, 8),
                 {"quality_mode": "rates", "irreversible": True, "mct": 1, "no_jp2": True},
                 knob_range=(1, 10000), lowest=10000),
)}


def get_anchor(name: str) -> ClassicCodec:
    try:
        return ANCHORS[name]
    except KeyError:
        raise LicodecError(f"unknown classic codec {name!r} (known: {', '.join(ANCHORS)})") from None
