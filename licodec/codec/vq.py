"""VQGAN codebook codec: extreme compression with fine-tuned codebooks of 8 to 1024 entries.

Mao et al., "Extreme Image Compression using Fine-tuned VQGANs" (DCC 2024; arXiv 2023): a VQGAN
autoencoder (Esser et al. 2021, "Taming Transformers for High-Resolution Image Synthesis",
CVPR) codes an image as a grid of codebook indices, one per 16x16 pixels. The rate is set by
the codebook size K: every index costs log2(K) bits, so an image costs exactly
``ceil(H/16) * ceil(W/16) * log2(K)`` bits, log2(K)/256 bits per pixel. Smaller codebooks come
from k-means clustering of the trained base codebook (weighted by how often each code is used,
:mod:`licodec.codec.vq_ladder`); each rung then fine-tunes its own codebook and its own 1x1
pre-/post-quantization convolutions while the encoder and decoder stay shared and frozen.

The quantizer follows Yu et al. 2022, "Vector-quantized Image Modeling with Improved VQGAN"
(ICLR; ViT-VQGAN): a 1x1 projection to low-dimensional codes (``code_dim``, 16), L2-normalised,
looked up by cosine similarity against an L2-normalised codebook; a 1x1 projection back. The
codebook learns by exponential moving averages (van den Oord et al. 2017, appendix; Razavi et
al. 2019) rather than by gradients, and codes no encoder output has chosen for
``restart_after`` training steps are re-seeded from the current batch's encoder outputs
(Dhariwal et al. 2020, Jukebox), so the codebook does not collapse.

Normalisation: a per-pixel layer norm over channels (``ChannelNorm``, Mentzer et al. 2020,
HiFiC) rather than VQGAN's GroupNorm. GroupNorm normalises with statistics over the whole
feature map, so a 2048x2048 tile is normalised differently from the 128x128 crops the codec
trains on (HiFiC traced dark, washed-out reconstructions at full resolution to exactly this),
and a tile's reconstruction would depend on all of its content. ChannelNorm is local: a
pixel's output depends on its receptive field only, whatever the image or tile size. GDN is
local too but was designed for the rate-distortion transforms of a scalar-quantized latent;
the generative decoder here follows VQGAN's normalise-SiLU-convolve residual blocks.

Bitstream: one sub-stream ``idx`` per tile (``t{i}.idx`` when tiled), coded one of two ways,
fixed by the weights:

* Without a prior (``VQConfig.prior_layers == 0``, the paper's coding): the indices in row-major
  order, each in exactly ``log2(K)`` bits, most significant bit first, zero-padded to whole
  bytes. The indices are uniform under such a model, so bit-packing is optimal for it and costs
  no more than a uniform-table rANS would (rANS adds a 4-byte final state), needs no tables, and
  its length follows from the header's geometry alone, which lets :meth:`VQCodec.check_geometry`
  refuse a wrong length before anything is decoded.
* With a learned index prior (``prior_layers > 0``; :mod:`licodec.codec.vq_prior`, beyond the
  paper): one rANS stream of the indices in the prior's fixed 6-pass order (in windows of at
  most ``prior_window`` x ``prior_window`` indices), each with a 16-bit table the float64 prior
  computes from the passes before. ``check_geometry`` applies the rANS length bounds (whole
  32-bit words, at least 8 bytes, at most 4 per coded symbol) and decoding checks that the
  stream is consumed whole.

How the decoder knows which: the coding is a function of the weights. The header's weights
hash (of ``model.safetensors``) names the weights a stream needs (:func:`licodec.api.codec_for`
refuses others); the weights' ``config.json`` says whether they have a prior, and strict
loading refuses a config that does not match the tensors (the prior's tensors exist exactly
when ``prior_layers > 0``, and its ``spec`` buffer pins its layers, width, heads, schedule
version and window, :meth:`VQCodec.refresh`). So the same weights always code and decode the
same way, and weights without a prior keep reading the packed format.

Lost indices (:meth:`VQCodec.decompress` with ``lost_mask``): decoding can be told that some
index positions were lost; they are predicted, by the prior when there is one
(:func:`~licodec.codec.vq_prior.restore`, MaskGIT-style iterative filling), else by the most
frequent known neighbour (:func:`~licodec.codec.vq_prior.restore_from_neighbours`). This is a
simulation: the positions are marked after the sub-stream was decoded. Packed indices sit at
fixed bit offsets, so a real lost byte range loses exactly its indices; a rANS stream with the
prior desynchronises from the first lost byte on, and since every table depends on earlier
passes, a lost part of a tile's stream loses the tile. Tiles are coded independently (each its
own sub-stream and its own prior context), so a lost sub-stream loses only its tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.codec.base import (CodecOutput, StoredConfig, check_stream_names, check_tiling, checked_quality,
                                compress_tiles, crop, pad_to_multiple, quality_tensor, tile_prefix, tiles)
from licodec.codec.refine import check_effort
from licodec.codec import vq_prior
from licodec.entropy import rans
from licodec.entropy.container import Bitstream
from licodec.errors import BitstreamError, LicodecError


@dataclass(frozen=True)
class VQConfig(StoredConfig):
    """Sizes of :class:`VQCodec`; stored beside the weights (sizes are never read off tensors).

    channels: widths of the four stride-2 stages (1/2, 1/4, 1/8, 1/16 resolution).
    enc_blocks, dec_blocks: residual blocks per stage in the encoder and the decoder.
    code_dim: dimension of the L2-normalised codes.
    codebook_size: K of the base codebook, the top rung.
    rungs: codebook sizes, one per quality 1..len(rungs) (powers of two, increasing, the last
    is ``codebook_size``); quality ``q`` codes with ``rungs[q - 1]``, ``log2`` of it bits per index.
    ema_decay: decay of the codebooks' moving averages.
    restart_after: a code that no encoder output chose for this many training steps is re-seeded.
    seed: seed of the re-seeding draws (they are a function of ``(seed, update count)``).
    tile: images larger than this in either dimension are coded in independent tiles; 0: never.
    prior_layers: transformer blocks of the learned index prior (:mod:`licodec.codec.vq_prior`);
    0: no prior, indices bit-packed. prior_width, prior_heads: its width and attention heads.
    prior_window: the prior codes windows of at most this many indices a side (a multiple of 4;
    its attention costs the square of a window's size).
    """

    channels: tuple = (64, 128, 160, 192)
    enc_blocks: tuple = (0, 1, 1, 2)
    dec_blocks: tuple = (1, 1, 1, 2)
    code_dim: int = 16
    codebook_size: int = 1024
    rungs: tuple = (8, 16, 32, 64, 128, 256, 512, 1024)
    ema_decay: float = 0.99
    restart_after: int = 100
    seed: int = 0
    tile: int = 2048
    prior_layers: int = 0
    prior_width: int = 128
    prior_heads: int = 4
    prior_window: int = 48

    def __post_init__(self) -> None:
        for name in ("channels", "enc_blocks", "dec_blocks", "rungs"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if len(self.channels) != 4 or len(self.enc_blocks) != 4 or len(self.dec_blocks) != 4:
            raise ValueError("channels, enc_blocks and dec_blocks need one entry per stage (4)")
        r = self.rungs
        if not r or any(k < 2 or k & (k - 1) for k in r) or list(r) != sorted(set(r)):
            raise ValueError(f"rungs must be increasing powers of two of at least 2, got {r}")
        if r[-1] != self.codebook_size:
            raise ValueError(f"the last rung must be the base codebook size {self.codebook_size}, got {r}")
        if self.codebook_size > 1 << 16:
            raise ValueError("codebooks of more than 65536 entries are not supported")
        if self.prior_layers < 0:
            raise ValueError(f"prior_layers must not be negative, got {self.prior_layers}")
        if self.prior_layers and self.codebook_size > 1 << 13:
            raise ValueError("the index prior's 16-bit tables take codebooks of at most 8192 entries")
        if self.prior_layers and (self.prior_heads < 1 or self.prior_width % self.prior_heads
                                  or (self.prior_width // self.prior_heads) % 4):
            raise ValueError(f"prior_width {self.prior_width} must split into {self.prior_heads} heads "
                             "of a multiple of 4 channels")
        if self.prior_layers and (self.prior_window < 4 or self.prior_window % 4):
            raise ValueError(f"prior_window must be a positive multiple of 4, got {self.prior_window}")


# -- bit packing ----------------------------------------------------------------------------
def packed_length(count: int, bits: int) -> int:
    """Bytes of ``count`` indices of ``bits`` bits each: ``ceil(count * bits / 8)``."""
    return (count * bits + 7) // 8


def pack_indices(indices, bits: int) -> bytes:
    """Indices (any shape, row-major, each in ``[0, 2**bits)``) as ``bits``-bit fields, MSB first,
    zero-padded to whole bytes."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= 1 << bits):
        raise ValueError(f"indices must lie in [0, {1 << bits})")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    fields = ((idx[:, None] >> shifts) & 1).astype(np.uint8)
    return np.packbits(fields.reshape(-1)).tobytes()


def unpack_indices(data: bytes, count: int, bits: int, name: str = "idx") -> np.ndarray:
    """Inverse of :func:`pack_indices`: ``(count,)`` int64. Refuses (BitstreamError) a length other
    than :func:`packed_length` and padding bits that are not zero, so every valid sub-stream is
    the image of exactly one index sequence."""
    expected = packed_length(count, bits)
    if len(data) != expected:
        raise BitstreamError(f"sub-stream {name} is {len(data)} bytes; {count} indices of {bits} bits take {expected}")
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    if flat[count * bits :].any():
        raise BitstreamError(f"sub-stream {name} has padding bits that are not zero")
    weights = np.int64(1) << np.arange(bits - 1, -1, -1, dtype=np.int64)
    return flat[: count * bits].reshape(count, bits).astype(np.int64) @ weights


# -- code usage -----------------------------------------------------------------------------
def code_usage(indices: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(counts, perplexity, fraction used)`` of ``indices`` (any shape) into a codebook of
    ``size`` codes: counts ``(size,)`` float32; perplexity ``exp(H)`` of the empirical index
    distribution (1 when one code takes everything, ``size`` when all are equally used);
    fraction of the codes chosen at least once."""
    counts = torch.bincount(indices.reshape(-1).long(), minlength=size).float()
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return counts, entropy.exp(), (counts > 0).float().mean()


# -- layers ---------------------------------------------------------------------------------
class ChannelNorm(nn.Module):
    """Layer norm over the channels of each pixel of ``(B, C, H, W)``, with a learnt affine map
    (Mentzer et al. 2020, HiFiC): local, so independent of the image and tile size."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class VQResBlock(nn.Module):
    """``x + conv(silu(norm(conv(silu(norm(x))))))`` on ``(B, C, H, W)``; identity at start."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = ChannelNorm(channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2, self.conv2 = ChannelNorm(channels), nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class VQEncoder(nn.Module):
    """``(B, 3, H, W)`` in [0, 1], ``H, W`` multiples of 16 -> ``(B, channels[-1], H/16, W/16)``.

    Four stages, each a 4x4 stride-2 convolution and ``enc_blocks[i]`` residual blocks; a final
    norm and SiLU (the rungs' 1x1 projections follow)."""

    def __init__(self, config: VQConfig) -> None:
        super().__init__()
        layers, cin = [], 3
        for cout, n in zip(config.channels, config.enc_blocks):
            layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1))
            layers += [VQResBlock(cout) for _ in range(n)]
            cin = cout
        layers += [ChannelNorm(cin), nn.SiLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x * 2 - 1)


class _Up(nn.Module):
    """x2 upsampling by sub-pixel convolution: a 3x3 convolution to ``4 * cout`` channels at the
    low resolution, then a pixel shuffle (the same FLOPs as nearest upsampling + 3x3 convolution,
    without materialising the upsampled input)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 4 * cout, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(self.conv(x))


class VQDecoder(nn.Module):
    """``(B, channels[-1], h, w)`` -> ``(B, 3, 16h, 16w)``, nominally in [0, 1] (not clamped).

    A 3x3 input convolution and ``dec_blocks[3]`` residual blocks at 1/16; then three x2
    sub-pixel upsamplings each followed by residual blocks; norm, SiLU and a last sub-pixel
    convolution to RGB at full resolution (:attr:`last_layer`, whose bias starts at 0.5)."""

    def __init__(self, config: VQConfig) -> None:
        super().__init__()
        ch, nb = config.channels, config.dec_blocks
        layers = [nn.Conv2d(ch[3], ch[3], 3, padding=1)]
        layers += [VQResBlock(ch[3]) for _ in range(nb[3])]
        for i in (2, 1, 0):
            layers.append(_Up(ch[i + 1], ch[i]))
            layers += [VQResBlock(ch[i]) for _ in range(nb[i])]
        layers += [ChannelNorm(ch[0]), nn.SiLU()]
        self.layers = nn.Sequential(*layers)
        self.out = _Up(ch[0], 3)
        nn.init.constant_(self.out.conv.bias, 0.5)

    @property
    def last_layer(self) -> Tensor:
        """The weight of the last convolution (VQGAN's adaptive adversarial weight uses its gradients)."""
        return self.out.conv.weight

    def forward(self, h: Tensor) -> Tensor:
        return self.out(self.layers(h))


class EMACodebook(nn.Module):
    """``size`` L2-normalised codes of dimension ``dim``, learnt by moving averages.

    Buffers (all in the state dict, so a resumed run continues exactly): ``embed`` ``(size, dim)``
    unit codes; ``ema_sum`` ``(size, dim)`` the moving average of the (unit) encoder outputs
    assigned to each code per step, divided by the step's number of outputs; ``ema_count``
    ``(size,)`` the moving average of each code's share of the outputs (its usage, summing to
    about 1); ``last_used`` ``(size,)`` the update at which a code was last chosen; ``updates``
    the number of training updates so far. ``embed`` is ``ema_sum`` normalised.
    """

    def __init__(self, size: int, dim: int, decay: float = 0.99, restart_after: int = 100, seed: int = 0) -> None:
        super().__init__()
        self.size, self.dim, self.decay, self.restart_after, self.seed = size, dim, decay, restart_after, seed
        embed = F.normalize(torch.randn(size, dim), dim=1)
        self.register_buffer("embed", embed)
        self.register_buffer("ema_sum", embed / size)
        self.register_buffer("ema_count", torch.full((size,), 1.0 / size))
        self.register_buffer("last_used", torch.zeros(size, dtype=torch.long))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def alive(self) -> Tensor:
        """Fraction of the codes chosen within the last ``restart_after`` updates (the others are
        re-seeded at the next update), a scalar."""
        return ((self.updates - self.last_used) < self.restart_after).float().mean()

    def nearest(self, z: Tensor, chunk: int = 8192) -> Tensor:
        """Indices ``(N,)`` of the codes nearest (largest cosine) to unit vectors ``z`` ``(N, dim)``."""
        embed = self.embed.to(z.dtype)
        return torch.cat([(part @ embed.T).argmax(1) for part in z.split(chunk)]) if len(z) else \
            torch.zeros(0, dtype=torch.long, device=z.device)

    def _generator(self) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(int(np.random.SeedSequence([self.seed, int(self.updates)]).generate_state(1)[0]))
        return g

    @torch.no_grad()
    def reseed(self, codes: Tensor, z: Tensor) -> None:
        """Re-seed the codes of boolean mask ``codes`` ``(size,)`` from rows of ``z`` ``(N, dim)``
        (drawn without replacement when there are enough, each nudged by a little noise so that no
        two codes coincide), with a fresh usage of ``1/size`` and no time since last use."""
        n = int(codes.sum())
        if n == 0 or len(z) == 0:
            return
        g = self._generator()
        rows = torch.randperm(len(z), generator=g)[:n] if n <= len(z) else torch.randint(len(z), (n,), generator=g)
        noise = 1e-2 * torch.randn(n, self.dim, generator=g)
        fresh = F.normalize(z[rows.to(z.device)].float() + noise.to(z.device), dim=1)
        self.embed[codes] = fresh
        self.ema_count[codes] = 1.0 / self.size
        self.ema_sum[codes] = fresh / self.size
        self.last_used[codes] = self.updates

    @torch.no_grad()
    def initialise(self, z: Tensor) -> None:
        """Data-dependent start: every code from the first training batch's outputs ``z``."""
        self.reseed(torch.ones(self.size, dtype=torch.bool, device=self.embed.device), z)

    @torch.no_grad()
    def update(self, z: Tensor, indices: Tensor) -> Tensor:
        """One training update from unit outputs ``z`` ``(N, dim)`` assigned to ``indices`` ``(N,)``:
        moving averages, renormalised codes, then re-seeding of the codes unused for
        ``restart_after`` updates. Returns the mask of the codes re-seeded."""
        z = z.float()
        n = max(len(z), 1)
        counts = torch.bincount(indices, minlength=self.size).float()
        sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, z)
        self.ema_count.mul_(self.decay).add_(counts / n, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums / n, alpha=1 - self.decay)
        norm = self.ema_sum.norm(dim=1, keepdim=True)
        kept = norm[:, 0] > 1e-12
        self.embed[kept] = self.ema_sum[kept] / norm[kept]
        self.updates += 1
        self.last_used[counts > 0] = self.updates
        dead = (self.updates - self.last_used) >= self.restart_after
        self.reseed(dead, z)
        return dead

    @torch.no_grad()
    def reset(self, embed: Tensor, usage: Tensor) -> None:
        """Replace the codes by unit vectors ``embed`` ``(size, dim)`` with usage shares ``usage``
        ``(size,)`` (a fresh start that is not re-initialised from data: ``updates`` becomes 1)."""
        usage = usage.float() / usage.float().sum().clamp_min(1e-30)
        self.embed.copy_(F.normalize(embed.float(), dim=1))
        self.ema_count.copy_(usage)
        self.ema_sum.copy_(self.embed * usage[:, None])
        self.updates.fill_(1)
        self.last_used.fill_(1)


class VQRung(nn.Module):
    """One rung of the ladder: a 1x1 projection ``channels -> code_dim``, an :class:`EMACodebook`
    of ``size`` codes and a 1x1 projection ``code_dim -> channels``."""

    def __init__(self, channels: int, dim: int, size: int, config: VQConfig) -> None:
        super().__init__()
        self.size = size
        self.bits = int(math.log2(size))
        self.proj_in = nn.Conv2d(channels, dim, 1)
        self.codebook = EMACodebook(size, dim, config.ema_decay, config.restart_after, config.seed + size)
        self.proj_out = nn.Conv2d(dim, channels, 1)

    def encode(self, h: Tensor) -> Tensor:
        """Unit codes ``(B, dim, h, w)`` float32 of encoder features ``(B, channels, h, w)``."""
        return F.normalize(self.proj_in(h.float()).float(), dim=1)

    def quantize(self, z: Tensor) -> Tensor:
        """Indices ``(B, h, w)`` int64 of the codes nearest to unit codes ``z`` ``(B, dim, h, w)``."""
        b, d, hh, ww = z.shape
        return self.codebook.nearest(z.permute(0, 2, 3, 1).reshape(-1, d)).view(b, hh, ww)

    def lookup(self, indices: Tensor) -> Tensor:
        """Codes ``(B, dim, h, w)`` of indices ``(B, h, w)``."""
        return F.embedding(indices, self.codebook.embed).permute(0, 3, 1, 2)


class VQCodec(nn.Module):
    """VQGAN codebook codec (Mao et al. 2024; quantizer of Yu et al. 2022; see module docstring).

    Input ``x``: ``(B, 3, H, W)`` RGB in [0, 1], any ``H, W >= 1`` (padded to multiples of 16
    inside, cropped back). Encoder features ``(B, C, H'/16, W'/16)`` with ``C = channels[-1]``
    and ``H', W'`` the padded size; index grid ``(B, H'/16, W'/16)`` of values in ``[0, K)``.
    Quality ``q`` (an integer, 1..len(rungs)) codes with ``K = rungs[q - 1]`` (by default
    ``2**(q + 2)``: 8 to 1024 codes, 3 to 10 bits per 16x16 block).
    """

    stride = 16
    objective = "vq"  # licodec.train.objectives: trained by licodec.train.vq_objective, not by rate-distortion
    integer_qualities = True  # only integer qualities exist: one codebook per quality

    def __init__(self, config: VQConfig = VQConfig()) -> None:
        super().__init__()
        self.config = config
        self.codec_id = "vqgan"  # the zoo sets both when it builds a model
        self.weights_sha256 = "0" * 16
        self.encoder = VQEncoder(config)
        self.decoder = VQDecoder(config)
        c = config.channels[-1]
        self.rungs = nn.ModuleDict({f"k{k}": VQRung(c, config.code_dim, k, config) for k in config.rungs})
        # 1 once the smaller rungs were made from the base codebook (licodec.codec.vq_ladder)
        self.register_buffer("ladder_built", torch.zeros((), dtype=torch.uint8))
        self.prior = None
        self._prior_cache: dict = {}  # the float64 copy the coder uses (vq_prior.coding_prior)
        if config.prior_layers:
            self.prior = vq_prior.IndexPrior(config.rungs, config.prior_width, config.prior_layers, config.prior_heads,
                                             config.prior_window)

    def add_prior(self, layers: int = 4) -> None:
        """Give weights without a prior a fresh one of ``layers`` blocks (width, heads and window
        from the config), whose heads start at each rung's code usage (``ema_count``), so it codes at the
        marginal entropy before any training. The config then records it."""
        import dataclasses

        if self.prior is not None:
            raise LicodecError(f"{self.codec_id} already has an index prior")
        self.config = dataclasses.replace(self.config, prior_layers=int(layers))
        self.prior = vq_prior.IndexPrior(self.config.rungs, self.config.prior_width, self.config.prior_layers,
                                         self.config.prior_heads, self.config.prior_window).to(self.ladder_built.device)
        with torch.no_grad():
            for size in self.config.rungs:
                usage = self.rungs[f"k{size}"].codebook.ema_count.float().clamp_min(1e-12)
                self.prior.head[f"k{size}"].bias.copy_(torch.log(usage / usage.sum()))
        self._prior_cache = {}

    # -- rate control -------------------------------------------------------------
    @property
    def quality_range(self) -> tuple[float, float]:
        return 1.0, float(len(self.config.rungs))

    def check_quality(self, quality) -> float:
        """The quality as a float if it is an integer in :attr:`quality_range`, else LicodecError."""
        lo, hi = self.quality_range
        try:
            q = checked_quality(quality, lo, hi)
        except LicodecError:
            q = math.nan
        if math.isnan(q) or q != int(q):
            raise LicodecError(f"quality must be an integer from {lo:g} to {hi:g} for {self.codec_id} "
                               f"(one codebook per quality, K = {self.config.rungs[0]} to "
                               f"{self.config.rungs[-1]}), got {quality}")
        return q

    def rung(self, quality) -> VQRung:
        """The rung of an integer quality."""
        return self.rungs[f"k{self.config.rungs[int(self.check_quality(quality)) - 1]}"]

    def quality_of(self, size: int) -> int:
        """The quality whose rung has ``size`` codes."""
        if size not in self.config.rungs:
            raise LicodecError(f"{self.codec_id} has no rung of {size} codes (rungs: {list(self.config.rungs)})")
        return self.config.rungs.index(size) + 1

    def lambda_for_quality(self, q: float) -> float:
        raise LicodecError(f"{self.codec_id} has no rate-distortion trade-off per quality (the rate is fixed "
                           "by the codebook size); it trains with licodec.train.vq_objective")

    def bits_per_index(self, quality) -> int:
        return self.rung(quality).bits

    # -- training -----------------------------------------------------------------
    def forward(self, x: Tensor, quality, features: bool = False) -> CodecOutput:
        """``x``: ``(B, 3, H, W)`` in [0, 1]; ``quality``: an integer or ``(B,)`` of integers.

        Returns ``x_hat`` ``(B, 3, H, W)``; ``likelihoods["idx"]`` ``(B, h, w)`` all ``1/K`` (with
        a prior: each index's probability under it, pass by pass as it is coded); ``bits`` ``(B,)``
        = ``h * w * log2(K)`` (with a prior: the sum of ``-log2`` likelihoods); and always (they
        cost nothing) the features the training losses need: ``z_e`` ``(B, dim, h, w)`` the unit encoder codes (gradient to the
        encoder), ``z_q`` the chosen codes (no gradient), ``indices`` ``(B, h, w)``, and the
        batch's code usage, scalars: ``perplexity`` and ``usage`` (fraction of the rung's codes
        chosen in this batch; both averaged over the rungs when the batch mixes qualities),
        ``alive`` (fraction of the rung's codes chosen within the last ``restart_after`` training
        steps) and ``restarts`` (codes re-seeded by this step). ``features=True`` adds ``"h"``, the encoder features.
        In training mode the codebooks of the rungs used learn (moving averages, restarts).
        """
        b = x.shape[0]
        padded, size = pad_to_multiple(x, self.stride)
        q = quality_tensor(quality, b)
        qualities = [int(self.check_quality(v)) for v in q.tolist()]
        h = self.encoder(padded)
        groups = {}
        for i, v in enumerate(qualities):
            groups.setdefault(v, []).append(i)
        z_e = z_q = dec_in = indices = None
        stats = []
        restarts = torch.zeros((), device=x.device)
        for v, members in groups.items():
            rung = self.rung(v)
            sel = torch.tensor(members, device=x.device) if len(groups) > 1 else None
            hg = h if sel is None else h.index_select(0, sel)
            with torch.autocast(x.device.type, enabled=False):
                z = rung.encode(hg)
                if self.training and int(rung.codebook.updates) == 0:
                    rung.codebook.initialise(z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1]))
                idx = rung.quantize(z.detach())
                zq = rung.lookup(idx)
                if self.training:
                    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
                    restarts = restarts + rung.codebook.update(flat, idx.reshape(-1)).sum()
                out = rung.proj_out(z + (zq - z).detach())  # straight-through
            _, perplexity, used = code_usage(idx, rung.size)
            stats.append((perplexity, used, rung.codebook.alive()))
            if sel is None:
                z_e, z_q, dec_in, indices = z, zq, out, idx
            else:
                if z_e is None:
                    z_e = z.new_zeros((b, *z.shape[1:]))
                    z_q = zq.new_zeros((b, *zq.shape[1:]))
                    dec_in = out.new_zeros((b, *out.shape[1:]))
                    indices = idx.new_zeros((b, *idx.shape[1:]))
                z_e = z_e.index_copy(0, sel, z)
                z_q = z_q.index_copy(0, sel, zq)
                dec_in = dec_in.index_copy(0, sel, out)
                indices = indices.index_copy(0, sel, idx)
        x_hat = crop(self.decoder(dec_in), size)
        sizes = torch.tensor([self.config.rungs[v - 1] for v in qualities], dtype=torch.float32, device=x.device)
        grid = indices.shape[1:]
        if self.prior is None:
            likelihoods = {"idx": (1.0 / sizes)[:, None, None].expand(b, *grid)}
            bits = torch.log2(sizes) * (grid[0] * grid[1])
        else:
            likelihoods = {"idx": self.prior_likelihoods(indices, qualities)}
            bits = -torch.log2(likelihoods["idx"]).sum((1, 2))
        feats = {"z_e": z_e, "z_q": z_q.detach(), "indices": indices,
                 "perplexity": torch.stack([s[0] for s in stats]).mean(),
                 "usage": torch.stack([s[1] for s in stats]).mean(),
                 "alive": torch.stack([s[2] for s in stats]).mean().to(x.device), "restarts": restarts}
        if features:
            feats["h"] = h
        return CodecOutput(x_hat=x_hat, likelihoods=likelihoods, bits=bits, features=feats)

    def prior_likelihoods(self, indices: Tensor, qualities) -> Tensor:
        """``(B, h, w)`` probability of each index of ``indices`` ``(B, h, w)`` under the prior
        (float32 network, teacher-forced schedule), image ``i`` at rung ``qualities[i]``. Gradients
        reach the prior only if its parameters require them."""
        q = [int(self.check_quality(v)) for v in torch.as_tensor(qualities).reshape(-1).tolist()]
        q = q * indices.shape[0] if len(q) == 1 else q
        out = torch.empty(indices.shape, dtype=torch.float32, device=indices.device)
        grad = any(p.requires_grad for p in self.prior.parameters()) and torch.is_grad_enabled()
        for v in sorted(set(q)):
            sel = torch.tensor([i for i, u in enumerate(q) if u == v], device=indices.device)
            with torch.set_grad_enabled(grad), torch.autocast(indices.device.type, enabled=False):
                lp = vq_prior.scheduled_log_probs(self.prior, self.config.rungs[v - 1], indices.index_select(0, sel))
            out = out.index_copy(0, sel, lp.float().exp())
        return out

    def build_ladder(self, usage_counts: Tensor | None = None, iterations: int = 20, seed: int = 0) -> None:
        """Make every smaller rung from the base codebook (:func:`licodec.codec.vq_ladder.build_ladder`)."""
        from licodec.codec.vq_ladder import build_ladder

        build_ladder(self, usage_counts, iterations=iterations, seed=seed)

    # -- coding -------------------------------------------------------------------
    def freeze(self) -> None:
        """No tables to freeze (the prior's are made per image); drops the float64 prior copy."""
        self._prior_cache = {}

    def refresh(self) -> None:
        """After loading weights: drop the float64 prior copy and check that the prior's stored
        ``spec`` (layers, width, heads, schedule version, window) is the one the config describes."""
        self._prior_cache = {}
        if self.prior is not None:
            from licodec.errors import WeightsError

            cfg = self.config
            expected = [cfg.prior_layers, cfg.prior_width, cfg.prior_heads, vq_prior.SCHEDULE_VERSION, cfg.prior_window]
            if self.prior.spec.tolist() != expected:
                raise WeightsError(f"the index prior's weights are of (layers, width, heads, schedule, window) "
                                   f"{self.prior.spec.tolist()}, the config says {expected}")

    def coding_prior(self):
        """The float64 copy of the prior that makes the coding tables (None without a prior)."""
        return None if self.prior is None else vq_prior.coding_prior(self.prior, self._prior_cache)

    def grid_shape(self, h: int, w: int) -> tuple[int, int]:
        """The index grid of an ``h x w`` tile: ``(ceil(h / 16), ceil(w / 16))``."""
        return -(-h // self.stride), -(-w // self.stride)

    @torch.no_grad()
    def encode_indices(self, x: Tensor, quality) -> Tensor:
        """Indices ``(1, h, w)`` int64 of one tile ``(1, 3, H, W)`` in [0, 1]."""
        rung = self.rung(quality)
        padded, _ = pad_to_multiple(x, self.stride)
        h = self.encoder(padded.contiguous(memory_format=torch.channels_last))
        return rung.quantize(rung.encode(h))

    @torch.no_grad()
    def decode_indices(self, indices: Tensor, quality, size: tuple[int, int]) -> Tensor:
        """Decode indices ``(1, h, w)`` to the tile ``(1, 3, size)`` clamped to [0, 1]."""
        rung = self.rung(quality)
        code = rung.proj_out(rung.lookup(indices))
        return crop(self.decoder(code.contiguous(memory_format=torch.channels_last)), size).clamp_(0, 1)

    def code_indices(self, indices: np.ndarray, quality) -> bytes:
        """The ``idx`` sub-stream of an index grid ``(h, w)``: bit-packed, or rANS with the prior."""
        rung = self.rung(quality)
        if self.prior is None:
            return pack_indices(indices, rung.bits)
        return vq_prior.encode(self.coding_prior(), rung.size, np.asarray(indices))[0]

    def read_indices(self, data: bytes, quality, grid: tuple[int, int], name: str = "idx") -> np.ndarray:
        """Inverse of :meth:`code_indices`: the ``(h, w)`` int64 grid, or BitstreamError."""
        gh, gw = grid
        rung = self.rung(quality)
        if self.prior is not None:
            return vq_prior.decode(self.coding_prior(), rung.size, data, gh, gw, name)
        idx = unpack_indices(data, gh * gw, rung.bits, name)
        if idx.size and int(idx.max()) >= rung.size:
            raise BitstreamError(f"sub-stream {name} has an index >= {rung.size}")
        return idx.reshape(gh, gw)

    def restore_indices(self, indices: np.ndarray, lost: np.ndarray, quality) -> np.ndarray:
        """Predict the ``lost`` positions (``(h, w)`` bool) of an index grid ``(h, w)``: by the
        prior (:func:`~licodec.codec.vq_prior.restore`), else each takes the most frequent known
        neighbour, a grid with nothing known the rung's most used code
        (:func:`~licodec.codec.vq_prior.restore_from_neighbours`). Deterministic."""
        rung = self.rung(quality)
        lost = np.asarray(lost, dtype=bool)
        if lost.shape != indices.shape:
            raise LicodecError(f"lost mask of shape {lost.shape} for an index grid of {indices.shape}")
        if not lost.any():
            return indices
        if self.prior is not None:
            return vq_prior.restore(self.coding_prior(), rung.size, indices, lost)
        return vq_prior.restore_from_neighbours(indices, lost, int(rung.codebook.ema_count.argmax()))

    @torch.no_grad()
    def compress_tile(self, x: Tensor, quality, effort: int = 0) -> dict:
        """Code one tile ``(1, 3, h, w)`` in [0, 1]; returns ``{"idx": bytes}``."""
        return {"idx": self.code_indices(self.encode_indices(x, quality)[0].cpu().numpy(), quality)}

    @torch.no_grad()
    def decompress_tile(self, streams: dict, quality, size: tuple[int, int], prefix: str = "",
                        lost: np.ndarray | None = None) -> Tensor:
        """Decode one tile's ``{"idx": bytes}`` to ``(1, 3, h, w)`` in [0, 1]; ``lost``: ``(h/16,
        w/16)`` bool, index positions to treat as lost (:meth:`restore_indices`)."""
        grid = self.grid_shape(*size)
        idx = self.read_indices(streams["idx"], quality, grid, prefix + "idx")
        if lost is not None:
            idx = self.restore_indices(idx, lost, quality)
        return self.decode_indices(torch.from_numpy(idx).view(1, *grid), quality, size)

    def estimate_bits(self, x: Tensor, quality) -> float:
        """The payload in bits for ``x`` ``(1, 3, H, W)``, tile by tile as :meth:`compress` codes
        them: ``log2(K)`` per index (the bytes add at most 7 padding bits per tile); with a prior,
        what its coding tables charge for the image's indices (rANS adds its final state, 32 to
        64 bits, and the rounding to 32-bit words per tile)."""
        grids = [(top, left, th, tw) for top, left, th, tw in tiles(*x.shape[-2:], self.config.tile)]
        if self.prior is None:
            bits = self.bits_per_index(quality)
            return float(sum(bits * math.prod(self.grid_shape(th, tw)) for _, _, th, tw in grids))
        size = self.rung(quality).size
        return float(sum(vq_prior.estimate_bits(self.coding_prior(), size, self.encode_indices(
            x[..., top : top + th, left : left + tw], quality)[0].cpu().numpy()) for top, left, th, tw in grids))

    def loss_masks(self, bitstream: Bitstream, fraction: float, seed: int = 0, rows: bool = False) -> list:
        """Simulated losses for :meth:`decompress`: per tile, ``(h/16, w/16)`` bool with
        ``round(fraction * n)`` index positions (``rows``: whole index rows) chosen by a seeded RNG
        (:func:`~licodec.codec.vq_prior.loss_mask`, salted by the tile's number)."""
        grid = check_tiling(bitstream, self.config.tile, self.codec_id)
        return [vq_prior.loss_mask(*self.grid_shape(th, tw), fraction, seed, rows, salt=i)
                for i, (_, _, th, tw) in enumerate(grid)]

    @torch.no_grad()
    def compress(self, x: Tensor, quality, effort: int = 0) -> Bitstream:
        """``x``: ``(1, 3, H, W)`` RGB in [0, 1]. Returns a :class:`Bitstream`.

        ``effort`` is accepted for the common interface and changes nothing: the rate is fixed by
        the codebook size and the nearest code is chosen at every effort."""
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise LicodecError(f"compress expects a (1, 3, H, W) tensor, got {tuple(x.shape)}")
        q = self.check_quality(quality)
        check_effort(effort)
        streams, tile = compress_tiles(x, self.config.tile, lambda t: self.compress_tile(t, q))
        return Bitstream(codec_id=self.codec_id, weights_sha256=self.weights_sha256, quality=q,
                         height=x.shape[-2], width=x.shape[-1], tile=tile, streams=streams)

    def check_geometry(self, bitstream: Bitstream) -> list[tuple[int, int, int, int]]:
        """Refuse (BitstreamError), before anything is allocated or decoded, a quality, tiling, set
        of sub-streams or sub-stream length that :meth:`compress` never writes for the declared
        image size; returns the tile grid. An ``alpha`` sub-stream is left to :mod:`licodec.api`."""
        try:
            q = self.check_quality(bitstream.quality)
        except LicodecError as e:
            raise BitstreamError(f"bitstream declares an invalid quality: {e}") from None
        grid = check_tiling(bitstream, self.config.tile, self.codec_id)
        bits = self.bits_per_index(q)
        counts = {tile_prefix(i, len(grid)) + "idx": math.prod(self.grid_shape(th, tw))
                  for i, (_, _, th, tw) in enumerate(grid)}
        check_stream_names(bitstream, counts, self.codec_id)
        for name, count in counts.items():
            n_bytes = len(bitstream.streams[name])
            if self.prior is not None:  # rANS: whole 32-bit words, 2 to 1 per coded symbol
                rans.check_length(n_bytes, vq_prior.stream_symbols(count), f"sub-stream {name}")
            elif n_bytes != packed_length(count, bits):
                raise BitstreamError(f"sub-stream {name} is {n_bytes} bytes; "
                                     f"{self.codec_id} writes {packed_length(count, bits)} at quality {q:g}")
        return grid

    @torch.no_grad()
    def decompress(self, bitstream: Bitstream, lost_mask=None) -> Tensor:
        """Returns ``(1, 3, H, W)`` in [0, 1]: a pure function of the bits (only the decoder
        network computes in floating point; the prior's tables come from a float64 network).

        ``lost_mask``: index positions to treat as lost (a simulated damaged transmission; see the
        module docstring): one ``(h/16, w/16)`` bool array per tile (a list, or one array for an
        image in one tile; :meth:`loss_masks` makes seeded ones). The sub-streams are decoded
        and checked whole first; the lost indices are then predicted (:meth:`restore_indices`).
        All-false masks decode exactly as no mask."""
        grid = self.check_geometry(bitstream)
        q = float(bitstream.quality)
        masks = [None] * len(grid)
        if lost_mask is not None:
            masks = [lost_mask] if isinstance(lost_mask, np.ndarray) or torch.is_tensor(lost_mask) else list(lost_mask)
            if len(masks) != len(grid):
                raise LicodecError(f"{len(masks)} lost masks for {len(grid)} tiles")
            masks = [np.asarray(m, dtype=bool) for m in masks]
            for m, (_, _, th, tw) in zip(masks, grid):
                if m.shape != self.grid_shape(th, tw):
                    raise LicodecError(f"a lost mask of shape {m.shape} for a tile of "
                                       f"{self.grid_shape(th, tw)} indices")
        out = torch.empty(1, 3, bitstream.height, bitstream.width)
        for i, (top, left, th, tw) in enumerate(grid):
            prefix = tile_prefix(i, len(grid))
            streams = {"idx": bitstream.stream(prefix + "idx")}
            out[..., top : top + th, left : left + tw] = self.decompress_tile(streams, q, (th, tw), prefix, masks[i])
        return out
