"""A generative decoder on top of a base codec: a conditional rectified flow in pixel space.

The base codec's bitstream is the whole file, so one file decodes either way; the only addition, when
the decoder's config lists ``texture_temperatures``, is a one- to four-byte ``texture`` sub-stream (below).
The base decode ``x_b`` (its MSE-trained reconstruction) is the explicit representation; the
flow generates the detail it lost, the residual ``r = x - x_b``, conditioned on ``x_b`` and the
base quality. The idea is that of HFD (Hoogeboom et al. 2023, "High-Fidelity Image Compression
with Score-based Generative Models") and CDC (Yang & Mandt 2023, "Lossy Image Compression with
Conditional Diffusion Models"), trained from scratch here with a rectified-flow objective
(Liu et al. 2023, "Flow Straight and Fast"; Lipman et al. 2023, "Flow Matching").

Training (``licodec.train.flow_objective``): with the residual scaled by ``residual_scale``,
``x_t = (1 - t) * r + t * eps``, ``eps ~ N(0, I)``, ``t`` logit-normal; the network predicts the
velocity ``v = eps - r``. An optional adversarial fine-tune (after Sauer et al. 2023, "Adversarial
Diffusion Distillation") adds a PatchGAN on the one-step reconstructions, so that a few Euler
steps give sharp detail rather than the mean residual.

Decoding at realism ``R`` in [0, 1] with ``S`` steps: the full path is integrated with ``S`` Euler
steps from ``x_1 = T * eps`` (``T`` the config's sampling temperature; 1: the learnt distribution,
below 1 less invented detail, as in Kingma & Dhariwal 2018, "Glow") down to ``t = 0``, and ``R``
scales the generated residual: ``x_b + R * r_hat``. With ``low_band_octaves = k`` the residual's
band below ``1/2^k`` of the resolution (a ``k``-level binomial pyramid, as in Burt & Adelson
1983, "The Laplacian Pyramid as a Compact Image Code") is removed first: the base decode keeps its
own coarse content, which its bits describe, and the flow adds detail only. On the first 4
training photos at base qualities 2/6 (T 0.9) the sample's coarsest SWD level was 11% worse than
the base decode's while the finer levels improved; ``k = 2`` made the mean SWD gain 24.1% instead
of 21.4% and halved the PSNR cost (0.66 dB instead of 1.23). ``R = 0`` takes no step and returns
the base decode exactly; ``R = 1`` is the full sample. Entering the path at ``t = R`` instead (SDEdit, Meng
et al. 2022) was measured first and rejected: on the first 6 training photos at base qualities
2/4/6/8, SDEdit at ``R = 0.5`` made SWD 2.0-3.8% worse than the base decode, while scaling the
full sample's residual by 0.5 made it 3.6-5.8% better, at 0.08-0.12 dB of PSNR. ``eps`` comes
from a generator seeded by the SHA-256 of the bitstream's bytes, so a file decodes to the same
pixels in every run.

Side information (the issue's "dual representation"; like AV1's film-grain parameters, which the
encoder estimates and the decoder synthesises from): how much detail to invent suits some images
and not others (on the first training photos, one fixed temperature made the finest SWD level of
one photo 29% worse than the base decode while it halved it on others). With
``texture_temperatures`` set, the encoder samples the decode at each of those temperatures, exactly
as the decoder will (same noise), and keeps the one with the lowest SWD against the original among
those that cost at most ``texture_psnr_budget`` dB of PSNR against the base decode; the file
carries it in a ``texture`` sub-stream of one byte (the temperature in units of 1/200, so the file
describes itself whatever the installed config lists), and its bytes count in the rate. With
``texture_gains`` also set, the encoder chooses the pair (temperature, gain of the generated
residual) jointly, each temperature sampled once and scaled by every gain, and a second byte
carries the gain (units of 1/100; a one-byte sub-stream means gain 1); the decode is then
``x_b + R * gain * r_hat``, so realism 1 is the strength the encoder chose. On training photos
13-20 (q 2 / 6, encoder's choice, measured SWD) gains 1.0-1.5 over the 6 temperatures gave SWD
37.4% / 38.5% below the base decode against 36.2% / 36.9% for the temperature alone, for
1.23 / 1.55 dB of PSNR instead of 0.93 / 1.07; on Kodak it added 0.5-1.1 points at realism 1, on
the CLIC subset none, so the shipped config does not list gains (vqgan-flow's TRAINING.md). With
``texture_draws`` above 1 the encoder also keeps the best of several noise draws (a third byte;
draw ``k`` seeds the noise by :func:`draw_seed`): the temperature is chosen on the file's own
draw, then the other draws are sampled at it, so ``N`` draws cost ``N - 1`` more samples. The
noise seed hashes the file without that sub-stream, so that the encoder's trial and the decode
draw the same noise (an alpha channel or a grey/16-bit header, which :mod:`licodec.api` adds after
the codec, changes the noise: the choice then stays valid but was made on another draw). On an
image larger than ``texture_window`` pixels the encoder tries the candidates on a central window of
about that many pixels (the decoder's noise and base decode there), so that its cost is bounded
(six 4-step samples of a Kodak-sized window whatever the photo's size); the window's edges see
less context than in the full decode, so the choice there is an estimate of the full decode's.

With ``texture_grains`` the encoder also chooses a synthesized grain (film-grain synthesis, as
AV1's, reduced to one number): white Gaussian noise of one of those standard deviations (8-bit
code values; 0: none), seeded by :func:`grain_seed` of the file; a fourth byte carries it (units
of 1/16; the sub-stream then has all four bytes), and the decode is
``x_b + R * (gain * r_hat + grain * n)``. It is chosen after the other settings, on the whole
image's decode at those settings (one more sample when they were chosen on a window; the grain's
scores cost no sample), because a window may miss the flat parts where grain hurts: chosen jointly
with the temperature on the central window, grain made SWD x 10^3 of a CLIC lake photo with a
clean sky (977d69...) at q4 56.5 instead of 43.7. It is for the fine sensor noise the generator
does not make: on the CLIC subset's jellyfish photo (dark water with sensor grain) at q4 the base
decode's SWD is 51.9; the generated residual alone made it worse at every temperature and gain
(53.9 at best, temperature 0.5 and gain 0.25; 63.2 for the encoder's choice without grain), while
temperature 0.91 plus grain 3 gave 42.4. On Kodak photos with natural texture, grain above 1 made
SWD worse.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.codec.base import CodecOutput, StoredConfig, crop, pad_to_multiple, quality_tensor
from licodec.entropy.container import Bitstream
from licodec.errors import BitstreamError, LicodecError, WeightsError

#: the generative decoder's side-information sub-stream: one byte, the sampling temperature times
#: :data:`TEXTURE_UNITS` (1..TEXTURE_UNITS)
TEXTURE_STREAM = "texture"
TEXTURE_UNITS = 200
#: the second byte of a ``texture`` sub-stream, when the config lists ``texture_gains``: the gain
#: of the generated residual times :data:`TEXTURE_GAIN_UNITS` (1..255)
TEXTURE_GAIN_UNITS = 100
#: the third byte of a ``texture`` sub-stream, when the config's ``texture_draws`` is above 1: which
#: of the file's noise draws the decoder samples from (0: the file's own, :func:`file_noise_seed`;
#: ``k``: :func:`draw_seed`), so the encoder may keep the best of several samples
TEXTURE_DRAWS_MAX = 256
#: the fourth byte of a ``texture`` sub-stream, when the config lists ``texture_grains``: the
#: standard deviation of the synthesized grain, in 8-bit code values, times :data:`TEXTURE_GRAIN_UNITS` (0..255)
TEXTURE_GRAIN_UNITS = 16
#: patch positions of the encoder's SWD (:meth:`FlowDecoder.choose_texture`): not the metric's
#: default seed, so that the choice is not fitted to the very patches an evaluation measures
ENCODER_SWD_SEED = 1


@dataclass(frozen=True)
class FlowDecoderConfig(StoredConfig):
    """Sizes of :class:`FlowDecoder`; stored beside the weights.

    base: registry name of the base codec whose decodes the flow refines.
    base_weights: the base weights' hash (16 hex digits) the flow was trained on; "" until a
    model is built, when it becomes the installed base weights' hash.
    qualities: the base qualities ``(lo, hi)`` it was trained at (the generator's quality range).
    channels: widths at 1/2, 1/4 and 1/8 resolution (the input is pixel-unshuffled by 2 first).
    blocks: residual blocks per level, on the way down and again on the way up.
    embed: width of the time and quality embedding.
    residual_scale: the residual ``x - x_b`` (in [0, 1] units) is multiplied by this before the flow.
    steps: default Euler steps of a decode.
    temperature: the noise the sampler starts from is ``temperature * N(0, I)`` (1: the learnt
    distribution itself; below 1, less invented detail: a sampling choice, measured after training).
    low_band_octaves: ``k``: the generated residual's band below ``1/2^k`` of the resolution is
    removed before it is added (0: kept whole; below ``len(channels)``, so that the smallest
    padded image, one stride, keeps 4 samples a side for the filter; a decoding choice, measured
    after training like the temperature).
    texture_temperatures: sampling temperatures the encoder chooses from per image (side
    information, see the module docstring; each a multiple of ``1 / TEXTURE_UNITS`` in (0, 1]);
    empty: no ``texture`` sub-stream, every decode at ``temperature``.
    texture_gains: gains of the generated residual (its strength) the encoder chooses from jointly
    with the temperature, each a multiple of ``1 / TEXTURE_GAIN_UNITS`` in (0, 2.55]; empty: gain 1
    (and, without draws or grains, a one-byte ``texture`` sub-stream), else at least two bytes
    (temperature, gain).
    texture_draws: how many noise draws the encoder tries (1: only the file's own); above 1, the
    best temperature (and gain) is found on draw 0, then draws ``1 .. texture_draws - 1`` are
    sampled at that temperature (each with every gain), the best of all these kept, and the
    ``texture`` sub-stream has three bytes (temperature, gain, draw).
    texture_psnr_budget: the encoder's limit on a candidate's PSNR loss against the base decode, dB.
    texture_window: the encoder's search runs on a central window of at most this many pixels
    (same aspect, multiples of the stride; 0: always on the whole image).
    texture_grains: standard deviations (8-bit code values, multiples of
    ``1 / TEXTURE_GRAIN_UNITS`` in [0, 255 / TEXTURE_GRAIN_UNITS]) of a white Gaussian grain the
    encoder chooses from jointly with the other settings (film-grain synthesis: fine sensor noise
    the generator does not make); the decoder adds it, seeded by the file (:func:`grain_seed`),
    times the realism; empty: no grain, else the ``texture`` sub-stream has four bytes.
    """

    base: str = "hyperprior-vr"
    base_weights: str = ""
    qualities: tuple = (1.0, 4.0)
    channels: tuple = (64, 96, 128)
    blocks: tuple = (1, 2, 2)
    embed: int = 128
    residual_scale: float = 8.0
    steps: int = 4
    temperature: float = 1.0
    low_band_octaves: int = 0
    texture_temperatures: tuple = ()
    texture_gains: tuple = ()
    texture_draws: int = 1
    texture_psnr_budget: float = 2.0
    texture_window: int = 0
    texture_grains: tuple = ()
    # sampler settings chosen after export (benchmarks/flow_temperature.py --set-config writes them
    # into config.json): the weights file's stored config may hold other values; each with its
    # label in FlowDecoder.decode_settings (the version of licodec eval's rows)
    DECODE_CHOICES = {"steps": "steps", "temperature": "temperature", "low_band_octaves": "low band",
                      "texture_temperatures": "texture", "texture_gains": "texture gains",
                      "texture_draws": "texture draws",
                      "texture_psnr_budget": "texture budget",
                      "texture_window": "texture window",
                      "texture_grains": "texture grains"}

    def __post_init__(self) -> None:
        for name in ("qualities", "channels", "blocks", "texture_temperatures", "texture_gains",
                     "texture_grains"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "texture_grains", tuple(float(s) for s in self.texture_grains))
        object.__setattr__(self, "qualities", tuple(float(q) for q in self.qualities))
        if len(self.channels) != len(self.blocks) or not self.channels:
            raise ValueError("channels and blocks need one entry per level")
        if len(self.qualities) != 2 or not self.qualities[0] <= self.qualities[1]:
            raise ValueError(f"qualities must be (lo, hi) with lo <= hi, got {self.qualities}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if not 0 < self.temperature <= 1:
            raise ValueError(f"temperature must be in (0, 1], got {self.temperature}")
        for t in self.texture_temperatures:
            if not 0 < t <= 1 or abs(t * TEXTURE_UNITS - round(t * TEXTURE_UNITS)) > 1e-9:
                raise ValueError(f"texture temperatures must be multiples of 1/{TEXTURE_UNITS} in (0, 1], got {t}")
        for g in self.texture_gains:
            if not 0 < g <= 255 / TEXTURE_GAIN_UNITS or abs(g * TEXTURE_GAIN_UNITS - round(g * TEXTURE_GAIN_UNITS)) > 1e-9:
                raise ValueError(f"texture gains must be multiples of 1/{TEXTURE_GAIN_UNITS} in (0, "
                                 f"{255 / TEXTURE_GAIN_UNITS:g}], got {g}")
        for s in self.texture_grains:
            if not 0 <= s <= 255 / TEXTURE_GRAIN_UNITS or abs(s * TEXTURE_GRAIN_UNITS - round(s * TEXTURE_GRAIN_UNITS)) > 1e-9:
                raise ValueError(f"texture grains must be multiples of 1/{TEXTURE_GRAIN_UNITS} in [0, "
                                 f"{255 / TEXTURE_GRAIN_UNITS:g}], got {s}")
        if self.texture_grains and not any(self.texture_grains):
            raise ValueError("texture_grains need a deviation above 0 (grain 0 alone is no choice)")
        if self.texture_grains and not self.texture_temperatures:
            raise ValueError("texture_grains need texture_temperatures (the grain is chosen jointly with them)")
        if self.texture_gains and not self.texture_temperatures:
            raise ValueError("texture_gains need texture_temperatures (the gain is chosen jointly with them)")
        if not 1 <= self.texture_draws <= TEXTURE_DRAWS_MAX:
            raise ValueError(f"texture_draws must lie in [1, {TEXTURE_DRAWS_MAX}], got {self.texture_draws}")
        if self.texture_draws > 1 and not self.texture_temperatures:
            raise ValueError("texture_draws need texture_temperatures (the draw is chosen jointly with them)")
        if not self.texture_psnr_budget >= 0:
            raise ValueError(f"texture_psnr_budget must be at least 0, got {self.texture_psnr_budget}")
        if self.texture_window < 0:
            raise ValueError(f"texture_window must be at least 0, got {self.texture_window}")
        if not 0 <= self.low_band_octaves < len(self.channels):
            raise ValueError(f"low_band_octaves must lie in [0, {len(self.channels) - 1}], got {self.low_band_octaves}")

    @property
    def stride(self) -> int:
        return 2 ** len(self.channels)  # unshuffle by 2, then one downsampling between levels


def fourier_embedding(v: Tensor, dim: int, max_period: float = 1000.0) -> Tensor:
    """Sinusoidal embedding ``(B, dim)`` of scalars ``v`` ``(B,)`` (in [0, 1] here)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=v.device) / half)
    args = 1000.0 * v.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class FiLMBlock(nn.Module):
    """``x + conv(silu(conv(silu(x) * (1 + scale) + shift)))`` with ``(scale, shift)`` from the
    embedding; the identity at initialisation (the last convolution starts at zero)."""

    def __init__(self, channels: int, embed: int) -> None:
        super().__init__()
        self.film = nn.Linear(embed, 2 * channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        scale, shift = self.film(emb)[..., None, None].chunk(2, dim=1)
        h = F.silu(x) * (1 + scale) + shift
        return x + self.conv2(F.silu(self.conv1(h)))


class FlowUNet(nn.Module):
    """The velocity network: ``(x_t, x_b, t, q) -> v``, all images ``(B, 3, H, W)`` with ``H, W``
    multiples of :attr:`FlowDecoderConfig.stride`; ``t`` ``(B,)`` in [0, 1]; ``q`` ``(B,)`` the
    base quality mapped to [0, 1]. A U-Net on the pixel-unshuffled input (1/2 resolution)."""

    def __init__(self, config: FlowDecoderConfig) -> None:
        super().__init__()
        c, e = config.channels, config.embed
        self.embed = nn.Sequential(nn.Linear(2 * e, e), nn.SiLU(), nn.Linear(e, e))
        self.stem = nn.Conv2d(6 * 4, c[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(nn.ModuleList(FiLMBlock(ch, e) for _ in range(n))
                                         for ch, n in zip(c, config.blocks))
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(c[:-1], c[1:]))
        self.ups = nn.ModuleList(nn.Conv2d(b, a * 4, 1) for a, b in zip(c[:-1], c[1:]))
        self.merges = nn.ModuleList(nn.Conv2d(2 * a, a, 1) for a in c[:-1])
        self.up_blocks = nn.ModuleList(nn.ModuleList(FiLMBlock(ch, e) for _ in range(n))
                                       for ch, n in zip(c[:-1], config.blocks[:-1]))
        self.head = nn.Conv2d(c[0], 3 * 4, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.embed_dim = e

    def forward(self, x_t: Tensor, x_b: Tensor, t: Tensor, q: Tensor) -> Tensor:
        emb = self.embed(torch.cat([fourier_embedding(t, self.embed_dim), fourier_embedding(q, self.embed_dim)], 1))
        h = self.stem(F.pixel_unshuffle(torch.cat([x_t, 2 * x_b - 1], dim=1), 2))
        skips = []
        for level, blocks in enumerate(self.down_blocks):
            if level:
                h = self.downs[level - 1](h)
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
        for level in reversed(range(len(self.up_blocks))):
            h = F.pixel_shuffle(self.ups[level](h), 2)
            h = self.merges[level](torch.cat([h, skips[level]], dim=1))
            for block in self.up_blocks[level]:
                h = block(h, emb)
        return F.pixel_shuffle(self.head(F.silu(h)), 2)


_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _binomial_blur(x: Tensor) -> Tensor:
    """The separable 5-tap binomial filter on ``(B, C, H, W)``, reflected at the borders."""
    kernel = (_BINOMIAL[:, None] * _BINOMIAL[None]).to(x)
    c = x.shape[1]
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel.expand(c, 1, 5, 5), groups=c)


def low_band(x: Tensor, octaves: int) -> Tensor:
    """The band of ``x`` ``(B, C, H, W)`` (``H``, ``W`` multiples of ``2^octaves``) below
    ``1/2^octaves`` of its resolution: ``octaves`` binomial reductions (blur, keep every second
    sample), then as many expansions (zero insertion, blur, times 4), as the Laplacian pyramid's
    ``pyrDown``/``pyrUp``. ``x - low_band(x, k)`` keeps the ``k`` finest octaves."""
    y = x
    for _ in range(octaves):
        y = _binomial_blur(y)[..., ::2, ::2]
    for _ in range(octaves):
        up = torch.zeros(y.shape[:2] + (2 * y.shape[2], 2 * y.shape[3]), dtype=y.dtype, device=y.device)
        up[..., ::2, ::2] = y
        y = 4 * _binomial_blur(up)
    return y


def noise_seed(data: bytes) -> int:
    """The decode noise's seed: the first 8 bytes of the SHA-256 of the file's bytes."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little") & ((1 << 63) - 1)


def file_noise_seed(bitstream: Bitstream) -> int:
    """:func:`noise_seed` of the file without its ``texture`` sub-stream (a file without one: of
    its bytes), so that the encoder's trials draw the noise the decoder will draw."""
    if TEXTURE_STREAM in bitstream.streams:
        bitstream = dataclasses.replace(bitstream, streams={k: v for k, v in bitstream.streams.items()
                                                            if k != TEXTURE_STREAM})
    return noise_seed(bitstream.to_bytes())


def texture_settings(bitstream: Bitstream) -> tuple[float, float, int, float] | None:
    """``(temperature, gain, draw, grain)`` from a file's ``texture`` sub-stream (one byte: the
    temperature, gain 1, draw 0, no grain; two: temperature and gain; three: and the draw; four:
    and the grain), or None without one."""
    code = bitstream.streams.get(TEXTURE_STREAM)
    if code is None:
        return None
    if len(code) not in (1, 2, 3, 4) or not 1 <= code[0] <= TEXTURE_UNITS or code[1:2] == b"\0":
        raise BitstreamError(f"malformed texture sub-stream ({len(code)} bytes"
                             + (f", values {list(code)})" if len(code) in (1, 2, 3, 4) else ")")
                             + f": a temperature byte from 1 to {TEXTURE_UNITS}, then optionally a gain byte "
                             "from 1 to 255, a draw byte and a grain byte, expected")
    return (code[0] / TEXTURE_UNITS, code[1] / TEXTURE_GAIN_UNITS if len(code) >= 2 else 1.0,
            code[2] if len(code) >= 3 else 0, code[3] / TEXTURE_GRAIN_UNITS if len(code) == 4 else 0.0)


def texture_code(config: FlowDecoderConfig, temperature: float, gain: float = 1.0, draw: int = 0,
                 grain: float = 0.0) -> bytes:
    """The ``texture`` sub-stream that :func:`texture_settings` reads back: the temperature byte,
    then the gain byte when ``config`` lists gains, draws or grains, then the draw byte when it has
    draws or grains, then the grain byte when it has grains."""
    grains = bool(config.texture_grains)
    draws = config.texture_draws > 1 or grains
    return bytes([round(temperature * TEXTURE_UNITS)] + ([round(gain * TEXTURE_GAIN_UNITS)] if config.texture_gains or draws else [])
                 + ([draw] if draws else []) + ([round(grain * TEXTURE_GRAIN_UNITS)] if grains else []))


def draw_seed(seed: int, draw: int) -> int:
    """The noise seed of the file's ``draw``-th draw: ``seed`` (:func:`file_noise_seed`) itself for
    draw 0, else :func:`noise_seed` of its 8 bytes and the draw's byte."""
    return seed if draw == 0 else noise_seed(seed.to_bytes(8, "little") + bytes([draw]))


def grain_seed(seed: int) -> int:
    """The seed of the synthesized grain's noise: :func:`noise_seed` of the file's seed
    (:func:`file_noise_seed`) and ``b"grain"``, the same whatever the draw."""
    return noise_seed(seed.to_bytes(8, "little") + b"grain")


def _noise(padded: Tensor, generator: torch.Generator | None) -> Tensor:
    """The sampler's ``N(0, I)`` of ``padded``'s shape (float32, on its device): one draw shared by
    the decoder and the encoder's texture search."""
    return torch.randn(padded.shape, generator=generator, dtype=torch.float32).to(padded.device)


def search_window(size: tuple[int, int], stride: int, pixels: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the encoder's texture search in an image of ``size``
    ``(H, W)``: the whole image when ``pixels`` is 0 or the image has at most that many pixels;
    else a central window of the image's aspect with at most ``pixels`` pixels, its sides and
    corner multiples of ``stride`` (so the window's noise and padding are the full decode's)."""
    h, w = size
    if not pixels or h * w <= pixels:
        return 0, 0, h, w
    scale = math.sqrt(pixels / (h * w))
    wh = min(h, max(stride, int(h * scale) // stride * stride))
    ww = min(w, max(stride, pixels // wh // stride * stride))
    top, left = (h - wh) // 2 // stride * stride, (w - ww) // 2 // stride * stride
    return top, left, wh, ww


def check_realism(realism: float) -> float:
    r = float(realism)
    if not 0.0 <= r <= 1.0 or math.isnan(r):
        raise LicodecError(f"realism must lie in [0, 1], got {realism}")
    return r


def check_steps(steps: int) -> int:
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= int(steps) <= 64:
        raise LicodecError(f"steps must be an integer from 1 to 64, got {steps}")
    return int(steps)


class FlowDecoder(nn.Module):
    """A generative decoder for the base codec ``config.base`` (HFD-style residual rectified flow;
    see the module docstring). Follows the codec protocol:

    * ``forward(x, quality)``: the base's training output with ``x_hat`` replaced by a full
      sample (``R = 1``); the flow's own loss is :mod:`licodec.train.flow_objective`'s.
    * ``compress(x, quality)``: the base codec's bitstream, unchanged (its codec id).
    * ``decompress(bitstream, realism=1, steps=None)``: ``(1, 3, H, W)`` in [0, 1].

    The base codec is loaded with its installed weights and is not part of this module's
    weights; a flow trained on other base weights than the installed ones refuses to load.
    """

    objective = "flow"

    def __init__(self, config: FlowDecoderConfig) -> None:
        super().__init__()
        from licodec.zoo import get_entry

        entry = get_entry(config.base)
        if getattr(entry.config_cls, "base", None) is not None:
            raise ValueError(f"the base of a generative decoder must be a codec, not {config.base!r}")
        base = _load_base(config.base)
        if not config.base_weights:
            config = dataclasses.replace(config, base_weights=base.weights_sha256)
        self.config = config
        self._base = [base]  # a list: the base's parameters are not this module's
        self.unet = FlowUNet(config)
        self.stride = config.stride
        self.codec_id = config.base
        self.weights_sha256 = ""

    @property
    def base(self) -> nn.Module:
        base = self._base[0]
        if base.weights_sha256 != self.config.base_weights:
            raise WeightsError(f"this generative decoder was trained on {self.config.base} weights "
                               f"{self.config.base_weights}, but the installed ones are {base.weights_sha256}")
        return base

    # -- quality ------------------------------------------------------------------
    @property
    def quality_range(self) -> tuple[float, float]:
        return self.config.qualities

    @property
    def integer_qualities(self) -> bool:
        return getattr(self._base[0], "integer_qualities", False)

    def check_quality(self, quality) -> float:
        q = self.base.check_quality(quality)
        lo, hi = self.quality_range
        if not lo <= q <= hi:
            raise LicodecError(f"quality must be between {lo:g} and {hi:g} for the generative decoder of "
                               f"{self.config.base} (the base qualities it was trained at), got {quality}")
        return q

    def _q01(self, quality: Tensor) -> Tensor:
        lo, hi = self.quality_range
        return (quality.float() - lo) / max(hi - lo, 1e-9)

    # -- the flow -----------------------------------------------------------------
    def base_decode(self, x: Tensor, quality) -> tuple[CodecOutput, Tensor]:
        """The base codec's training-free reconstruction of ``x`` ``(B, 3, H, W)`` (multiples of
        the base's stride) at ``quality``: its output and ``x_b`` clamped to [0, 1], no gradient."""
        base = self.base
        was_training = base.training
        base.eval()
        try:
            with torch.no_grad():
                out = base(x, quality)
        finally:
            base.train(was_training)
        return out, out.x_hat.float().clamp(0, 1)

    def velocity(self, x_t: Tensor, x_b: Tensor, t: Tensor, quality: Tensor) -> Tensor:
        """``v`` for the scaled residual path ``x_t`` at times ``t`` ``(B,)``."""
        return self.unet(x_t, x_b, t, self._q01(quality))

    def sample(self, x_b: Tensor, quality, realism: float = 1.0, steps: int | None = None,
               generator: torch.Generator | None = None, temperature: float | None = None,
               gain: float = 1.0, grain: float = 0.0, grain_generator: torch.Generator | None = None) -> Tensor:
        """Refine base decodes ``x_b`` ``(B, 3, H, W)`` in [0, 1]: a residual is sampled from
        ``t = 1`` to 0 in ``steps`` Euler steps (from noise times ``temperature``, by default the
        config's) and added scaled by ``realism * gain``; with ``grain`` (standard deviation in 8-bit
        code values) above 0, white Gaussian noise from ``grain_generator`` (None: torch's global
        generator) of that deviation times ``realism`` is added too. Returns ``(B, 3, H, W)``
        clamped to [0, 1]; ``x_b`` itself when ``realism`` is 0."""
        realism = check_realism(realism)
        steps = check_steps(self.config.steps if steps is None else steps)
        if realism == 0.0:
            return x_b.clamp(0, 1)
        padded, size = pad_to_multiple(x_b, self.stride)
        eps = _noise(padded, generator)
        out = padded + realism * gain * self._residual(padded, eps, quality, steps, temperature)
        if grain:
            out = out + realism * grain / 255 * _noise(padded, grain_generator)
        return crop(out, size).clamp(0, 1)

    def _residual(self, padded: Tensor, eps: Tensor, quality, steps: int, temperature: float | None) -> Tensor:
        """The generated residual (in [0, 1] units, its low band removed) for ``padded`` (multiples
        of the stride), sampled from ``temperature * eps`` (same shape)."""
        q = quality_tensor(quality, padded.shape[0]).to(padded.device)
        temperature = self.config.temperature if temperature is None else temperature
        return self.detail(self.integrate(temperature * eps, padded, q, steps)) / self.config.residual_scale

    @property
    def decode_settings(self) -> str:
        """The sampler's settings that are not in the weights (results of other settings are stale)."""
        c = self.config
        choices = [(name, label) for name, label in c.DECODE_CHOICES.items()  # (versions before side information)
                   if (c.texture_temperatures or not name.startswith("texture")) and (c.texture_gains or name != "texture_gains")
                   and (c.texture_draws > 1 or name != "texture_draws") and (c.texture_grains or name != "texture_grains")]

        def show(v) -> str:
            return ",".join(f"{t:g}" for t in v) if isinstance(v, tuple) else f"{v:g}"

        return " ".join(f"{label} {show(getattr(c, name))}" for name, label in choices)

    def detail(self, r: Tensor) -> Tensor:
        """The generated residual ``r`` ``(B, 3, H, W)`` without its band below ``1/2^k`` of the
        resolution (``k`` the config's ``low_band_octaves``; ``r`` itself when 0)."""
        k = self.config.low_band_octaves
        return r - low_band(r, k) if k else r

    def integrate(self, x: Tensor, x_b: Tensor, quality: Tensor, steps: int, grad_last: bool = False) -> Tensor:
        """The Euler path of the scaled residual from ``x`` at ``t = 1`` to ``t = 0`` in ``steps``
        uniform steps (``x``, ``x_b`` ``(B, 3, H, W)``, multiples of the stride; ``quality`` ``(B,)``).
        Returns the scaled residual at ``t = 0``. With ``grad_last``, only the last step is
        differentiable (the training objective's adversarial loss on the decoder's own samples)."""
        times = torch.linspace(1.0, 0.0, steps + 1)
        grad = torch.is_grad_enabled()
        for i, (t, s) in enumerate(zip(times[:-1].tolist(), times[1:].tolist())):
            with torch.set_grad_enabled(grad and (not grad_last or i == steps - 1)):
                v = self.velocity(x, x_b, torch.full((x.shape[0],), t, device=x.device), quality)
                x = x + (s - t) * v
        return x

    # -- protocol -----------------------------------------------------------------
    def forward(self, x: Tensor, quality, features: bool = False) -> CodecOutput:
        """``x``: ``(B, 3, H, W)`` in [0, 1], multiples of the base's stride. The base's rate terms
        and a full sample (``R = 1``, default steps) as ``x_hat``."""
        out, x_b = self.base_decode(x, quality)
        return CodecOutput(x_hat=self.sample(x_b, quality), likelihoods=out.likelihoods, bits=out.bits)

    def freeze(self) -> None:
        """Nothing to freeze: the flow chooses no entropy tables (the base's are its own)."""

    def compress(self, x: Tensor, quality, effort: int = 0) -> Bitstream:
        """The base codec's bitstream of ``x`` ``(1, 3, H, W)`` in [0, 1]; with
        ``texture_temperatures`` in the config, plus the ``texture`` sub-stream chosen by
        :meth:`choose_texture`."""
        self.check_quality(quality)
        bitstream = self.base.compress(x, quality, effort=effort)
        c = self.config
        if c.texture_temperatures:
            bitstream.streams[TEXTURE_STREAM] = texture_code(c, *self.choose_texture(x, bitstream))
        return bitstream

    @torch.no_grad()
    def choose_texture(self, x: Tensor, bitstream: Bitstream) -> tuple[float, float, int, float]:
        """The encoder's side information ``(temperature, gain, draw, grain)`` for ``x`` ``(1, 3, H, W)`` in
        [0, 1] coded as ``bitstream`` (without a texture sub-stream): of ``texture_temperatures``
        times ``texture_gains`` (gain 1 without them) on draw 0, and with ``texture_draws`` above 1
        of draws ``1 ..`` at draw 0's best temperature (each gain), the candidate whose full sample
        (realism 1, default steps, the decoder's noise) has the lowest SWD against ``x``
        (:func:`licodec.eval.pyramid_metrics.swd`, with other patch positions than its default
        seed) among those within ``texture_psnr_budget`` dB of the base decode's PSNR; without
        such a candidate, the one with the smallest PSNR loss. Each temperature is sampled once
        (the gains scale its residual). On an image of more than ``texture_window`` pixels, all of
        this on the window :func:`search_window` places. Then, with ``texture_grains``, the grain
        by the same rule on the whole image: its decode at the chosen setting (one more sample
        when a window was searched) plus each grain (grain 0 when none is within the budget)."""
        from licodec.eval.metrics import psnr
        from licodec.eval.pyramid_metrics import SWDReference

        def u8(t: Tensor):
            return (t[0].float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

        c = self.config
        x_full, x_b = x, self.base.decompress(bitstream)
        padded, size = pad_to_multiple(x_b, self.stride)
        top, left, h, w = search_window(size, self.stride, c.texture_window)
        ph, pw = -(-h // self.stride) * self.stride, -(-w // self.stride) * self.stride  # the whole padded image, or h, w
        x, x_b = x[..., top : top + h, left : left + w], x_b[..., top : top + h, left : left + w]
        window = padded[..., top : top + ph, left : left + pw]
        ref = u8(x)
        base_psnr, score = psnr(u8(x_b), ref), SWDReference(ref, seed=ENCODER_SWD_SEED)
        steps, seed = check_steps(c.steps), file_noise_seed(bitstream)
        residuals = {}  # (temperature, draw) -> the whole image's generated residual (kept for the grain)
        whole = (top, left, h, w) == (0, 0, *size)

        def choice(trials):
            allowed = [trial for trial in trials if trial[1] <= c.texture_psnr_budget]
            return (min(allowed, key=lambda tr: tr[2]) if allowed else min(trials, key=lambda tr: tr[1]))[0]

        def eps_of(draw):
            return _noise(padded, torch.Generator().manual_seed(draw_seed(seed, draw)))  # the decoder's draw

        def sample(temperatures, draw):
            eps = eps_of(draw)[..., top : top + ph, left : left + pw].clone()  # a copy: the whole image's noise is freed
            for t in temperatures:
                residual = self._residual(window, eps, bitstream.quality, steps, t)
                if whole and c.texture_grains:
                    residuals[t, draw] = residual
                for g in c.texture_gains or (1.0,):
                    dec = u8(crop(window + g * residual, (h, w)))
                    yield (t, g, draw, 0.0), base_psnr - psnr(dec, ref), score(dec)

        trials = list(sample(c.texture_temperatures, 0))
        best_t = choice(trials)[0]
        for draw in range(1, c.texture_draws):
            trials += sample((best_t,), draw)
        best = choice(trials)
        if not c.texture_grains:
            return best
        # the grain: on the whole decode at the chosen setting (a window need not show the image's flat parts)
        t, g, draw, _ = best
        residual = residuals[t, draw] if whole else self._residual(padded, eps_of(draw), bitstream.quality, steps, t)
        residuals.clear()
        decoded = padded + g * residual
        noise = _noise(padded, torch.Generator().manual_seed(grain_seed(seed)))
        if not whole:  # the window's reference and base PSNR are the whole image's otherwise
            ref = u8(x_full)
            base_psnr, score = psnr(u8(crop(padded, size)), ref), SWDReference(ref, seed=ENCODER_SWD_SEED)

        def with_grain(s):
            dec = u8(crop(decoded + s / 255 * noise if s else decoded, size))
            return (t, g, draw, s), base_psnr - psnr(dec, ref), score(dec)

        return choice([with_grain(s) for s in c.texture_grains])

    @torch.no_grad()
    def decompress(self, bitstream: Bitstream, realism: float = 1.0, steps: int | None = None) -> Tensor:
        """Decode a base-codec bitstream to ``(1, 3, H, W)`` in [0, 1] at ``realism``; the noise is
        seeded by the bitstream's bytes, so the same file gives the same pixels in every run."""
        realism = check_realism(realism)
        if bitstream.codec_id != self.config.base:
            raise LicodecError(f"the generative decoder of {self.config.base} cannot decode a "
                               f"{bitstream.codec_id} file")
        base = self.base
        if bitstream.weights_sha256 != base.weights_sha256:
            raise WeightsError(f"bitstream was written with {bitstream.codec_id} weights {bitstream.weights_sha256}, "
                               f"but the installed weights are {base.weights_sha256}")
        texture = texture_settings(bitstream)  # a malformed one is refused before decoding
        x_b = base.decompress(bitstream)
        if realism == 0.0:
            return x_b
        self.check_quality(bitstream.quality)
        temperature, gain, draw, grain = texture or (None, 1.0, 0, 0.0)
        seed = file_noise_seed(bitstream)
        generator = torch.Generator().manual_seed(draw_seed(seed, draw))
        return self.sample(x_b, bitstream.quality, realism, steps, generator, temperature, gain, grain,
                           torch.Generator().manual_seed(grain_seed(seed)))


def _load_base(name: str) -> nn.Module:
    from licodec import api

    try:
        return api.load(name)
    except WeightsError as e:
        raise WeightsError(f"a generative decoder needs its base codec's weights: {e}") from None
