"""The codec protocol every licodec codec follows, and the geometry helpers it uses.

* ``forward(x, quality)`` (training) returns a :class:`CodecOutput`.
* ``compress(x, quality) -> Bitstream`` and ``decompress(bitstream) -> Tensor``.
* The codec owns its geometry: inputs of any size are padded to its stride inside,
  outputs cropped back; callers never pad.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor


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
