"""The codec protocol every licodec codec follows, and the geometry helpers it uses.

* ``forward(x, quality)`` (training) returns a :class:`CodecOutput`.
* ``compress(x, quality) -> Bitstream`` and ``decompress(bitstream) -> Tensor``.
* The codec owns its geometry: inputs of any size are padded to its stride inside,
  outputs cropped back; callers never pad.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor


class StoredConfig:
    """Mixin of the frozen config dataclasses stored beside the weights (``config.json``):
    :meth:`to_dict` for the file, :meth:`from_dict` to read it back (keys the class does not
    know are ignored, so that an older package reads a newer file's known fields)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def checked_quality(quality, lo: float, hi: float) -> float:
    """``quality`` as a float if it is a number in ``[lo, hi]``, else :class:`LicodecError`."""
    from licodec.errors import LicodecError

    try:
        q = float(quality)
    except (TypeError, ValueError):
        q = math.nan
    if math.isnan(q) or not lo <= q <= hi:
        raise LicodecError(f"quality must be between {lo:g} and {hi:g}, got {quality}")
    return q


class GeometricQualities:
    """Mixin of the codecs whose config has ``num_qualities``, ``lambda_min`` and ``lambda_max``:
    qualities 1..Q (real numbers between interpolate), lambda geometric in quality."""

    @property
    def quality_range(self) -> tuple[float, float]:
        return 1.0, float(self.config.num_qualities)

    def lambda_for_quality(self, q: float) -> float:
        c = self.config
        return geometric_lambda(q, c.num_qualities, c.lambda_min, c.lambda_max)

    def check_quality(self, quality) -> float:
        return checked_quality(quality, *self.quality_range)


@dataclass
class CodecOutput:
    """What ``forward`` returns during training.

    x_hat: reconstruction, ``(B, 3, H, W)``, nominally in [0, 1] (not clamped).
    likelihoods: per-latent likelihoods, name -> tensor of that latent's shape, in (0, 1].
    bits: estimated bits per image, ``(B,)``, the sum of ``-log2`` likelihoods.
    features: intermediate features by name, only when asked for (distillation).
    """

    x_hat: Tensor
    likelihoods: dict
    bits: Tensor
    features: dict = field(default_factory=dict)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad ``(B, C, H, W)`` on the right and bottom, replicating edges, to a multiple.

    Returns the padded tensor and the original ``(H, W)``.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


def crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    return x[..., : size[0], : size[1]]


def tiles(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Row-major tiles ``(top, left, h, w)`` covering the image; one tile if ``tile <= 0``."""
    if tile <= 0 or (height <= tile and width <= tile):
        return [(0, 0, height, width)]
    return [
        (top, left, min(tile, height - top), min(tile, width - left))
        for top in range(0, height, tile)
        for left in range(0, width, tile)
    ]


def quality_tensor(quality, batch: int) -> Tensor:
    q = torch.as_tensor(quality, dtype=torch.float32)
    if q.ndim == 0:
        q = q.expand(batch)
    return q


def geometric_lambda(q: float, num_qualities: int, lambda_min: float, lambda_max: float) -> float:
    """The rate-distortion trade-off of quality ``q`` in [1, num_qualities]: geometric from
    ``lambda_min`` (quality 1) to ``lambda_max`` (the top quality)."""
    t = (q - 1) / max(num_qualities - 1, 1)
    return math.exp(math.log(lambda_min) + t * (math.log(lambda_max) - math.log(lambda_min)))


def interpolated_gains(quality: Tensor, log_gain: Tensor, log_inv_gain: Tensor,
                       dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """Gain and inverse gain ``(B, C, 1, 1)`` for qualities ``(B,)`` from per-integer-quality log
    gains ``(Q, C)``, log-linear between integers (Cui et al. 2021), computed in ``dtype``
    (default the gains')."""
    dtype = dtype or log_gain.dtype
    num_qualities = log_gain.shape[0]
    q = quality.to(dtype).clamp(1, num_qualities) - 1
    lo = q.floor().long().clamp(max=num_qualities - 2)
    t = (q - lo.to(dtype))[:, None]
    g, ig = log_gain.to(dtype), log_inv_gain.to(dtype)
    return (((1 - t) * g[lo] + t * g[lo + 1]).exp()[..., None, None],
            ((1 - t) * ig[lo] + t * ig[lo + 1]).exp()[..., None, None])


def tile_prefix(index: int, count: int) -> str:
    """Sub-stream name prefix of tile ``index`` of ``count`` (none for a single tile)."""
    return f"t{index}." if count > 1 else ""


def compress_tiles(x: Tensor, tile: int, code_tile) -> tuple[dict, int]:
    """Code ``x`` ``(1, 3, H, W)`` tile by tile: ``code_tile(tile_tensor) -> {name: bytes}``.
    Returns the prefixed sub-streams and the tile size to record in the header (0: one tile)."""
    grid = tiles(*x.shape[-2:], tile)
    streams = {}
    for i, (top, left, th, tw) in enumerate(grid):
        for name, data in code_tile(x[..., top : top + th, left : left + tw]).items():
            streams[tile_prefix(i, len(grid)) + name] = data
    return streams, tile if len(grid) > 1 else 0


def check_tiling(bitstream, tile: int, codec_id: str) -> list[tuple[int, int, int, int]]:
    """The tile grid of ``bitstream`` if it is the one a codec with tile size ``tile`` writes for
    the declared image size; else :class:`BitstreamError` (before anything is allocated)."""
    from licodec.errors import BitstreamError

    h, w, declared = bitstream.height, bitstream.width, bitstream.tile
    one = tile <= 0 or (h <= tile and w <= tile)
    if one and declared != 0:
        raise BitstreamError(f"bitstream declares tiles of {declared} for a {w}x{h} image that "
                             f"{codec_id} codes in one tile")
    if not one and declared == 0:
        raise BitstreamError(f"bitstream declares a {w}x{h} image in one tile; "
                             f"{codec_id} codes at most {tile}x{tile} per tile")
    if not one and declared != tile:
        raise BitstreamError(f"bitstream declares tiles of {declared}; {codec_id} codes in tiles of {tile}")
    return tiles(h, w, declared)


#: optional sub-streams that a codec's own decoder leaves to others: ``alpha`` (:mod:`licodec.api`)
#: and ``texture``, the side information of a generative decoder (:mod:`licodec.codec.flow`).
SIDE_STREAMS = ("alpha", "texture")


def check_stream_names(bitstream, names, codec_id: str) -> None:
    """:class:`BitstreamError` unless ``bitstream`` has exactly the sub-streams ``names`` (plus the
    optional :data:`SIDE_STREAMS`)."""
    from licodec.errors import BitstreamError

    missing = [name for name in names if name not in bitstream.streams]
    if missing:
        raise BitstreamError(f"bitstream has no sub-stream {missing[0]!r}" +
                             (f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else ""))
    extra = [name for name in bitstream.streams if name not in names and name not in SIDE_STREAMS]
    if extra:
        raise BitstreamError(f"bitstream has a sub-stream {extra[0]!r} that {codec_id} does not write")
