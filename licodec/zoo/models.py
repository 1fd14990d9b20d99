"""Registrations of the built-in codecs."""

from licodec.codec.hyperprior import HyperpriorConfig, VariableRateHyperprior
from licodec.zoo.registry import register_model


@register_model(
    "hyperprior-vr",
    HyperpriorConfig,
    description="variable-rate mean-scale hyperprior (Ballé 2018 / Minnen 2018, gain units of Cui 2021), quality 1-8",
)
def hyperprior_vr(config: HyperpriorConfig) -> VariableRateHyperprior:
    return VariableRateHyperprior(config)
