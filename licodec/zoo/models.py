"""Registrations of the built-in codecs."""

from licodec.codec.feds import FedsStudent, FedsStudentConfig, FedsTeacher, FedsTeacherConfig
from dataclasses import dataclass

from licodec.codec.hyperprior import HyperpriorConfig, VariableRateHyperprior
from licodec.zoo.registry import register_model


@register_model(
    "hyperprior-vr",
    HyperpriorConfig,
    description="variable-rate mean-scale hyperprior (Ballé 2018 / Minnen 2018, gain units of Cui 2021), quality 1-8",
)
def hyperprior_vr(config: HyperpriorConfig) -> VariableRateHyperprior:
    return VariableRateHyperprior(config)


@dataclass(frozen=True)
class ContextHyperpriorConfig(HyperpriorConfig):
    """``hyperprior-ctx``: the hyperprior's transforms with a space-channel context model over
    unevenly sized channel groups (ELIC's 16, 16, 32, ... pattern)."""

    M: int = 192
    context_groups: tuple = (16, 16, 32, 64, 64)


@register_model(
    "hyperprior-ctx",
    ContextHyperpriorConfig,
    description="variable-rate hyperprior with channel-group + checkerboard context (ELIC-style), quality 1-8",
)
def hyperprior_ctx(config: ContextHyperpriorConfig) -> VariableRateHyperprior:
    return VariableRateHyperprior(config)


@register_model(
    "feds-teacher",
    FedsTeacherConfig,
    description="FEDS teacher: Swin-Transformer-V2 + residual hyperprior, M=192, quality 1-8",
)
def feds_teacher(config: FedsTeacherConfig) -> FedsTeacher:
    return FedsTeacher(config)


@register_model(
    "feds-student",
    FedsStudentConfig,
    description="FEDS student: lightweight hyperprior (N=64, M=128) distilled from feds-teacher, quality 1-8",
)
def feds_student(config: FedsStudentConfig) -> FedsStudent:
    return FedsStudent(config)


from licodec.codec.vq import VQCodec, VQConfig  # noqa: E402


@register_model(
    "vqgan",
    VQConfig,
    description="VQGAN codebook codec (Mao et al. 2023), 16x downsampling, rungs K=8..1024 at log2(K)/256 bpp, "
                "quality 1-8",
)
def vqgan(config: VQConfig) -> VQCodec:
    return VQCodec(config)
