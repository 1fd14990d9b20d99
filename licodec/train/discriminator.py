"""A PatchGAN discriminator and the hinge GAN losses, for the late adversarial phase of
:mod:`licodec.train.vq_objective`.

PatchGAN: Isola et al. 2017 ("Image-to-Image Translation with Conditional Adversarial
Networks", CVPR), as VQGAN uses it (Esser et al. 2021): strided 4x4 convolutions whose output
is a grid of real/fake logits, one per overlapping patch (70x70 pixels with 3 layers). Spectral
normalisation (Miyato et al. 2018) in place of batch norm keeps it 1-Lipschitz-ish per layer
and independent of the batch composition. Hinge losses: Lim & Ye 2017, Miyato et al. 2018.
It is training state only: checkpointed with the run, never exported with the codec.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """``(B, 3, H, W)`` in [0, 1] -> logits ``(B, 1, ~H/8 - 2, ~W/8 - 2)``.

    ``channels`` filters in the first layer, doubled in each of the ``layers`` following ones
    (capped at 8x), LeakyReLU(0.2); the last two convolutions have stride 1. ``in_channels`` 6
    makes it conditional (pix2pix's): it judges an image concatenated with its condition, both in
    [0, 1], ``(B, 6, H, W)``."""

    def __init__(self, channels: int = 32, layers: int = 3, spectral: bool = True, in_channels: int = 3) -> None:
        super().__init__()
        norm = spectral_norm if spectral else (lambda m: m)
        mods = [norm(nn.Conv2d(in_channels, channels, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
        c = channels
        for i in range(1, layers + 1):
            c_next = channels * min(2**i, 8)
            mods += [norm(nn.Conv2d(c, c_next, 4, stride=2 if i < layers else 1, padding=1)),
                     nn.LeakyReLU(0.2, inplace=True)]
            c = c_next
        mods.append(norm(nn.Conv2d(c, 1, 4, stride=1, padding=1)))
        self.net = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * 2 - 1)


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat)))``, halved as in VQGAN."""
    return 0.5 * (F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean())


def hinge_g_loss(fake_logits: Tensor) -> Tensor:
    """The generator's hinge loss ``-mean(D(x_hat))``."""
    return -fake_logits.float().mean()


def adaptive_weight(rec_loss: Tensor, g_loss: Tensor, layer: Tensor, max_weight: float = 1e4) -> Tensor:
    """VQGAN's balance of the adversarial term: ``||grad_layer rec|| / (||grad_layer g|| + 1e-4)``,
    clamped to ``[0, max_weight]`` and detached; ``layer`` is the decoder's last weight."""
    rec_grad = torch.autograd.grad(rec_loss, layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, layer, retain_graph=True)[0]
    return (rec_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0, max_weight).detach()
