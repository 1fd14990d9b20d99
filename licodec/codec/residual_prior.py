"""The residual's conditional prior: residual P-frames' entropy model, corrected from the prediction.

A residual P-frame (:class:`~licodec.codec.video_residual.ResidualVideoCodec`) codes ``x -
prediction`` with the frozen image codec, whose hyperprior knows nothing of the prediction. Yet
the decoder has the prediction and the decoded motion before it reads the residual, and they say
where the residual will be large (occlusions, motion edges, blur of the warp). :class:`ResidualPrior`
scales the image codec's final Gaussian scales (after its context model) by a factor learned from
those features. It changes the entropy model's widths only: the means, the analysis, the synthesis
and so every decoded value are the image codec's, and a frame decodes to the same pixels with or
without the prior (at encode effort 0: refinement at effort > 0 chooses the latents for the
prior's tables). (A first version also corrected the hyper means before the context model; its
means moved the reconstruction a little, and over a 32-frame chain of references that lost more
than the bits it saved: docs/video.md.)

This is conditional entropy coding of the residual, as in Liu et al. 2020 ("Conditional Entropy
Coding for Efficient Video Compression", ECCV: the entropy model of a frame's latent conditioned on
the previous frames' latents) and the temporal prior of DCVC (Li, Li & Lu 2021), here as a
bounded correction of a frozen model so that it starts as the identity and trains on the rate alone.

What it sees (:meth:`ResidualPrior.features`): its own small analysis of the prediction and of
the prediction's change over the reference (4x4 patches, then two strided convolutions, to 1/16:
about 0.9k multiply-adds per pixel, some 90 times fewer than the image codec's analysis), and the
decoded flow pooled to 1/16; with the image codec's ``h_s`` output it gives the factor. (A version
that read the image codec's analysis of the prediction instead made encoding about 35% slower:
docs/video.md.)

Determinism: at coding time the analysis and the factor run in float64
(:mod:`licodec.codec.video_residual`), since they choose CDF tables.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FLOW_FEATURES = 4  # pooled decoded flow: its mean (2) and its mean absolute gradient (2)
ANALYSIS_WIDTHS = (32, 48, 48)  # the prior's analysis: 4x4 patches (stride 4), a 5x5 and a 3x3 of stride 2
MIN_SCALE = 0.11  # the scale table's lower bound: the network sees the log of at least this


def flow_features(flow_hat: Tensor) -> Tensor:
    """``(B, 4, H/16, W/16)`` from the decoded flow ``(B, 2, H, W)`` (pixels): the flow over 16,
    pooled to 1/16 (its mean, and 4 times the mean absolute difference to the next pixel down and
    to the right, summed)."""
    fx = flow_hat / 16
    down = F.pad((fx[..., 1:, :] - fx[..., :-1, :]).abs(), (0, 0, 0, 1))
    right = F.pad((fx[..., 1:] - fx[..., :-1]).abs(), (0, 1))
    return torch.cat([F.avg_pool2d(fx, 16), F.avg_pool2d(down + right, 16) * 4], dim=1)


class ResidualPrior(nn.Module):
    """A factor on the final scales of the residual's latents (module docstring).

    ``features(prediction, reference, flow_hat)``: the prediction and the reference ``(B, 3, H, W)``
    in [0, 1] and the decoded flow ``(B, 2, H, W)`` (``H``, ``W`` multiples of 16) -> ``(B, 52,
    H/16, W/16)``. ``forward(hyper, features)``: ``hyper`` ``(B, 2M, h, w)`` (scales, then means:
    the image codec's ``h_s`` output) -> the factor ``exp(tanh d)`` ``(B, M, h, w)``, within
    ``[1/e, e]``, that multiplies each latent's final scale (after the context model). The network
    sees ``log max(scale, 0.11)``, the means and the features. Its last layer starts at zero, so a
    new prior's factor is exactly 1. ``M``: latent channels of the image codec; ``hidden``: the
    network's width.
    """

    def __init__(self, M: int, hidden: int) -> None:
        super().__init__()
        self.M = M
        w1, w2, cin = ANALYSIS_WIDTHS
        self.analysis = nn.Sequential(nn.Conv2d(6, w1, 4, stride=4), nn.LeakyReLU(inplace=True),
                                      nn.Conv2d(w1, w2, 5, stride=2, padding=2), nn.LeakyReLU(inplace=True),
                                      nn.Conv2d(w2, cin, 3, stride=2, padding=1))
        last = nn.Conv2d(hidden, M, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Conv2d(2 * M + cin + FLOW_FEATURES, hidden, 1), nn.LeakyReLU(inplace=True),
                                 nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(inplace=True), last)

    def features(self, prediction: Tensor, reference: Tensor, flow_hat: Tensor) -> Tensor:
        x = torch.cat([prediction - 0.5, prediction - reference], dim=1)
        return torch.cat([self.analysis(x), flow_features(flow_hat)], dim=1)

    def forward(self, hyper: Tensor, features: Tensor) -> Tensor:
        M = self.M
        s = hyper[:, :M].clamp(min=MIN_SCALE)
        d = self.net(torch.cat([torch.log(s), 0.1 * hyper[:, M:], features], dim=1))
        return torch.exp(torch.tanh(d))
