"""The in-loop filter of residual P-frames: the decoded frame, corrected from the prediction.

A residual P-frame (:class:`~licodec.codec.video_residual.ResidualVideoCodec`) is decoded as
``prediction + residual_hat``, the residual coded by the frozen image codec, whose synthesis never
sees the prediction. :class:`LoopFilter` adds a learned correction to that sum from the sum itself
and from the prediction, before the frame is rounded to 8 bits: it is what the decoder shows and
the next frame's reference, so a better frame also makes the next prediction better. It plays the
part of HEVC's in-loop filters (deblocking and SAO, Sullivan et al. 2012) and of the learned
in-loop filters that replace them (e.g. Jia et al. 2019, "Content-Aware Convolutional Neural
Network for In-Loop Filtering in High Efficiency Video Coding", IEEE TIP); DVC's motion-compensation
network (Lu et al. 2019) refines the prediction *before* the residual instead, which did not pay
here (docs/video.md).

It is trained alone, everything else frozen, on the frame's distortion (the rate does not depend
on it). Its last layer starts at zero, so a new filter is exactly the identity.

Network: the frame and its difference to the prediction, 2x2 pixel-unshuffled (24 channels at half
resolution) with the frame's quality as a 25th channel, then three 3x3 convolutions (``width``,
``width``, 12) and a pixel shuffle back: about ``(25 + width + 12) * width * 9 / 4`` multiply-adds
per pixel.

Determinism: at coding time it runs in float64, like every network that builds a reference
(:mod:`licodec.codec.video_residual`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LoopFilter(nn.Module):
    """``forward(frame, prediction, quality)``: ``frame`` (prediction plus decoded residual) and
    ``prediction`` ``(B, 3, H, W)`` (``H``, ``W`` even; values about [0, 1]), ``quality`` ``(B,)``
    in [1, Q] -> the filtered frame ``(B, 3, H, W)``, ``frame`` plus a correction. ``width``: the
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
