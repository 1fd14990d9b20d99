"""What the RD runner evaluates: licodec codecs from the registry and classic anchors, behind one interface.

An :class:`EvalCodec` turns an ``(H, W, 3)`` uint8 image into the real bytes a user
would store at one quality setting, and those bytes back into an image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from licodec.errors import LicodecError


@dataclass(frozen=True)
class EvalCodec:
    name: str  # as typed on the command line: a registry name or an anchor name
    label: str  # the curve's name in results and plots
    kind: str  # "licodec" or "classic"
    qualities: tuple[float, ...]  # default sweep

    def version(self) -> str:
        """Identifies the exact encoder: weights hash for licodec, library versions for anchors."""
        if self.kind == "licodec":
            from licodec import api

            return f"weights {api.load(self.name).weights_sha256}"
        from licodec.eval.anchors import get_anchor

        return get_anchor(self.name).version()

    def check_quality(self, quality: float) -> None:
        if self.kind == "licodec":
            from licodec import api

            api.load(self.name).check_quality(quality)
        elif not quality > 0:
            raise LicodecError(f"{self.name}: quality must be positive, got {quality:g}")

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        if self.kind == "licodec":
            from licodec import api
            from licodec.image_io import SourceImage

            return api.compress_bitstream(SourceImage(rgb, channels=3, bit_depth=8), quality, self.name).to_bytes()
        from licodec.eval.anchors import get_anchor

        return get_anchor(self.name).encode(rgb, quality)

    def decode(self, data: bytes) -> np.ndarray:
        if self.kind == "licodec":
            from licodec import api
            from licodec.entropy.container import Bitstream

            return api.decompress_rgb(Bitstream.from_bytes(data))
        from licodec.eval.anchors import get_anchor

        return get_anchor(self.name).decode(data)


def resolve_codec(name: str) -> EvalCodec:
    """A licodec codec (``licodec models``) or a classic anchor (jpeg420, jpeg444, webp, avif, avif444, jpeg2000)."""
    from licodec.eval.anchors import ANCHORS
    from licodec.zoo import list_models

    if name in list_models():
        from licodec import api

        lo, hi = api.load(name).quality_range
        return EvalCodec(name, f"licodec {name}", "licodec", tuple(float(q) for q in range(int(lo), int(hi) + 1)))
    if name in ANCHORS:
        anchor = ANCHORS[name]
        if not anchor.available():
            raise LicodecError(f"{name}: this Pillow build has no {anchor.pil_feature} support")
        return EvalCodec(name, anchor.label, "classic", tuple(float(q) for q in anchor.qualities))
    raise LicodecError(f"unknown codec {name!r} (licodec: {', '.join(list_models())}; "
                       f"classic: {', '.join(ANCHORS)})")
