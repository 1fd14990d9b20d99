"""The flow refiner of residual P-frames: the decoded flow's edges, drawn from the prediction.

A residual P-frame's motion (:class:`~licodec.codec.video_residual.ResidualVideoCodec`) is coded by
a flow autoencoder whose latent is 16 times coarser than the frame, so the decoded flow is smooth
where real motion has edges (a player against the floor): the prediction smears the object's
border and the residual pays for it (docs/video.md: with the *uncoded* DIS flow the residual would
cost 20-25% less). The decoder already has a picture of where those edges are: the prediction
itself, which is in the current frame's coordinates, as the flow is. :class:`FlowRefiner` adds a
learned correction to the decoded flow from the flow and the prediction it makes, and the frame is
then predicted again with the refined flow; no bit is spent on it (the guided upsampling of
motion, as in joint image-flow filtering, e.g. Hui et al. 2016, "Depth Map Super-Resolution by
Deep Multi-Scale Guidance", ECCV).

Its last layer starts at zero, so a new refiner is exactly the identity. It trains with the
residual's adapters (``licodec train --model video-dvc --init WEIGHTS --residual-adapter
--flow-refiner``, with ``--prior`` and ``--with-motion`` if wanted), on the P-frame's rate and
distortion; measured, it did not pay (docs/video.md).

Network: the prediction (centred) and the flow (in units of ``FLOW_UNIT`` pixels), 4x4
pixel-unshuffled (80 channels at a quarter of the resolution), then
four 3x3 convolutions (``width``, ``width``, ``width``, 32) and a pixel shuffle back to a flow
correction of 2 channels: a receptive field of 36 pixels, about
``(80 + 2 * width) * width * 9 / 16 + width * 32 * 9 / 16`` multiply-adds per pixel.

Determinism: at coding time it runs in float64 (:mod:`licodec.codec.video_residual`), so encoder
and decoder predict the same frames at any thread count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FLOW_UNIT = 8.0  # pixels of flow per unit of the network's flow channels (and of its output)


class FlowRefiner(nn.Module):
    """``forward(flow, prediction)``: the decoded flow ``(B, 2, H, W)`` (pixels; ``H``, ``W``
    multiples of 4) and the prediction it makes ``(B, 3, H, W)`` (about [0, 1]) -> the refined
    flow ``(B, 2, H, W)``, ``flow`` plus a correction. ``width``: the network's width."""

    def __init__(self, width: int) -> None:
        super().__init__()
        last = nn.Conv2d(width, 32, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Conv2d(80, width, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), last)

    def forward(self, flow: Tensor, prediction: Tensor) -> Tensor:
        x = F.pixel_unshuffle(torch.cat([flow / FLOW_UNIT, prediction - 0.5], dim=1), 4)
        return flow + F.pixel_shuffle(self.net(x), 4) * FLOW_UNIT
