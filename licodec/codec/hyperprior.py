"""Variable-rate mean-scale hyperprior.

Transforms of Ballé et al. 2018 ("Variational image compression with a scale
hyperprior", ICLR) with the mean-scale Gaussian entropy model of Minnen et al. 2018
("Joint autoregressive and hierarchical priors for learned image compression",
NeurIPS), made variable-rate with per-quality gain vectors on the latent as in Cui et
al. 2021 ("Asymmetric gained deep image compression with continuous rate adaptation",
CVPR): quality ``q`` in [1, Q] selects gain and inverse-gain vectors, interpolated
log-linearly between integer qualities, so one set of weights covers the whole
rate range.

The entropy model over the latent is composed, chosen by the config: the plain hyperprior
(:class:`~licodec.codec.latent.HyperpriorLatentCodec`, registry name ``hyperprior-vr``) or,
with ``context_groups``, the hyperprior plus channel-group and checkerboard context
(:class:`~licodec.codec.context.SpaceChannelContextLatentCodec`, ``hyperprior-ctx``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from licodec._compat import compressai_core
from licodec.codec.base import (CodecOutput, GeometricQualities, StoredConfig, check_stream_names, check_tiling,
                                compress_tiles, crop, interpolated_gains, pad_to_multiple, quality_tensor, tile_prefix,
                                tiles)
from licodec.codec.context import SpaceChannelContextLatentCodec
from licodec.codec.latent import HyperpriorLatentCodec
from licodec.codec.refine import EFFORT_ITERATIONS, check_effort, refine_latents
from licodec.entropy import rans
from licodec.entropy.container import Bitstream
from licodec.entropy.models import default_scale_table
from licodec.errors import LicodecError

GDN = compressai_core().GDN


@dataclass(frozen=True)
class HyperpriorConfig(StoredConfig):
    """Sizes and rate range of :class:`VariableRateHyperprior`; stored beside the weights.

    N: channels of the hidden transform layers; M: latent channels.
    num_qualities: integer qualities 1..num_qualities, each with its own gain vectors.
    lambda_min, lambda_max: rate-distortion trade-off of quality 1 and of the top quality
    (loss = lambda * 255^2 * MSE + bpp), spaced geometrically in between.
    tile: images larger than this in either dimension are coded in independent tiles
    of this size, which bounds memory; 0 disables tiling.
    scale_levels, scale_max: the Gaussian CDF tables, log-spaced scales from 0.11 to
    scale_max. 512 levels up to 64 keep the y sub-stream within 1% of the model's
    estimate on Kodak; CompressAI's 64 levels up to 256 cost up to 8% at low rates.
    """

    N: int = 96
    M: int = 144
    num_qualities: int = 8
    lambda_min: float = 0.0018
    lambda_max: float = 0.18
    tile: int = 2048
    scale_levels: int = 512
    scale_max: float = 64.0
    context_groups: tuple = ()
    context_hidden: int = 96

    def __post_init__(self) -> None:
        object.__setattr__(self, "context_groups", tuple(int(c) for c in self.context_groups))
        if self.context_groups and sum(self.context_groups) != self.M:
            raise ValueError(f"context_groups {self.context_groups} do not sum to M={self.M}")


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=k // 2, output_padding=stride - 1)


def hyper_transforms(N: int, M: int) -> tuple[nn.Sequential, nn.Sequential]:
    """Mean-scale hyper-analysis ``(B, M, h, w) -> (B, N, h/4, w/4)`` and hyper-synthesis
    ``(B, N, h/4, w/4) -> (B, 2M, h, w)`` (scales, then means) of Minnen et al. 2018."""
    h_a = nn.Sequential(
        _conv(M, N, 3, 1), nn.LeakyReLU(inplace=True), _conv(N, N), nn.LeakyReLU(inplace=True), _conv(N, N)
    )
    h_s = nn.Sequential(
        _deconv(N, M), nn.LeakyReLU(inplace=True), _deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
        _conv(M * 3 // 2, M * 2, 3, 1),
    )
    return h_a, h_s


class VariableRateHyperprior(GeometricQualities, nn.Module):
    """Mean-scale hyperprior with continuous quality (see module docstring for papers).

    Input ``x``: ``(B, 3, H, W)`` RGB in [0, 1], any ``H, W >= 1``.
    Latent ``y``: ``(B, M, H'/16, W'/16)``; hyper-latent ``z``: ``(B, N, H'/64, W'/64)``,
    where ``H', W'`` are ``H, W`` rounded up to the stride (64).
    """

    stride = 64

    def __init__(self, config: HyperpriorConfig = HyperpriorConfig()) -> None:
        super().__init__()
        self.config = config
        # identity written into bitstreams; the zoo sets both when it builds a model
        self.codec_id = "hyperprior-vr"
        self.weights_sha256 = "0" * 16
        N, M, Q = config.N, config.M, config.num_qualities
        self.g_a, self.g_s, h_a, h_s = self.build_transforms(config)
        scale_table = default_scale_table(max_scale=config.scale_max, levels=config.scale_levels)
        if config.context_groups:
            self.latent = SpaceChannelContextLatentCodec(h_a, h_s, z_channels=N, groups=config.context_groups,
                                                         hidden=config.context_hidden, scale_table=scale_table)
        else:
            self.latent = HyperpriorLatentCodec(h_a, h_s, z_channels=N, scale_table=scale_table)
        # gain ~ sqrt(lambda) keeps the quantization step near its RD optimum at start
        lambdas = torch.tensor([self.lambda_for_quality(q) for q in range(1, Q + 1)])
        log_gain = 0.5 * torch.log(lambdas / lambdas.mean())
        self.log_gain = nn.Parameter(log_gain[:, None].repeat(1, M))
        self.log_inv_gain = nn.Parameter(-log_gain[:, None].repeat(1, M))

    @staticmethod
    def build_transforms(config) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
        """``g_a, g_s, h_a, h_s`` of this architecture; subclasses with other transforms override
        this and nothing else (the entropy layer, rate control and coding are shared).

        ``g_a``/``g_s`` are ``nn.Sequential``; their children's outputs are the intermediate
        features that :meth:`forward` returns with ``features=True``.
        """
        N, M = config.N, config.M
        g_a = nn.Sequential(
            _conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N), _conv(N, M)
        )
        g_s = nn.Sequential(
            _deconv(M, N), GDN(N, inverse=True), _deconv(N, N), GDN(N, inverse=True),
            _deconv(N, N), GDN(N, inverse=True), _deconv(N, 3),
        )
        return (g_a, g_s, *hyper_transforms(N, M))

    def grow_from(self, source: "VariableRateHyperprior") -> None:
        """Start from a trained plain hyperprior with the same convolutions (same ``N``, at most
        ``M`` latent channels); added channels, blocks and context start at zero or identity, so
        this codec first computes exactly what ``source`` does (:mod:`licodec.codec.growth`)."""
        from licodec.codec.growth import grow_hyperprior

        grow_hyperprior(self, source)

    # -- rate control (quality_range, lambda_for_quality, check_quality: GeometricQualities)
    def _gains(self, quality: Tensor) -> tuple[Tensor, Tensor]:
        """Gain and inverse gain, ``(B, M, 1, 1)`` each, for qualities ``(B,)`` in [1, Q]."""
        return interpolated_gains(quality, self.log_gain, self.log_inv_gain)

    # -- training -----------------------------------------------------------------
    def forward(self, x: Tensor, quality, coded_scales: bool = False, features: bool = False) -> CodecOutput:
        """``x``: ``(B, 3, H, W)`` in [0, 1] with ``H, W`` multiples of 64; ``quality``: float or ``(B,)``.

        ``coded_scales``: rate from the CDF tables' scales (what compress codes with), for estimates.
        ``features``: also return the intermediate features (``out.features``, for distillation):
        ``"a0".."a{k}"`` the outputs of ``g_a``'s children (the last is the ungained latent),
        ``"y"`` the gained latent that is quantized, ``"s0".."s{k}"`` the outputs of ``g_s``'s children.
        """
        gain, inv_gain = self._gains(quality_tensor(quality, x.shape[0]).to(x.device))
        feats = {}
        h = x
        for i, layer in enumerate(self.g_a):
            h = layer(h)
            if features:
                feats[f"a{i}"] = h
        y = h * gain
        y_hat, likelihoods = self.latent(y, coded_scales=coded_scales)
        h = y_hat * inv_gain
        for i, layer in enumerate(self.g_s):
            h = layer(h)
            if features:
                feats[f"s{i}"] = h
        bits = sum(-torch.log2(lik).flatten(1).sum(1) for lik in likelihoods.values())
        if features:
            feats["y"] = y
        return CodecOutput(x_hat=h, likelihoods=likelihoods, bits=bits, features=feats)

    # -- coding -------------------------------------------------------------------
    def freeze(self) -> None:
        """Build and fingerprint the entropy tables (done once, when weights are exported)."""
        self.latent.freeze()

    def refresh(self) -> None:
        self.latent.refresh()

    def _latent_shape(self, h: int, w: int) -> tuple:
        hp, wp = -(-h // self.stride) * self.stride, -(-w // self.stride) * self.stride
        return (1, self.config.N, hp // 64, wp // 64)

    @torch.no_grad()
    def compress_tile(self, x: Tensor, quality: float, effort: int = 0, correction=None, transforms=None) -> dict:
        """Code one tile ``(1, 3, h, w)`` in [0, 1]; returns named sub-streams.
        ``effort`` > 0 refines the latents for this image first (:mod:`licodec.codec.refine`).
        ``correction``: a factor on the final scales from the hyper parameters (space-channel
        context models only; a residual prior's, :mod:`licodec.codec.residual_prior`), called with
        float64 ones when coding and float32 ones when refining; the decoder must be given the same.
        ``transforms``: ``(g_a, g_s)`` to use instead of the codec's own (a residual coder's adapted
        ones, :mod:`licodec.codec.residual_adapter`); the decoder must synthesise with that ``g_s``."""
        padded, size = pad_to_multiple(x, self.stride)
        g_a = self.g_a if transforms is None else transforms[0]
        extra = {} if correction is None else {"correction": correction}
        if effort:
            y, z = refine_latents(self, padded, quality, EFFORT_ITERATIONS[effort], size, correction=correction,
                                  transforms=transforms)
            streams, _ = self.latent.compress(y.contiguous(), z=z.contiguous(), **extra)
            return streams
        gain, _ = self._gains(quality_tensor(quality, 1))
        # channels-last runs oneDNN's faster convolution kernels on CPU (about -30% here)
        y = g_a(padded.contiguous(memory_format=torch.channels_last)) * gain
        streams, _ = self.latent.compress(y.contiguous(), **extra)
        return streams

    @torch.no_grad()
    def decompress_tile(self, streams: dict, quality: float, size: tuple[int, int], prefix: str = "") -> Tensor:
        """Decode one tile to ``(1, 3, h, w)`` clamped to [0, 1]."""
        _, inv_gain = self._gains(quality_tensor(quality, 1))
        y_hat = self.latent.decompress(streams, self._latent_shape(*size), prefix=prefix)
        x_hat = self.g_s((y_hat * inv_gain).contiguous(memory_format=torch.channels_last))
        return crop(x_hat, size).clamp_(0, 1)

    @torch.no_grad()
    def estimate_bits(self, x: Tensor, quality: float) -> float:
        """The model's estimate of the payload size in bits for ``x`` ``(1, 3, H, W)``:
        ``-log2`` likelihoods of the rounded latents under the distributions the coder uses
        (table scales), tile by tile as :meth:`compress` codes them."""
        was_training = self.training
        self.eval()
        try:
            total = 0.0
            for top, left, th, tw in tiles(*x.shape[-2:], self.config.tile):
                padded, _ = pad_to_multiple(x[..., top : top + th, left : left + tw], self.stride)
                total += float(self.forward(padded, quality, coded_scales=True).bits.sum())
            return total
        finally:
            self.train(was_training)

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float, effort: int = 0) -> Bitstream:
        """``x``: ``(1, 3, H, W)`` RGB in [0, 1]. Returns a :class:`Bitstream`.

        ``effort``: 0 (one analysis pass) to 9; higher levels spend encode time refining the
        latents for the rate-distortion cost of this very decoder (:mod:`licodec.codec.refine`).
        The decoder and the bitstream format do not depend on it."""
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise LicodecError(f"compress expects a (1, 3, H, W) tensor, got {tuple(x.shape)}")
        q = self.check_quality(quality)
        effort = check_effort(effort)
        streams, tile = compress_tiles(x, self.config.tile, lambda t: self.compress_tile(t, q, effort))
        return Bitstream(codec_id=self.codec_id, weights_sha256=self.weights_sha256, quality=q,
                         height=x.shape[-2], width=x.shape[-1], tile=tile, streams=streams)

    def check_geometry(self, bitstream: Bitstream) -> list[tuple[int, int, int, int]]:
        """Refuse, before anything is allocated or decoded, a tiling, set of sub-streams or
        sub-stream length that :meth:`compress` never writes for the declared image size;
        returns the tile grid. An ``alpha`` sub-stream is left to the caller (:mod:`licodec.api`)."""
        grid = check_tiling(bitstream, self.config.tile, self.codec_id)
        names = {}  # sub-stream name -> number of symbols it codes
        for i, (_, _, th, tw) in enumerate(grid):
            prefix = tile_prefix(i, len(grid))
            _, n, zh, zw = self._latent_shape(th, tw)
            names[prefix + "z"] = n * zh * zw
            names[prefix + "y"] = self.config.M * zh * zw * 16
        check_stream_names(bitstream, names, self.codec_id)
        for name, total in names.items():
            rans.check_length(len(bitstream.streams[name]), total, name)
        return grid

    @torch.no_grad()
    def decompress(self, bitstream: Bitstream) -> Tensor:
        """Returns ``(1, 3, H, W)`` in [0, 1]."""
        q = self.check_quality(bitstream.quality)
        grid = self.check_geometry(bitstream)
        h, w = bitstream.height, bitstream.width
        out = torch.empty(1, 3, h, w)
        for i, (top, left, th, tw) in enumerate(grid):
            prefix = tile_prefix(i, len(grid))
            streams = {name: bitstream.stream(prefix + name) for name in ("z", "y")}
            out[..., top : top + th, left : left + tw] = self.decompress_tile(streams, q, (th, tw), prefix)
        return out
