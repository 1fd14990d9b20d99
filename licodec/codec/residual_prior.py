"""The residual's conditional prior: residual P-frames' entropy model, corrected from the prediction.

A residual P-frame (:class:`~licodec.codec.video_residual.ResidualVideoCodec`) codes ``x -
prediction`` with the frozen image codec, whose hyperprior knows nothing of the prediction. Yet
the decoder has the prediction and the decoded motion before it reads the residual, and they say
where the residual will be large (occlusions, motion edges, blur of the warp). :class:`ResidualPrior`
scales the image codec's final Gaussian scales (after its context model) by a factor learned from
those features. It changes the entropy model's widths only: the means, the analysis, the synthesis
and so every decoded value are the image codec's, and a frame decodes to the same pixels with or
without the prior. (A first version also corrected the hyper means before the context model; its
means moved the reconstruction a little, and over a 32-frame chain of references that lost more
than the bits it saved: docs/video.md.)

This is conditional entropy coding of the residual, as in Liu et al. 2020 ("Conditional Entropy
Coding for Efficient Video Compression", ECCV: the entropy model of a frame's latent conditioned on
the previous frames' latents) and the temporal prior of DCVC (Li, Li & Lu 2021), here as a
bounded correction of a frozen model so that it starts as the identity and trains on the rate alone.

Determinism: at coding time the features (the image codec's analysis of the prediction, the
pooled decoded flow) and the correction run in float64 (:mod:`licodec.codec.video_residual`),
since they choose CDF tables.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FLOW_FEATURES = 4  # pooled decoded flow: its mean (2) and its mean absolute gradient (2)
MIN_SCALE = 0.11  # the scale table's lower bound: the network sees the log of at least this


def prediction_features(prediction_latent: Tensor, flow_hat: Tensor) -> Tensor:
    """What the prior sees: ``(B, M + 4, H/16, W/16)``, the gained image-codec latent of the
    prediction ``(B, M, H/16, W/16)``, then the decoded flow ``(B, 2, H, W)`` (pixels) over 16,
    pooled to 1/16 (its mean, and 4 times the mean absolute difference to the next pixel down
    and to the right, summed)."""
    fx = flow_hat / 16
    down = F.pad((fx[..., 1:, :] - fx[..., :-1, :]).abs(), (0, 0, 0, 1))
    right = F.pad((fx[..., 1:] - fx[..., :-1]).abs(), (0, 1))
    return torch.cat([prediction_latent, F.avg_pool2d(fx, 16), F.avg_pool2d(down + right, 16) * 4], dim=1)


class ResidualPrior(nn.Module):
    """A factor on the final scales from :func:`prediction_features` (module docstring).

    ``forward(hyper, features)``: ``hyper`` ``(B, 2M, h, w)`` (scales, then means: the image
    codec's ``h_s`` output), ``features`` ``(B, M + 4, h, w)`` -> the factor ``exp(tanh d)``
    ``(B, M, h, w)``, within ``[1/e, e]``, that multiplies each latent's final scale (after the
    context model). The network sees ``log max(scale, 0.11)``, the means and the features. Its
    last layer starts at zero, so a new prior's factor is exactly 1. ``M``: latent channels of the
    image codec; ``hidden``: the network's width.
    """

    def __init__(self, M: int, hidden: int) -> None:
        super().__init__()
        self.M = M
        last = nn.Conv2d(hidden, M, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Conv2d(3 * M + FLOW_FEATURES, hidden, 1), nn.LeakyReLU(inplace=True),
                                 nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(inplace=True), last)

    def forward(self, hyper: Tensor, features: Tensor) -> Tensor:
        M = self.M
        s = hyper[:, :M].clamp(min=MIN_SCALE)
        d = self.net(torch.cat([torch.log(s), 0.1 * hyper[:, M:], 0.1 * features[:, :M], features[:, M:]], dim=1))
        return torch.exp(torch.tanh(d))
