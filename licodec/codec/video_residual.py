"""A low-delay learned video codec with residual P-frames coded by the image codec itself.

P-frames follow DVC (Lu et al. 2019, "DVC: An End-to-end Deep Video Compression Framework",
CVPR): motion-compensated prediction, then the residual ``x - prediction`` is coded. Here the
residual coder is the *frozen* intra codec (``config.intra``, hyperprior-ctx by default): the
residual, offset by 1/2, is coded as an image at the frame's quality, so P-frames get the image
codec's whole training for free and only the motion coder learns (DIS optical flow at the encoder,
:mod:`licodec.codec.motion`, coded by a learned flow autoencoder with its own hyperprior, as in
DVC). Training minimises ``lambda * 255^2 * MSE + bpp`` through the frozen residual coder.

With ``config.residual_prior`` > 0 the residual's entropy model is the intra codec's with its
final scales rescaled from the prediction and the decoded motion
(:mod:`licodec.codec.residual_prior`), which the decoder has before it reads the residual; the
decoded frames are the same with or without it (at encode effort 0), only the bytes change. The prior is trained alone,
on the rate of the rounded latents (``licodec train --model video-dvc --init WEIGHTS --prior``).

With ``config.post_filter`` > 0 the decoder shows each P-frame (prediction plus decoded residual)
through a learned post-filter that also sees the prediction (:mod:`licodec.codec.post_filter`);
the next frame's reference is the unfiltered frame, so the file and the references do not depend
on the filter (:meth:`ResidualVideoCodec.decode_frame_and_show`). It is trained alone, on the
shown frame's distortion (``licodec train --model video-dvc --init WEIGHTS --post-filter``).
I-frames are shown as decoded.

With ``config.residual_adapter`` > 0 the residual is analysed and synthesised by the image codec's
transforms with low-rank adapters beside each convolution (:mod:`licodec.codec.residual_adapter`),
which fit them to residuals; I-frames keep the image codec's own. They are trained alone (with
``--prior``, together with the residual prior) on the P-frame's rate and unfiltered distortion
(``licodec train --model video-dvc --init WEIGHTS --residual-adapter``).

With ``config.flow_refiner`` > 0 the decoded flow is refined from the prediction it makes (its
edges drawn from the picture, :mod:`licodec.codec.flow_refiner`) and the frame predicted again with
it; it costs no bit. It trains with the adapters (``licodec train --model video-dvc --init WEIGHTS
--residual-adapter --flow-refiner``).

Determinism: as for :mod:`licodec.codec.video`, the decoder side (flow synthesis, the flow refiner, warping, the
residual prior and its analysis of the prediction, the intra codec's synthesis of I-frames and
residuals, and the post-filter) runs in float64 at coding time and references are rounded to
8 bits, so encoder and decoder rebuild the same references and choose the same tables at any
thread count.

Shapes: frames ``(B, 3, H, W)`` RGB in [0, 1]; inside, padded to multiples of 64 (replicated edges).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from licodec.codec.base import CodecOutput, pad_to_multiple, quality_tensor
from licodec.codec.context import SpaceChannelContextLatentCodec
from licodec.codec.flow_refiner import FlowRefiner
from licodec.codec.motion import warp
from licodec.codec.post_filter import PostFilter
from licodec.codec.residual_adapter import ResidualAdapter
from licodec.codec.residual_prior import ResidualPrior
from licodec.codec.video import VideoCodecBase, VideoConfigBase, _synthesis
from licodec.errors import LicodecError

RESIDUAL_OFFSET = 0.5  # residuals in [-1/2, 1/2] are coded as images in [0, 1]


@dataclass(frozen=True)
class ResidualVideoConfig(VideoConfigBase):
    """Sizes of :class:`ResidualVideoCodec`: those of :class:`~licodec.codec.video.VideoConfigBase`
    (the intra codec, which here also codes the residuals, and the motion coder), and
    residual_prior: the width of the residual's conditional prior
    (:class:`~licodec.codec.residual_prior.ResidualPrior`); 0: none, the residual is coded with
    the intra codec's own entropy model; post_filter: the width of the P-frames' post-filter
    (:class:`~licodec.codec.post_filter.PostFilter`); 0: none; residual_adapter: the rank of the
    low-rank adapters that fit the image codec's transforms to residuals
    (:class:`~licodec.codec.residual_adapter.ResidualAdapter`); 0: none, residuals are coded with
    the image codec's own transforms; flow_refiner: the width of the decoded flow's refiner
    (:class:`~licodec.codec.flow_refiner.FlowRefiner`); 0: none, frames are predicted with the
    decoded flow as it is."""

    residual_prior: int = 0
    post_filter: int = 0
    residual_adapter: int = 0
    flow_refiner: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.residual_prior < 0:
            raise ValueError(f"residual_prior must not be negative, got {self.residual_prior}")
        if self.post_filter < 0:
            raise ValueError(f"post_filter must not be negative, got {self.post_filter}")
        if self.residual_adapter < 0:
            raise ValueError(f"residual_adapter must not be negative, got {self.residual_adapter}")
        if self.flow_refiner < 0:
            raise ValueError(f"flow_refiner must not be negative, got {self.flow_refiner}")


class ResidualVideoCodec(VideoCodecBase):
    """Low-delay learned video codec: DVC-style residual P-frames (see the module docstring),
    the residual and the I-frames coded by the frozen image codec ``config.intra``.

    Training: ``forward(x, quality, reference, flow)`` codes one P-frame ``x`` ``(B, 3, H, W)``
    in [0, 1] (multiples of 64) against ``reference`` (a decoded frame, same shape) with the
    encoder's flow ``(B, 2, H, W)`` (pixels); returns x_hat, the likelihoods of ``motion_y,
    motion_z`` and of the residual's ``y, z``, and bits per frame. Only the motion coder, the
    residual prior, the post-filter, the residual adapters and the flow refiner have parameters;
    gradients reach all but the post-filter through the frozen residual coder.
    Coding: :meth:`encode_frame` / :meth:`decode_frame`, one frame given the previous decoded one.
    """

    def __init__(self, config: ResidualVideoConfig = ResidualVideoConfig()) -> None:
        super().__init__()
        self._build_common(config)
        c = self.config
        self.flow_synthesis = _synthesis(c.motion_M, c.motion_N, 2)
        for p in self.intra.parameters():  # frozen: gradients pass through it to the motion coder
            p.requires_grad_(False)
        self.residual_prior = self._new_residual_prior() if c.residual_prior else None
        self.post_filter = PostFilter(c.post_filter, c.num_qualities) if c.post_filter else None
        self.residual_adapter = self._new_residual_adapter() if c.residual_adapter else None
        self.flow_refiner = FlowRefiner(c.flow_refiner) if c.flow_refiner else None

    def _new_residual_prior(self) -> ResidualPrior:
        if not isinstance(self.intra.latent, SpaceChannelContextLatentCodec):
            raise LicodecError(f"a residual prior rescales the scales of a space-channel context model; {self.config.intra} "
                               "has another entropy model")
        return ResidualPrior(self.intra.config.M, self.config.residual_prior)

    def add_residual_prior(self, hidden: int = 96) -> None:
        """Give weights without a residual prior a new one of width ``hidden``, which starts as the
        identity (the same files as without it); the config then records it."""
        self._add_part("residual_prior", "a residual prior", hidden, self._new_residual_prior)

    def add_post_filter(self, width: int = 24) -> None:
        """Give weights without a post-filter a new one of width ``width``, which starts as the
        identity (the same frames as without it); the config then records it."""
        self._add_part("post_filter", "a post-filter", width,
                       lambda: PostFilter(self.config.post_filter, self.config.num_qualities))

    def add_residual_adapter(self, rank: int = 8) -> None:
        """Give weights without residual adapters new ones of rank ``rank``, which start as the
        identity (the image codec's own transforms, the same files as without them); the config
        then records them."""
        self._add_part("residual_adapter", "residual adapters", rank, self._new_residual_adapter)

    def grow_residual_adapter(self, rank: int) -> None:
        """Raise the residual adapters' rank to ``rank``: the new ranks start at zero, so the
        files are the same as before (:meth:`ResidualAdapter.grown`); the config then records it."""
        if self.residual_adapter is None:
            raise LicodecError(f"{self.codec_id} has no residual adapters to grow")
        if rank < self.residual_adapter.rank:
            raise LicodecError(f"residual adapters grow: rank {rank} is below their rank {self.residual_adapter.rank}")
        self.residual_adapter = self.residual_adapter.grown(self.intra.g_a, self.intra.g_s, rank)
        self.config = dataclasses.replace(self.config, residual_adapter=int(rank))
        self._decoder64 = None

    def add_flow_refiner(self, width: int = 32) -> None:
        """Give weights without a flow refiner a new one of width ``width``, which starts as the
        identity (the same files as without it); the config then records it."""
        self._add_part("flow_refiner", "a flow refiner", width, lambda: FlowRefiner(self.config.flow_refiner))

    def _new_residual_adapter(self) -> ResidualAdapter:
        return ResidualAdapter(self.intra.g_a, self.intra.g_s, self.config.residual_adapter)

    def _residual_transforms(self) -> tuple[nn.Module, nn.Module]:
        """The residual's ``(g_a, g_s)``: the image codec's, adapted if the codec has adapters."""
        intra = self.intra
        if self.residual_adapter is None:
            return intra.g_a, intra.g_s
        return self.residual_adapter.transforms(intra.g_a, intra.g_s)

    def _add_part(self, name: str, what: str, width: int, build) -> None:
        """A new part ``name`` (config field and attribute) of ``width``, built by ``build()``."""
        if getattr(self, name) is not None:
            raise LicodecError(f"{self.codec_id} already has {what}")
        if width < 1:
            raise LicodecError(f"{what} is at least 1 wide, got {width}")
        self.config = dataclasses.replace(self.config, **{name: int(width)})
        setattr(self, name, build().to(self.motion_log_gain.device))
        self._decoder64 = None

    def grow_from(self, source: nn.Module) -> None:
        """Start from another video codec's motion coder (e.g. a ``video-dcvc`` run's)."""
        if not isinstance(source, VideoCodecBase):
            raise ValueError("only another video codec's motion coder can start this one")
        own = dict(self.named_parameters())  # parameters only: the entropy tables are rebuilt below
        theirs = {k.replace("decoder.flow_synthesis.", "flow_synthesis."): v for k, v in source.named_parameters()}
        shared = {k: v.detach() for k, v in theirs.items()
                  if k in own and k.startswith(("motion_", "flow_synthesis."))}
        if len(shared) != len([k for k in own if k.startswith(("motion_", "flow_synthesis."))]) or any(
                own[k].shape != v.shape for k, v in shared.items()):
            raise ValueError("the motion coders differ in size")
        with torch.no_grad():
            for k, v in shared.items():
                own[k].copy_(v)
        self.refresh()

    # -- training -----------------------------------------------------------------
    def forward(self, x: Tensor, quality, reference: Tensor, flow: Tensor, coded_scales: bool = False,
                quantize=None) -> CodecOutput:
        """See the class docstring. ``features["prediction"]``: the motion-compensated prediction.
        ``quantize``: the residual latents' rounding for the rate (e.g. ``ste_round``: the rate of
        the rounded latents, which trains the residual prior); None: additive noise, as the image
        codec trains."""
        q = quality_tensor(quality, x.shape[0]).to(x.device)
        flow_hat, likelihoods = self._motion_forward(flow, q, self.flow_synthesis, coded_scales)
        with torch.autocast(device_type=x.device.type, enabled=False):  # the refiner codes in float64
            flow_hat, prediction = self._predict(reference.float(), flow_hat.float(), self.flow_refiner)
        intra = self.intra
        gain, inv_gain = intra._gains(q)
        g_a, g_s = self._residual_transforms()
        y = g_a(x - prediction + RESIDUAL_OFFSET) * gain
        extra = {}
        if self.residual_prior is not None:
            with torch.autocast(device_type=x.device.type, enabled=False):  # it codes in float64
                features = self.residual_prior.features(prediction.float().clamp(0, 1), reference.float(),
                                                        flow_hat.float())
            extra["correction"] = lambda hyper: self.residual_prior(hyper, features)
        y_hat, residual = intra.latent(y, coded_scales=coded_scales, quantize=quantize, **extra)
        likelihoods = {**residual, **likelihoods}
        bits = sum(-torch.log2(lik).flatten(1).sum(1) for lik in likelihoods.values())
        x_hat = prediction + g_s(y_hat * inv_gain) - RESIDUAL_OFFSET
        features = {"prediction": prediction, "flow_hat": flow_hat, "reference_frame": x_hat}
        if self.post_filter is not None:  # the shown frame; the next reference stays unfiltered
            x_hat = self.post_filter(x_hat, prediction, q)
        return CodecOutput(x_hat=x_hat, likelihoods=likelihoods, bits=bits, features=features)

    @staticmethod
    def _predict(reference: Tensor, flow_hat: Tensor, refiner: nn.Module | None) -> tuple[Tensor, Tensor]:
        """The flow the frame is predicted with (``flow_hat``, refined if there is a ``refiner``)
        and the prediction: ``reference`` warped by it."""
        prediction = warp(reference, flow_hat)
        if refiner is None:
            return flow_hat, prediction
        flow_hat = refiner(flow_hat, prediction)
        return flow_hat, warp(reference, flow_hat)

    # -- coding -------------------------------------------------------------------
    def _decoder_side(self) -> nn.Module:
        side = nn.Module()  # not registered: the weights keep their names
        side.flow_synthesis = self.flow_synthesis
        if self.residual_prior is not None:
            side.residual_prior = self.residual_prior
        if self.post_filter is not None:
            side.post_filter = self.post_filter
        if self.flow_refiner is not None:
            side.flow_refiner = self.flow_refiner
        if self.residual_adapter is not None:  # the adapted synthesis (with the image codec's layers)
            side.residual_synthesis = self._residual_transforms()[1]
        return side


    def _residual_correction(self, side64: nn.Module, prediction: Tensor, reference: Tensor, flow_hat: Tensor):
        """The residual's scale correction for a frame (None without a prior): a function of the
        hyper parameters returning the factor on the final scales, float64 when coding, from the
        float64 ``prediction``, ``reference`` (in [0, 1]) and decoded ``flow_hat`` (padded)."""
        if self.residual_prior is None:
            return None
        features = side64.residual_prior.features(prediction.clamp(0, 1), reference, flow_hat)
        prior32 = None

        def correction(hyper: Tensor) -> Tensor:
            nonlocal prior32
            if hyper.dtype == torch.float64:  # coding: the tables
                return side64.residual_prior(hyper, features)
            if prior32 is None:  # the encoder's refinement of the latents (effort > 0): float32, frozen
                prior32 = copy.deepcopy(side64.residual_prior).float().requires_grad_(False)
            return prior32(hyper, features.to(hyper.dtype))

        return correction

    def _entropy_layers(self) -> list[nn.Module]:
        return [self.motion_latent]

    def _encode_p(self, x: Tensor, qt: Tensor, reference: Tensor, effort: int = 0) -> tuple[dict, Tensor]:
        """A P-frame's sub-streams and its decode (float64, padded): motion, then the residual
        over the prediction (clamped to [-1/2, 1/2]) coded by the intra codec, its latents
        refined at ``effort`` > 0 (the residual's distortion is the frame's)."""
        side64, intra_synthesis = self._float64()
        motion_streams, flow_hat = self._encode_motion(x, reference, qt, side64.flow_synthesis)
        padded_x, _ = pad_to_multiple(x.float(), self.stride)
        ref, _ = pad_to_multiple(reference.double() / 255, self.stride)
        flow_hat, prediction = self._predict(ref, flow_hat, getattr(side64, "flow_refiner", None))
        residual = (padded_x - prediction.float() + RESIDUAL_OFFSET).clamp(0, 1)
        correction = self._residual_correction(side64, prediction, ref, flow_hat)
        streams = self.intra.compress_tile(residual, float(qt), effort, correction, self._residual_transforms())
        residual_hat = self._intra_decode(streams, qt, tuple(x.shape[-2:]),
                                          getattr(side64, "residual_synthesis", intra_synthesis), correction)
        return {**motion_streams, **streams}, prediction + residual_hat - RESIDUAL_OFFSET

    def check_streams(self, streams: dict, frame_type: str, size: tuple[int, int]) -> None:
        """:class:`BitstreamError` for a frame record whose sub-streams this codec never writes for
        a ``size`` frame (names, or lengths no rANS stream of that many symbols has)."""
        c, i = self.config, self.intra.config
        self._check_counts(streams, frame_type, size,
                           {"motion_z": c.motion_N, "motion_y": c.motion_M * 16, "z": i.N, "y": i.M * 16})

    def _decode_p_and_show(self, streams: dict, qt: Tensor, ref: Tensor, size: tuple[int, int],
                           show: bool) -> tuple[Tensor, Tensor]:
        """A P-frame from its sub-streams and the padded float64 reference, and the frame to show:
        with ``show`` and a post-filter, the frame filtered (seeing the prediction); otherwise the
        same tensor (float64, padded)."""
        side64, intra_synthesis = self._float64()
        flow_hat = self._decompress_motion(streams, qt, size, side64.flow_synthesis)
        flow_hat, prediction = self._predict(ref, flow_hat, getattr(side64, "flow_refiner", None))
        correction = self._residual_correction(side64, prediction, ref, flow_hat)
        residual_hat = self._intra_decode(streams, qt, size, getattr(side64, "residual_synthesis", intra_synthesis),
                                          correction)
        frame = prediction + residual_hat - RESIDUAL_OFFSET
        if show and self.post_filter is not None:
            return frame, side64.post_filter(frame, prediction, qt)
        return frame, frame

    def _decode_p(self, streams: dict, qt: Tensor, ref: Tensor, size: tuple[int, int]) -> Tensor:
        """A P-frame from its sub-streams and the padded float64 reference (float64, padded)."""
        return self._decode_p_and_show(streams, qt, ref, size, show=False)[0]
