"""Space-channel context latent codec: the hyperprior plus channel and checkerboard context.

The latent ``y`` ``(B, M, h, w)`` is split along channels into unevenly sized groups
(ELIC: He et al. 2022, "ELIC: Efficient learned image compression with unevenly grouped
space-channel contextual adaptive coding", CVPR). Group ``k`` is coded after groups
``0..k-1`` (channel-wise context, Minnen & Singh 2020, "Channel-wise autoregressive entropy
models for learned image compression", ICIP) in two checkerboard passes (He et al. 2021,
"Checkerboard context model for efficient learned image compression", CVPR): first the
*anchors* (positions with ``(i + j)`` even), then the *non-anchors*, whose parameters also see
a 5x5 convolution of the decoded anchors of the same group. So decoding takes
``2 * len(groups)`` parallel passes instead of one serial step per latent element.

Each group's Gaussian means and scales are the hyperprior's (``h_s``, exactly as in
:class:`~licodec.codec.latent.HyperpriorLatentCodec`) plus a correction from a small
parameter network whose last layer starts at zero, so a model grown from a trained
hyperprior starts out coding exactly as that hyperprior does.

All networks that choose CDF tables (``h_s``, the spatial context convolutions and the
parameter networks) run in float64 at compress and decompress time: a table choice does
not flip on last-bit differences between CPU kernels or thread counts.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from licodec.codec.latent import ste_round
from licodec.entropy import rans
from licodec.entropy.models import FrozenEntropyBottleneck, FrozenGaussianConditional, default_scale_table


def anchor_mask(h: int, w: int, device=None) -> Tensor:
    """``(h, w)`` bool, True at checkerboard anchors (``(i + j)`` even)."""
    i = torch.arange(h, device=device)[:, None]
    j = torch.arange(w, device=device)[None, :]
    return (i + j) % 2 == 0


class ParameterNet(nn.Sequential):
    """``(B, cin, h, w) -> (B, 2 * c, h, w)``: corrections to a group's scales then means.
    1x1, 3x3, 1x1 convolutions; the last starts at zero."""

    def __init__(self, cin: int, hidden: int, c: int) -> None:
        last = nn.Conv2d(hidden, 2 * c, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        super().__init__(
            nn.Conv2d(cin, hidden, 1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(inplace=True),
            last,
        )


class SpaceChannelContextLatentCodec(nn.Module):
    """Hyperprior with channel-group and checkerboard context over ``y`` (papers above).

    h_a: ``(B, M, h, w) -> (B, Nz, h/4, w/4)``; h_s: ``(B, Nz, h/4, w/4) -> (B, 2M, h, w)``
    (scales then means). ``groups``: channel counts of the groups, summing to ``M``;
    ``hidden``: width of the parameter networks.
    """

    # encode-time refinement's Adam step as (factor of std(y), min, max), licodec.codec.refine.
    # Smaller than the plain hyperprior's: moving one latent here also moves its neighbours'
    # predicted distributions. Measured on kodim23 (256x384 crop), 30 iterations, RD cost
    # against effort 0: quality 1 (std 0.56) lr 0.005/0.01/0.02 gave -3.1/-5.2/-4.8%;
    # quality 4 (std 1.27) 0.01/0.02 gave -4.9/-4.3%, while 0.15 (the plain rule's step)
    # found nothing (its checked costs rose 14%); quality 8 (std 4.15) 0.005/0.01/0.02 gave
    # -5.3/-7.5/-8.9%.
    refine_step = (0.005, 0.01, 0.02)

    def __init__(self, h_a: nn.Module, h_s: nn.Module, z_channels: int, groups: tuple[int, ...], hidden: int,
                 scale_table: list[float] | None = None) -> None:
        super().__init__()
        self.h_a = h_a
        self.h_s = h_s
        self.groups = tuple(int(c) for c in groups)
        M = sum(self.groups)
        self.starts = [sum(self.groups[:k]) for k in range(len(self.groups))]
        self.spatial = nn.ModuleList(nn.Conv2d(c, 2 * c, 5, padding=2) for c in self.groups)
        self.param_nets = nn.ModuleList(
            ParameterNet(2 * M + start + 2 * c, hidden, c) for start, c in zip(self.starts, self.groups)
        )
        self.z_model = FrozenEntropyBottleneck(z_channels)
        self.y_model = FrozenGaussianConditional(scale_table or default_scale_table())
        self._nets64 = None

    # -- shared by training and coding ----------------------------------------------
    def _group_params(self, nets, k: int, hyper: Tensor, prev: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        """Scales and means ``(B, c_k, h, w)`` of group ``k`` given the hyper parameters
        ``hyper`` ``(B, 2M, h, w)``, the decoded earlier groups ``prev`` ``(B, start_k, h, w)``
        and the spatial context ``ctx`` ``(B, 2 c_k, h, w)`` (None in the anchor pass)."""
        c, start, M = self.groups[k], self.starts[k], sum(self.groups)
        if ctx is None:
            ctx = hyper.new_zeros(hyper.shape[0], 2 * c, *hyper.shape[2:])
        delta = nets["param_nets"][k](torch.cat([hyper, prev, ctx], dim=1))
        scales = hyper[:, start : start + c] + delta[:, :c]
        means = hyper[:, M + start : M + start + c] + delta[:, c:]
        return scales, means

    def _train_nets(self) -> dict:
        return {"h_s": self.h_s, "spatial": self.spatial, "param_nets": self.param_nets}

    # -- training -----------------------------------------------------------------
    def forward(self, y: Tensor, coded_scales: bool = False, z: Tensor | None = None,
                quantize=None, correction=None) -> tuple[Tensor, dict]:
        """Returns the decoder-side ``y_hat`` (rounded, straight-through) and likelihoods
        (``"y"`` ``(B, M, h, w)``, ``"z"``); ``coded_scales``, ``z`` and ``quantize`` as in
        :meth:`HyperpriorLatentCodec.forward <licodec.codec.latent.HyperpriorLatentCodec.forward>`.
        ``correction``: a function of the hyper parameters ``(B, 2M, h, w)`` returning a positive
        factor ``(B, M, h, w)`` on every group's final scales (a conditional prior, e.g.
        :class:`~licodec.codec.residual_prior.ResidualPrior`); the means, and so ``y_hat``, do not
        change. None: the scales as they are."""
        z = self.h_a(y) if z is None else z
        nets = self._train_nets()
        rounding = ste_round if quantize is None else quantize
        with torch.autocast(device_type=y.device.type, enabled=False):
            z = z.float()
            medians = self.z_model.medians()
            z_hat = rounding(z - medians) + medians
            if quantize is None:
                _, z_likelihoods = self.z_model(z)  # noise for the rate
            else:
                z_likelihoods = self.z_model.likelihood_of(z_hat)
        hyper = self.h_s(z_hat).float()
        factor = None
        if correction is not None:
            with torch.autocast(device_type=y.device.type, enabled=False):
                factor = correction(hyper).float()
        y = y.float()
        mask = anchor_mask(*y.shape[-2:], device=y.device)
        y_hats, likelihoods = [], []
        with torch.autocast(device_type=y.device.type, enabled=False):
            for k, (start, c) in enumerate(zip(self.starts, self.groups)):
                y_k = y[:, start : start + c]
                prev = torch.cat(y_hats, dim=1) if y_hats else y.new_zeros(y.shape[0], 0, *y.shape[2:])
                s_a, m_a = self._group_params(nets, k, hyper, prev, None)
                anchors_hat = torch.where(mask, rounding(y_k - m_a) + m_a, 0.0)
                ctx = self.spatial[k](anchors_hat)
                s_n, m_n = self._group_params(nets, k, hyper, prev, ctx)
                scales = torch.where(mask, s_a, s_n)
                if factor is not None:
                    scales = scales * factor[:, start : start + c]
                means = torch.where(mask, m_a, m_n)
                if coded_scales:
                    scales = self.y_model.scale_table[self.y_model.table_indexes(scales).long()]
                y_hat_k = torch.where(mask, anchors_hat, rounding(y_k - m_n) + m_n)
                if quantize is None:
                    _, lik = self.y_model(y_k, scales, means)  # noise for the rate
                else:
                    lik = self.y_model.likelihood_of(y_hat_k, scales, means)
                likelihoods.append(lik)
                y_hats.append(y_hat_k)
        return torch.cat(y_hats, dim=1), {"y": torch.cat(likelihoods, dim=1), "z": z_likelihoods}

    # -- coding -------------------------------------------------------------------
    def freeze(self) -> None:
        self.z_model.freeze()
        self.y_model.freeze()
        self._nets64 = None

    def refresh(self) -> None:
        """Drop cached copies made from the weights (call after loading new weights)."""
        self._nets64 = None

    def _coding_nets(self) -> dict:
        if self._nets64 is None or self.training:
            self._nets64 = {k: copy.deepcopy(v).double().eval() for k, v in self._train_nets().items()}
        return self._nets64

    def _code(self, z_hat: Tensor, y_shape: tuple, code_group, correction=None) -> Tensor:
        """Walk the groups and passes in coding order. ``code_group(k, mask, scales, means)``
        codes (or decodes) the group's symbols at the ``mask`` positions and returns the
        group's decoded values there (``(1, c_k, h, w)``, zero elsewhere). Returns ``y_hat``.
        ``correction`` as in :meth:`forward`, given float64 hyper parameters and returning a float64
        factor."""
        nets = self._coding_nets()
        with torch.no_grad():
            hyper = nets["h_s"](z_hat.double())
            factor = None
            if correction is not None:
                factor = correction(hyper)
                if factor.dtype != torch.float64:
                    raise TypeError("a coding-time correction of the scales must return float64")
            mask = anchor_mask(*y_shape[-2:])
            y_hat = torch.zeros(y_shape, dtype=torch.float64)
            for k, (start, c) in enumerate(zip(self.starts, self.groups)):
                f_k = 1.0 if factor is None else factor[:, start : start + c]
                prev = y_hat[:, :start]
                s_a, m_a = self._group_params(nets, k, hyper, prev, None)
                anchors = code_group(k, mask, s_a * f_k, m_a)
                ctx = nets["spatial"][k](anchors)
                s_n, m_n = self._group_params(nets, k, hyper, prev, ctx)
                y_hat[:, start : start + c] = anchors + code_group(k, ~mask, s_n * f_k, m_n)
        return y_hat

    @torch.no_grad()
    def compress(self, y: Tensor, z: Tensor | None = None, correction=None) -> tuple[dict, Tensor]:
        """Code ``y`` ``(1, M, h, w)`` (with hyper-latent ``z``, default ``h_a(y)``); returns
        ``{"z": bytes, "y": bytes}`` and ``y_hat``. ``correction``: as in :meth:`_code` (the
        decoder must be given the same one)."""
        z = self.h_a(y) if z is None else z
        z_bytes, z_hat = self.z_model.compress_tensor(z)
        y64 = y.double()
        symbols, indexes = [], []

        def code_group(k: int, mask: Tensor, scales: Tensor, means: Tensor) -> Tensor:
            start, c = self.starts[k], self.groups[k]
            sym = torch.round(y64[:, start : start + c] - means)
            symbols.append(sym[:, :, mask].reshape(-1))
            indexes.append(self.y_model.table_indexes(scales[:, :, mask]).reshape(-1))
            return torch.where(mask, sym + means, 0.0)

        y_hat = self._code(z_hat, y.shape, code_group, correction)
        y_bytes = rans.encode(torch.cat(symbols), torch.cat(indexes), self.y_model.rans_tables())
        return {"z": z_bytes, "y": y_bytes}, y_hat.float()

    @torch.no_grad()
    def decompress(self, streams: dict, z_shape: tuple, prefix: str = "", correction=None) -> Tensor:
        """Inverse of :meth:`compress`; ``z_shape`` is ``(1, Nz, h/4, w/4)``."""
        z_hat = self.z_model.decompress_tensor(streams["z"], z_shape, name=prefix + "z")
        y_shape = (1, sum(self.groups), z_shape[2] * 4, z_shape[3] * 4)
        decoder = rans.StreamDecoder(streams["y"], self.y_model.rans_tables(), total=int(torch.tensor(y_shape).prod()),
                                     name=prefix + "y")

        def code_group(k: int, mask: Tensor, scales: Tensor, means: Tensor) -> Tensor:
            idx = self.y_model.table_indexes(scales[:, :, mask])
            sym = torch.from_numpy(decoder.decode(idx)).reshape(idx.shape).to(torch.float64)
            out = torch.zeros_like(means)
            out[:, :, mask] = sym + means[:, :, mask]
            return out

        y_hat = self._code(z_hat, y_shape, code_group, correction)
        decoder.finish()
        return y_hat.float()
