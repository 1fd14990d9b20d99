"""A low-delay learned video codec: I-frames from an image codec, P-frames by conditional coding.

P-frames follow DCVC (Li, Li & Lu 2021, "Deep Contextual Video Compression", NeurIPS): the
frame is not coded as a residual over its prediction; instead a *context* (features of the
reference, warped by the decoded motion) conditions the analysis, the synthesis and the
entropy model (the temporal prior) of a mean-scale hyperprior (Minnen et al. 2018). The
synthesis output is added to the warped reference (a skip: an untrained codec outputs the
motion-compensated prediction, which shortens training on CPU; the latent is still coded
given the context, not as a residual). Motion is
estimated by a classical optical flow (DIS, :mod:`licodec.codec.motion`) at the encoder and
coded by a learned flow autoencoder with its own hyperprior (as the motion coders of DVC, Lu
et al. 2019). Variable rate by gain vectors per quality on both latents (Cui et al. 2021).

Determinism: every computation that builds a reference frame or chooses a CDF table runs in
float64 at coding time (the decoder side: flow synthesis, warping, context, temporal prior,
hyper-synthesis, frame synthesis, and the I-frame codec's synthesis), and reference frames are
rounded to 8 bits. Encoder and decoder therefore rebuild the same references at any thread
count; the encoder decodes what it writes (closed loop).

Shapes: frames ``(B, 3, H, W)`` RGB in [0, 1]; inside, padded to multiples of 64 (replicated
edges). Latents at 1/16 resolution, hyper-latents at 1/64; the context at full resolution.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from licodec._compat import compressai_core
from licodec.codec.base import (CodecOutput, GeometricQualities, StoredConfig, crop, interpolated_gains,
                                pad_to_multiple, quality_tensor)
from licodec.codec.blocks import ResidualBlock
from licodec.codec.hyperprior import _conv, _deconv, hyper_transforms
from licodec.codec.latent import ConditionalHyperpriorLatentCodec, HyperpriorLatentCodec
from licodec.codec.motion import estimate_flow, warp
from licodec.codec.refine import check_effort
from licodec.entropy import rans
from licodec.entropy.models import default_scale_table
from licodec.errors import BitstreamError, LicodecError, WeightsError

GDN = compressai_core().GDN
FLOW_SCALE = 0.25  # flows (pixels) enter the motion transforms times this


@dataclass(frozen=True)
class VideoConfigBase(StoredConfig):
    """What every video codec's config holds; stored beside the weights.

    intra: registry name of the image codec that codes I-frames (see intra_quality_offset).
    intra_weights: the hash (16 hex digits) of the intra weights it was trained with; "" until
    built, when it becomes the installed ones'.
    motion_N, motion_M: hidden and latent channels of the flow autoencoder.
    num_qualities, lambda_min, lambda_max: qualities 1..Q with geometric lambdas (loss
    ``lambda * 255^2 * MSE + bpp``), those of the intra codec by default.
    i_period: default distance between I-frames.
    flow_preset: DIS preset of the encoder's motion estimation (ultrafast, fast, medium).
    motion_quality_offset: the motion coder runs at the frame's quality plus this (at most Q), so
    that motion can be coded finer than the rest of the frame; encoder and decoder both apply it.
    intra_quality_offset: I-frames are coded at the frame quality plus this (at most Q): every
    P-frame of the period predicts from them, so finer I-frames pay (as x264's ``ipratio``).
    p_quality_offsets: the k-th P-frame after an I-frame (k = 1, 2, ...) is coded at the frame
    quality plus ``p_quality_offsets[k - 1]`` (within 1..Q; 0 past the tuple's end): a quality
    schedule over the I-period, known to encoder and decoder (:meth:`VideoCodecBase.frame_quality`).
    """

    intra: str = "hyperprior-ctx"
    intra_weights: str = ""
    motion_N: int = 64
    motion_M: int = 64
    num_qualities: int = 8
    lambda_min: float = 0.0018
    lambda_max: float = 0.18
    i_period: int = 32
    flow_preset: str = "medium"
    scale_levels: int = 512
    scale_max: float = 64.0
    motion_quality_offset: float = 0.0
    intra_quality_offset: float = 0.0
    p_quality_offsets: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "p_quality_offsets", tuple(float(v) for v in self.p_quality_offsets))
        if self.i_period < 1:
            raise ValueError(f"i_period must be at least 1, got {self.i_period}")
        if self.flow_preset not in ("ultrafast", "fast", "medium"):
            raise ValueError(f"unknown DIS preset {self.flow_preset!r}")


@dataclass(frozen=True)
class VideoCodecConfig(VideoConfigBase):
    """Sizes of :class:`ConditionalVideoCodec` (:class:`VideoConfigBase`'s, and N, M: hidden and
    latent channels of the frame transforms; context: channels of the context)."""

    N: int = 64
    M: int = 96
    context: int = 32


def _analysis(cin: int, n: int, m: int) -> nn.Sequential:
    """``(B, cin, H, W) -> (B, m, H/16, W/16)``."""
    return nn.Sequential(_conv(cin, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m))


def _synthesis(m: int, n: int, cout: int) -> nn.Sequential:
    """``(B, m, h, w) -> (B, cout, 16h, 16w)``."""
    return nn.Sequential(_deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
                         _deconv(n, n), GDN(n, inverse=True), _deconv(n, cout))


def _prior(c: int, n: int, m: int) -> nn.Sequential:
    """The temporal prior's encoder: context ``(B, c, H, W) -> (B, m, H/16, W/16)``."""
    act = nn.LeakyReLU
    return nn.Sequential(_conv(c, n), act(), _conv(n, n), act(), _conv(n, n), act(), _conv(n, m))


class DecoderSide(nn.Module):
    """Everything the decoder runs after entropy decoding (and the encoder runs to rebuild the
    reference): flow synthesis, context, frame synthesis and reconstruction."""

    def __init__(self, c: VideoCodecConfig) -> None:
        super().__init__()
        k = c.context
        self.flow_synthesis = _synthesis(c.motion_M, c.motion_N, 2)
        self.features = nn.Sequential(nn.Conv2d(3, k, 3, padding=1), ResidualBlock(k))
        self.context_refine = nn.Sequential(nn.Conv2d(k + 3, k, 3, padding=1), ResidualBlock(k))
        self.prior = _prior(k, c.N, c.M)
        self.synthesis = _synthesis(c.M, c.N, k)
        self.reconstruct = nn.Sequential(nn.Conv2d(2 * k, k, 3, padding=1), ResidualBlock(k),
                                         nn.LeakyReLU(), nn.Conv2d(k, 3, 3, padding=1))
        nn.init.zeros_(self.reconstruct[-1].weight)  # a new codec outputs the prediction itself
        nn.init.zeros_(self.reconstruct[-1].bias)

    def context(self, reference: Tensor, flow: Tensor) -> Tensor:
        """Reference ``(B, 3, H, W)`` and flow -> context ``(B, k, H, W)``."""
        warped = warp(self.features(reference), flow)
        return self.context_refine(torch.cat([warped, warp(reference, flow)], dim=1))

    def frame(self, y_hat: Tensor, context: Tensor, prediction: Tensor) -> Tensor:
        """Decoded (ungained) frame latent, context and the motion-compensated reference
        ``prediction`` -> frame ``(B, 3, H, W)`` (unclamped): the prediction plus what the
        synthesis makes of the latent in that context."""
        return prediction + self.reconstruct(torch.cat([self.synthesis(y_hat), context], dim=1))


class VideoCodecBase(GeometricQualities, nn.Module):
    """What every licodec video codec shares: the intra codec (I-frames, pinned by its weights'
    hash), qualities and gain vectors, geometry, 8-bit references, the refusal of single images,
    the motion coder (DIS flow coded by a learned autoencoder with its own hyperprior) and the
    I-frame paths. Subclasses add the P-frame: ``forward``, ``encode_frame``, ``decode_frame``,
    ``check_streams``, ``freeze``/``refresh``."""

    stride = 64
    objective = "video"

    def _build_common(self, config) -> None:
        from licodec.api import load

        intra = load(config.intra)
        if not config.intra_weights:
            config = type(config)(**{**config.to_dict(), "intra_weights": intra.weights_sha256})
        self.config = config
        self.codec_id = "video"
        self.weights_sha256 = "0" * 16
        self._intra = [intra]  # a list: the intra codec's parameters are not this module's
        c = config
        self.motion_analysis = _analysis(2, c.motion_N, c.motion_M)
        self.motion_latent = HyperpriorLatentCodec(*hyper_transforms(c.motion_N, c.motion_M), z_channels=c.motion_N,
                                                   scale_table=self._scale_table())
        self.motion_log_gain = nn.Parameter(self._initial_log_gain(c.motion_M))
        self.motion_log_inv_gain = nn.Parameter(-self._initial_log_gain(c.motion_M))
        self._decoder64 = None

    # -- coding state: frozen entropy tables and the float64 decoder side ----------------
    def _decoder_side(self) -> nn.Module:
        """The module the decoder runs after entropy decoding (float64 at coding time)."""
        raise NotImplementedError

    def _entropy_layers(self) -> list[nn.Module]:
        """The latent codecs whose entropy tables :meth:`freeze` freezes."""
        raise NotImplementedError

    def freeze(self) -> None:
        for layer in self._entropy_layers():
            layer.freeze()
        self._decoder64 = None

    def refresh(self) -> None:
        for layer in self._entropy_layers():
            layer.refresh()
        self._decoder64 = None

    def _float64(self) -> tuple[nn.Module, nn.Module]:
        """float64 copies of the decoder side and of the intra codec's synthesis (cached)."""
        if self._decoder64 is None or self.training:
            self._decoder64 = (copy.deepcopy(self._decoder_side()).double().eval(),
                               copy.deepcopy(self.intra.g_s).double().eval())
        return self._decoder64

    def _initial_log_gain(self, channels: int) -> Tensor:
        """``(Q, channels)``: half the log of each quality's lambda over their geometric mean."""
        c = self.config
        lam = torch.tensor([self.lambda_for_quality(q) for q in range(1, c.num_qualities + 1)])
        return (0.5 * torch.log(lam / math.sqrt(c.lambda_min * c.lambda_max)))[:, None].repeat(1, channels)

    def _scale_table(self) -> list[float]:
        return default_scale_table(max_scale=self.config.scale_max, levels=self.config.scale_levels)

    # -- the intra codec ----------------------------------------------------------
    @property
    def intra(self) -> nn.Module:
        intra = self._intra[0]
        if intra.weights_sha256 != self.config.intra_weights:
            raise WeightsError(f"this video codec was trained with {self.config.intra} weights "
                               f"{self.config.intra_weights}, but the installed ones are {intra.weights_sha256}")
        return intra

    def _gains(self, quality: Tensor, log_gain: Tensor, log_inv_gain: Tensor, dtype=None) -> tuple[Tensor, Tensor]:
        """Gain and inverse gain ``(B, C, 1, 1)`` for qualities ``(B,)`` (:func:`interpolated_gains`)."""
        return interpolated_gains(quality, log_gain, log_inv_gain, dtype)

    def _latent_shape(self, h: int, w: int, channels: int) -> tuple:
        hp, wp = -(-h // self.stride) * self.stride, -(-w // self.stride) * self.stride
        return (1, channels, hp // 64, wp // 64)

    @staticmethod
    def _to_uint8(x: Tensor, size: tuple[int, int]) -> Tensor:
        """A decoded frame as the 8-bit reference: ``(1, 3, H, W)`` uint8, cropped."""
        return crop(x, size).clamp(0, 1).mul(255).round().to(torch.uint8)

    def check_frame_size(self, h: int, w: int, error=LicodecError) -> None:
        """Frames fit one intra tile (2048 a side for hyperprior-ctx), which also bounds the decoder's
        float64 memory; ``error`` (BitstreamError for a file's header) otherwise."""
        tile = self.intra.config.tile
        if h < 1 or w < 1 or (tile > 0 and (h > tile or w > tile)):
            raise error(f"video frames of {w}x{h}: {self.codec_id} codes frames of 1 to {tile} pixels a side")

    def compress(self, x: Tensor, quality, effort: int = 0):
        """A single image is not a video: :class:`LicodecError` naming the video path instead."""
        raise LicodecError(f"{self.codec_id} codes videos, not single images: licodec encode CLIP.y4m -m "
                           f"{self.codec_id} (or licodec.video.coding.compress)")

    def decompress(self, bitstream):
        raise LicodecError(f"{self.codec_id} decodes .lic videos (licodec decode CLIP.lic), not image files")

    def stream_names(self, frame_type: str) -> tuple[str, ...]:
        return ("z", "y") if frame_type == "I" else ("motion_z", "motion_y", "z", "y")

    # -- frames -------------------------------------------------------------------
    @torch.no_grad()
    def encode_frame(self, x: Tensor, quality: float, reference: Tensor | None,
                     effort: int = 0) -> tuple[dict, Tensor]:
        """Code frame ``x`` ``(1, 3, H, W)`` in [0, 1]: an I-frame when ``reference`` is None,
        else a P-frame against ``reference`` (``(1, 3, H, W)`` uint8, the previous decoded frame).
        Returns the named sub-streams and the decoded frame (uint8, the next reference), exactly
        what :meth:`decode_frame` rebuilds from the streams.

        ``effort`` (0-9, :mod:`licodec.codec.refine`): encode time spent refining the latents that
        the intra codec codes (I-frames, and the residuals of residual P-frames) for the frame's
        rate-distortion cost; the decoder and the file format do not change."""
        q = self.check_quality(quality)
        effort = check_effort(effort)
        h, w = x.shape[-2:]
        if reference is None:
            self.check_frame_size(h, w)
            streams = self.intra.compress_tile(x, float(self._intra_quality(torch.tensor([q]))), effort)
            return streams, self.decode_frame(streams, q, None, (h, w))
        if reference.shape != (1, 3, h, w):
            raise LicodecError(f"reference of shape {tuple(reference.shape)} for a frame of {w}x{h}")
        streams, x_hat = self._encode_p(x, torch.tensor([q]), reference, effort)
        return streams, self._to_uint8(x_hat, (h, w))

    def decode_frame(self, streams: dict, quality: float, reference: Tensor | None,
                     size: tuple[int, int]) -> Tensor:
        """Inverse of :meth:`encode_frame`: ``(1, 3, H, W)`` uint8."""
        return self._decode_frame(streams, quality, reference, size, show=False)[0]

    def decode_frame_and_show(self, streams: dict, quality: float, reference: Tensor | None,
                              size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """:meth:`decode_frame` (the next reference) and the frame to show, ``(1, 3, H, W)`` uint8
        each; a codec with a post-filter shows its P-frames filtered (otherwise the same tensor)."""
        return self._decode_frame(streams, quality, reference, size, show=True)

    @torch.no_grad()
    def _decode_frame(self, streams: dict, quality: float, reference: Tensor | None,
                      size: tuple[int, int], show: bool) -> tuple[Tensor, Tensor]:
        """The reference and the shown frame (uint8; the same tensor unless ``show`` and the codec
        filters what it shows)."""
        qt = torch.tensor([self.check_quality(quality)])
        self.check_streams(streams, "I" if reference is None else "P", size)
        if reference is None:
            frame = self._to_uint8(self._intra_decode(streams, self._intra_quality(qt), size, self._float64()[1]), size)
            return frame, frame
        ref, _ = pad_to_multiple(reference.double() / 255, self.stride)
        frame, shown = self._decode_p_and_show(streams, qt, ref, size, show)
        kept = self._to_uint8(frame, size)
        return kept, (kept if shown is frame else self._to_uint8(shown, size))

    def _decode_p_and_show(self, streams: dict, qt: Tensor, ref: Tensor, size: tuple[int, int],
                           show: bool) -> tuple[Tensor, Tensor]:
        """A P-frame (float64, padded) and the frame to show (the same tensor: no post-filter)."""
        frame = self._decode_p(streams, qt, ref, size)
        return frame, frame

    # -- motion ---------------------------------------------------------------------
    def _motion_forward(self, flow: Tensor, q: Tensor, flow_synthesis: nn.Module,
                        coded_scales: bool = False) -> tuple[Tensor, dict]:
        """Training: the encoder's flow ``(B, 2, H, W)`` -> decoded flow and the motion likelihoods."""
        mg, mig = self._gains(self._motion_quality(q), self.motion_log_gain, self.motion_log_inv_gain)
        m = self.motion_analysis(flow * FLOW_SCALE) * mg
        m_hat, m_lik = self.motion_latent(m, coded_scales=coded_scales)
        return flow_synthesis(m_hat * mig) / FLOW_SCALE, {"motion_y": m_lik["y"], "motion_z": m_lik["z"]}

    def _encode_motion(self, x: Tensor, reference: Tensor, qt: Tensor,
                       flow_synthesis64: nn.Module) -> tuple[dict, Tensor]:
        """DIS flow from ``x`` to the uint8 ``reference``, coded: the motion sub-streams and the
        decoded flow (float64, padded to the stride)."""
        current = (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        flow = torch.from_numpy(estimate_flow(current, reference[0].permute(1, 2, 0).numpy(),
                                              self.config.flow_preset))[None]
        flow, _ = pad_to_multiple(flow, self.stride)
        mg, _ = self._gains(self._motion_quality(qt), self.motion_log_gain, self.motion_log_inv_gain)
        m = self.motion_analysis(flow * FLOW_SCALE) * mg
        streams, m_hat = self.motion_latent.compress(m.contiguous())
        return {"motion_z": streams["z"], "motion_y": streams["y"]}, self._decode_flow(m_hat, qt, flow_synthesis64)

    def frame_quality(self, quality: float, position: int) -> float:
        """The quality of the frame ``position`` frames after the last I-frame (0: the I-frame
        itself, whose own offset :meth:`encode_frame` applies) in a video coded at ``quality``:
        ``quality`` plus ``config.p_quality_offsets[position - 1]``, within 1..Q."""
        offsets = self.config.p_quality_offsets
        if not 1 <= position <= len(offsets):
            return float(quality)
        return float(min(max(float(quality) + offsets[position - 1], 1.0), float(self.config.num_qualities)))

    def _intra_quality(self, q: Tensor) -> Tensor:
        """The I-frames' quality for frame qualities ``q`` (``config.intra_quality_offset`` higher, at most Q)."""
        return (q + self.config.intra_quality_offset).clamp(max=float(self.config.num_qualities))

    def _motion_quality(self, q: Tensor) -> Tensor:
        """The motion coder's quality for frame qualities ``q`` (``config.motion_quality_offset`` higher)."""
        return (q + self.config.motion_quality_offset).clamp(max=float(self.config.num_qualities))

    def _decode_flow(self, m_hat: Tensor, qt: Tensor, flow_synthesis64: nn.Module) -> Tensor:
        _, mig = self._gains(self._motion_quality(qt), self.motion_log_gain, self.motion_log_inv_gain, torch.float64)
        return flow_synthesis64(m_hat.double() * mig) / FLOW_SCALE

    def _decompress_motion(self, streams: dict, qt: Tensor, size: tuple[int, int],
                           flow_synthesis64: nn.Module) -> Tensor:
        m_hat = self.motion_latent.decompress({"z": streams["motion_z"], "y": streams["motion_y"]},
                                              self._latent_shape(*size, self.config.motion_N), prefix="motion_")
        return self._decode_flow(m_hat, qt, flow_synthesis64)

    # -- the intra codec's frames (I-frames; residuals for residual coding) --------------
    def _intra_decode(self, streams: dict, qt: Tensor, size: tuple[int, int], intra_synthesis64: nn.Module,
                      correction=None) -> Tensor:
        """The intra codec's decode of ``streams`` (``z``, ``y``) in float64, padded ``(1, 3, H', W')``;
        ``correction``: a factor on its final scales (a residual prior's), None for its own."""
        intra = self.intra
        _, ig = intra._gains(qt)
        extra = {} if correction is None else {"correction": correction}
        y_hat = intra.latent.decompress(streams, intra._latent_shape(*size), **extra)
        return intra_synthesis64(y_hat.double() * ig.double())

    def _check_counts(self, streams: dict, frame_type: str, size: tuple[int, int], p_counts: dict) -> None:
        """Names and lengths of a frame record's sub-streams; ``p_counts``: symbols per hyper-latent
        position of each P-frame stream."""
        names = self.stream_names(frame_type)
        if set(streams) != set(names):
            raise BitstreamError(f"a {frame_type}-frame has sub-streams {sorted(streams)}, expected {sorted(names)}")
        n, m = self.intra.config.N, self.intra.config.M
        counts = {"z": n, "y": m * 16} if frame_type == "I" else p_counts
        _, _, zh, zw = self._latent_shape(*size, 1)
        for name, per in counts.items():
            rans.check_length(len(streams[name]), per * zh * zw, name)


class ConditionalVideoCodec(VideoCodecBase):
    """Low-delay learned video codec: DCVC-style conditional P-frames on DIS motion (see the
    module docstring for the papers), I-frames by the image codec ``config.intra``.

    Training: ``forward(x, quality, reference, flow)`` codes one P-frame ``x`` ``(B, 3, H, W)``
    in [0, 1] (multiples of 64) against ``reference`` (same shape, a decoded frame) with the
    encoder's flow ``(B, 2, H, W)`` (pixels); returns x_hat, likelihoods of ``y, z`` (frame) and
    ``motion_y, motion_z`` and bits per frame.
    Coding: :meth:`encode_frame` / :meth:`decode_frame` code one frame given the previous
    decoded frame; :mod:`licodec.video` streams whole videos through the container.
    """

    stride = 64
    objective = "video"

    def __init__(self, config: VideoCodecConfig = VideoCodecConfig()) -> None:
        super().__init__()
        self._build_common(config)
        c = self.config
        self.analysis = _analysis(3 + c.context, c.N, c.M)
        h_a, h_s = hyper_transforms(c.N, c.M)
        fuse = nn.Sequential(nn.Conv2d(3 * c.M, 2 * c.M, 1), nn.LeakyReLU(), nn.Conv2d(2 * c.M, 2 * c.M, 1))
        self.latent = ConditionalHyperpriorLatentCodec(h_a, h_s, fuse, z_channels=c.N, scale_table=self._scale_table())
        self.decoder = DecoderSide(c)
        self.log_gain = nn.Parameter(self._initial_log_gain(c.M))
        self.log_inv_gain = nn.Parameter(-self._initial_log_gain(c.M))

    def _decoder_side(self) -> DecoderSide:
        return self.decoder

    def _entropy_layers(self) -> list[nn.Module]:
        return [self.motion_latent, self.latent]

    # -- training -----------------------------------------------------------------
    def forward(self, x: Tensor, quality, reference: Tensor, flow: Tensor, coded_scales: bool = False) -> CodecOutput:
        """See the class docstring. ``features["prediction"]``: the reference warped by the
        decoded flow (a motion-only prediction, for warm-up losses)."""
        q = quality_tensor(quality, x.shape[0]).to(x.device)
        g, ig = self._gains(q, self.log_gain, self.log_inv_gain)
        flow_hat, likelihoods = self._motion_forward(flow, q, self.decoder.flow_synthesis, coded_scales)
        context = self.decoder.context(reference, flow_hat)
        prediction = warp(reference, flow_hat)
        y = self.analysis(torch.cat([x, context], dim=1)) * g
        y_hat, y_lik = self.latent(y, self.decoder.prior(context), coded_scales=coded_scales)
        x_hat = self.decoder.frame(y_hat * ig, context, prediction)
        likelihoods = {"y": y_lik["y"], "z": y_lik["z"], **likelihoods}
        bits = sum(-torch.log2(lik).flatten(1).sum(1) for lik in likelihoods.values())
        return CodecOutput(x_hat=x_hat, likelihoods=likelihoods, bits=bits,
                           features={"prediction": prediction, "flow_hat": flow_hat})

    # -- coding -------------------------------------------------------------------
    def _encode_p(self, x: Tensor, qt: Tensor, reference: Tensor, effort: int = 0) -> tuple[dict, Tensor]:
        """A P-frame's sub-streams and its decode (float64, padded). ``effort`` changes nothing
        here: the conditional latent is not refined (only I-frames are)."""
        dec, _ = self._float64()
        motion_streams, flow_hat = self._encode_motion(x, reference, qt, dec.flow_synthesis)
        padded_x, _ = pad_to_multiple(x.float(), self.stride)
        ref, _ = pad_to_multiple(reference.double() / 255, self.stride)
        context = dec.context(ref, flow_hat)
        g, _ = self._gains(qt, self.log_gain, self.log_inv_gain)
        y = self.analysis(torch.cat([padded_x, context.float()], dim=1)) * g
        streams, y_hat = self.latent.compress(y.contiguous(), dec.prior(context))
        _, ig = self._gains(qt, self.log_gain, self.log_inv_gain, torch.float64)
        return {**motion_streams, **streams}, dec.frame(y_hat * ig, context, warp(ref, flow_hat))

    def check_streams(self, streams: dict, frame_type: str, size: tuple[int, int]) -> None:
        """:class:`BitstreamError` for a frame record whose sub-streams this codec never writes
        for a ``size`` frame (names, or lengths no rANS stream of that many symbols has)."""
        c = self.config
        self._check_counts(streams, frame_type, size,
                           {"motion_z": c.motion_N, "motion_y": c.motion_M * 16, "z": c.N, "y": c.M * 16})

    def _decode_p(self, streams: dict, qt: Tensor, ref: Tensor, size: tuple[int, int]) -> Tensor:
        """A P-frame from its sub-streams and the padded float64 reference (float64, padded)."""
        dec, _ = self._float64()
        flow_hat = self._decompress_motion(streams, qt, size, dec.flow_synthesis)
        context = dec.context(ref, flow_hat)
        y_hat = self.latent.decompress(streams, self._latent_shape(*size, self.config.N), dec.prior(context))
        _, ig = self._gains(qt, self.log_gain, self.log_inv_gain, torch.float64)
        return dec.frame(y_hat * ig, context, warp(ref, flow_hat))


def frame_tensor(rgb: np.ndarray) -> Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float32 in [0, 1]."""
    rgb = np.ascontiguousarray(rgb)
    if not rgb.flags.writeable:  # e.g. a frame read from a memory map; torch wants writable memory
        rgb = rgb.copy()
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)


def frame_array(x: Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` uint8 -> ``(H, W, 3)`` uint8."""
    return x[0].permute(1, 2, 0).contiguous().numpy()

