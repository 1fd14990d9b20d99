"""The post-filter of residual P-frames: the shown frame, corrected from the prediction.

A residual P-frame (:class:`~licodec.codec.video_residual.ResidualVideoCodec`) is decoded as
``prediction + residual_hat``, the residual coded by the frozen image codec, whose synthesis never
sees the prediction. :class:`PostFilter` adds a learned correction to that sum, from the sum itself
and from the prediction, to the frame the decoder *shows*; the next frame's reference stays the
unfiltered sum. It is a quality-enhancement filter outside the coding loop (as MFQE, Yang et al.
2018, "Multi-Frame Quality Enhancement for Compressed Video", CVPR), so it changes no byte of the
file and cannot drift. (The same filter inside the loop, its output the next reference, drifted:
frames re-filtered their already filtered references, and over one I-period of BasketballPass the
first P-frame gained 0.04-0.29 dB against no filter and the last lost 0.12-4.0 dB, q2-q8:
docs/video.md.)

It is trained alone, everything else frozen, on the shown frame's distortion (the rate does not
depend on it). Its last layer starts at zero, so a new filter is exactly the identity.

Network: the frame and its difference to the prediction, 2x2 pixel-unshuffled (24 channels at half
resolution) with the frame's quality as a 25th channel, then three 3x3 convolutions (``width``,
``width``, 12) and a pixel shuffle back: about ``(25 + width + 12) * width * 9 / 4`` multiply-adds
per pixel.

Determinism: at coding time it runs in float64 (:mod:`licodec.codec.video_residual`), so a file
decodes to the same shown frames at any thread count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PostFilter(nn.Module):
    """``forward(frame, prediction, quality)``: ``frame`` (prediction plus decoded residual) and
    ``prediction`` ``(B, 3, H, W)`` (``H``, ``W`` even; values about [0, 1]), ``quality`` ``(B,)``
    in [1, Q] -> the shown frame ``(B, 3, H, W)``, ``frame`` plus a correction. ``width``: the
    network's width; ``num_qualities``: Q, which scales the quality channel to [0, 1]."""

    def __init__(self, width: int, num_qualities: int = 8) -> None:
        super().__init__()
        self.num_qualities = num_qualities
        last = nn.Conv2d(width, 12, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Conv2d(25, width, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), last)

    def forward(self, frame: Tensor, prediction: Tensor, quality: Tensor) -> Tensor:
        x = F.pixel_unshuffle(torch.cat([frame - 0.5, prediction - frame], dim=1), 2)
        q = (quality.to(x.dtype) / self.num_qualities).view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[-2:])
        return frame + F.pixel_shuffle(self.net(torch.cat([x, q], dim=1)), 2)
