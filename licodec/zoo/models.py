"""Registrations of the built-in codecs: name, frozen config class, codec class, description.

A codec class is its own builder (``Codec(config)``), so a registration is one line of the table.
"""

from dataclasses import dataclass

from licodec.codec.feds import FedsStudent, FedsStudentConfig, FedsTeacher, FedsTeacherConfig
from licodec.codec.flow import FlowDecoder, FlowDecoderConfig
from licodec.codec.hyperprior import HyperpriorConfig, VariableRateHyperprior
from licodec.codec.video import ConditionalVideoCodec, VideoCodecConfig
from licodec.codec.video_residual import ResidualVideoCodec, ResidualVideoConfig
from licodec.codec.vq import VQCodec, VQConfig
from licodec.zoo.registry import register_model


@dataclass(frozen=True)
class ContextHyperpriorConfig(HyperpriorConfig):
    """``hyperprior-ctx``: the hyperprior's transforms with a space-channel context model over
    unevenly sized channel groups (ELIC's 16, 16, 32, ... pattern)."""

    M: int = 192
    context_groups: tuple = (16, 16, 32, 64, 64)


@dataclass(frozen=True)
class VQFlowDecoderConfig(FlowDecoderConfig):
    """``vqgan-flow``: the generative decoder on the VQ codec's eight rungs (0.01-0.04 bpp); four
    levels (stride 16, the base's own), so the deepest sees as far as one VQ index."""

    base: str = "vqgan"
    qualities: tuple = (1.0, 8.0)
    channels: tuple = (64, 96, 128, 160)
    blocks: tuple = (1, 2, 2, 2)


_BUILTIN = [
    ("hyperprior-vr", HyperpriorConfig, VariableRateHyperprior,
     "variable-rate mean-scale hyperprior (Ballé 2018 / Minnen 2018, gain units of Cui 2021), quality 1-8"),
    ("hyperprior-ctx", ContextHyperpriorConfig, VariableRateHyperprior,
     "variable-rate hyperprior with channel-group + checkerboard context (ELIC-style), quality 1-8"),
    ("feds-teacher", FedsTeacherConfig, FedsTeacher,
     "FEDS teacher: Swin-Transformer-V2 + residual hyperprior, M=192, quality 1-8"),
    ("feds-student", FedsStudentConfig, FedsStudent,
     "FEDS student: lightweight hyperprior (N=64, M=128) distilled from feds-teacher, quality 1-8"),
    ("vqgan", VQConfig, VQCodec,
     "VQGAN codebook codec (Mao et al. 2023), 16x downsampling, rungs K=8..1024 at log2(K)/256 bpp, quality 1-8"),
    ("hyperprior-vr-flow", FlowDecoderConfig, FlowDecoder,
     "generative decoder for hyperprior-vr files (HFD/CDC-style residual rectified flow), realism 0-1, quality 1-4"),
    ("vqgan-flow", VQFlowDecoderConfig, FlowDecoder,
     "generative decoder for vqgan files (HFD/CDC-style residual rectified flow), realism 0-1, quality 1-8"),
    ("video-dcvc", VideoCodecConfig, ConditionalVideoCodec,
     "low-delay video: hyperprior-ctx I-frames, DCVC-style conditional P-frames on DIS motion, quality 1-8"),
    ("video-dvc", ResidualVideoConfig, ResidualVideoCodec,
     "low-delay video: DVC-style residual P-frames on DIS motion, I-frames and residuals by hyperprior-ctx, quality 1-8"),
]

for _name, _config, _codec, _description in _BUILTIN:
    register_model(_name, _config, description=_description)(_codec)
