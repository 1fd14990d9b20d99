"""Latent codecs: the entropy layer that the transforms feed, composed rather than inherited.

:class:`HyperpriorLatentCodec` codes a latent ``y`` with a mean-scale Gaussian whose
parameters come from a hyper-latent ``z`` coded with a factorized prior (Minnen, Ballé,
Toderici 2018, "Joint autoregressive and hierarchical priors for learned image
compression", without the autoregressive part).

The hyper-synthesis output chooses the CDF tables, so encoder and decoder must compute
it identically. At compress/decompress time it runs in float64, which keeps a table
choice from flipping on last-bit differences between CPU kernels or thread counts.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from licodec.entropy.models import FrozenEntropyBottleneck, FrozenGaussianConditional, default_scale_table


def ste_round(x: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return (torch.round(x) - x).detach() + x


class HyperpriorLatentCodec(nn.Module):
    """Mean-scale hyperprior over ``y``.

    h_a: ``(B, M, h, w) -> (B, Nz, h/4, w/4)``; h_s: ``(B, Nz, h/4, w/4) -> (B, 2M, h, w)``
    (scales then means along channels).
    """

    # encode-time refinement's Adam step as (factor of std(y), min, max), licodec.codec.refine;
    # measured on kodim05 with hyperprior-vr: 0.03 best at quality 1, 0.1 at qualities 4 and 8
    refine_step = (0.07, 0.02, 0.15)

    def __init__(self, h_a: nn.Module, h_s: nn.Module, z_channels: int, scale_table: list[float] | None = None) -> None:
        super().__init__()
        self.h_a = h_a
        self.h_s = h_s
        self.z_model = FrozenEntropyBottleneck(z_channels)
        self.y_model = FrozenGaussianConditional(scale_table or default_scale_table())
        self._h_s64 = None

    # -- training -----------------------------------------------------------------
    def forward(self, y: Tensor, coded_scales: bool = False, z: Tensor | None = None,
                quantize=None) -> tuple[Tensor, dict]:
        """Returns the decoder-side ``y_hat`` (rounded, straight-through) and likelihoods.

        With ``coded_scales`` the likelihoods of ``y`` use the scales of the CDF tables the
        coder picks (each scale rounded up to its table), i.e. the distribution really coded.
        ``z``: the hyper-latent to use instead of ``h_a(y)``; ``quantize``: a differentiable
        rounding ``r -> r_hat`` of the residuals (encode-time refinement), whose outputs the
        likelihoods are then taken at (instead of noise for the rate, straight-through for y_hat).
        """
        z = self.h_a(y) if z is None else z
        with torch.autocast(device_type=y.device.type, enabled=False):
            z = z.float()
            medians = self.z_model.medians()
            if quantize is None:
                _, z_likelihoods = self.z_model(z)
                z_hat = ste_round(z - medians) + medians
            else:
                z_hat = quantize(z - medians) + medians
                z_likelihoods = self.z_model.likelihood_of(z_hat)
        params = self.h_s(z_hat)
        with torch.autocast(device_type=y.device.type, enabled=False):
            scales, means = params.float().chunk(2, dim=1)
            if coded_scales:
                scales = self.y_model.scale_table[self.y_model.table_indexes(scales).long()]
            y = y.float()
            if quantize is None:
                _, y_likelihoods = self.y_model(y, scales, means)
                y_hat = ste_round(y - means) + means
            else:
                y_hat = quantize(y - means) + means
                y_likelihoods = self.y_model.likelihood_of(y_hat, scales, means)
        return y_hat, {"y": y_likelihoods, "z": z_likelihoods}

    # -- coding -------------------------------------------------------------------
    def freeze(self) -> None:
        self.z_model.freeze()
        self.y_model.freeze()
        self._h_s64 = None

    def _entropy_parameters(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        if self._h_s64 is None or self.training:
            self._h_s64 = copy.deepcopy(self.h_s).double().eval()
        with torch.no_grad():
            scales, means = self._h_s64(z_hat.double()).chunk(2, dim=1)
        return scales, means

    def refresh(self) -> None:
        """Drop cached copies made from the weights (call after loading new weights)."""
        self._h_s64 = None

    @torch.no_grad()
    def compress(self, y: Tensor, z: Tensor | None = None) -> tuple[dict, Tensor]:
        """Code ``y`` ``(1, M, h, w)`` (with hyper-latent ``z``, default ``h_a(y)``); returns
        ``{"z": bytes, "y": bytes}`` and ``y_hat``."""
        z = self.h_a(y) if z is None else z
        z_bytes, z_hat = self.z_model.compress_tensor(z)
        scales, means = self._entropy_parameters(z_hat)
        y64 = y.double()
        y_bytes = self.y_model.compress_tensor(y64, scales, means)
        y_hat = (torch.round(y64 - means) + means).float()
        return {"z": z_bytes, "y": y_bytes}, y_hat

    @torch.no_grad()
    def decompress(self, streams: dict, z_shape: tuple, prefix: str = "") -> Tensor:
        """Inverse of :meth:`compress`; ``z_shape`` is ``(1, Nz, h/4, w/4)``."""
        z_hat = self.z_model.decompress_tensor(streams["z"], z_shape, name=prefix + "z")
        scales, means = self._entropy_parameters(z_hat)
        y_hat = self.y_model.decompress_tensor(streams["y"], scales, means, name=prefix + "y")
        return y_hat.float()


class ConditionalHyperpriorLatentCodec(nn.Module):
    """Mean-scale hyperprior whose entropy parameters also see a context ``c`` that encoder and
    decoder both have before ``y`` is coded (in video, features of the motion-compensated
    reference: the temporal prior of DCVC, Li et al. 2021, "Deep Contextual Video Compression").

    h_a: ``(B, M, h, w) -> (B, Nz, h/4, w/4)``; h_s: ``-> (B, 2M, h, w)``; fuse:
    ``(B, 2M + Cc, h, w) -> (B, 2M, h, w)`` (scales, then means), ``c``: ``(B, Cc, h, w)``.
    At coding time h_s and fuse run in float64 on a float64 ``c``: the tables they choose must
    come out the same in the encoder and the decoder at any thread count.
    """

    def __init__(self, h_a: nn.Module, h_s: nn.Module, fuse: nn.Module, z_channels: int,
                 scale_table: list[float] | None = None) -> None:
        super().__init__()
        self.h_a, self.h_s, self.fuse = h_a, h_s, fuse
        self.z_model = FrozenEntropyBottleneck(z_channels)
        self.y_model = FrozenGaussianConditional(scale_table or default_scale_table())
        self._params64 = None

    def forward(self, y: Tensor, context: Tensor, coded_scales: bool = False) -> tuple[Tensor, dict]:
        """``y_hat`` (straight-through rounding around the means) and the likelihoods of ``y``
        (additive noise) and ``z``, as :meth:`HyperpriorLatentCodec.forward`."""
        z = self.h_a(y)
        with torch.autocast(device_type=y.device.type, enabled=False):
            z = z.float()
            medians = self.z_model.medians()
            _, z_likelihoods = self.z_model(z)
            z_hat = ste_round(z - medians) + medians
        params = self.fuse(torch.cat([self.h_s(z_hat), context], dim=1))
        with torch.autocast(device_type=y.device.type, enabled=False):
            scales, means = params.float().chunk(2, dim=1)
            if coded_scales:
                scales = self.y_model.scale_table[self.y_model.table_indexes(scales).long()]
            y = y.float()
            _, y_likelihoods = self.y_model(y, scales, means)
            y_hat = ste_round(y - means) + means
        return y_hat, {"y": y_likelihoods, "z": z_likelihoods}

    def freeze(self) -> None:
        self.z_model.freeze()
        self.y_model.freeze()
        self._params64 = None

    def refresh(self) -> None:
        self._params64 = None

    def _entropy_parameters(self, z_hat: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        if self._params64 is None or self.training:
            self._params64 = (copy.deepcopy(self.h_s).double().eval(), copy.deepcopy(self.fuse).double().eval())
        h_s, fuse = self._params64
        with torch.no_grad():
            scales, means = fuse(torch.cat([h_s(z_hat.double()), context.double()], dim=1)).chunk(2, dim=1)
        return scales, means

    @torch.no_grad()
    def compress(self, y: Tensor, context: Tensor) -> tuple[dict, Tensor]:
        """Code ``y`` ``(1, M, h, w)`` given ``context`` (float64); returns ``{"z", "y"}`` bytes
        and ``y_hat`` in float64, exactly what :meth:`decompress` returns."""
        z_bytes, z_hat = self.z_model.compress_tensor(self.h_a(y))
        scales, means = self._entropy_parameters(z_hat, context)
        y_bytes = self.y_model.compress_tensor(y.double(), scales, means)
        return {"z": z_bytes, "y": y_bytes}, torch.round(y.double() - means) + means

    @torch.no_grad()
    def decompress(self, streams: dict, z_shape: tuple, context: Tensor, prefix: str = "") -> Tensor:
        """Inverse of :meth:`compress`: ``y_hat`` float64."""
        z_hat = self.z_model.decompress_tensor(streams["z"], z_shape, name=prefix + "z")
        scales, means = self._entropy_parameters(z_hat, context)
        return self.y_model.decompress_tensor(streams["y"], scales, means, name=prefix + "y")
