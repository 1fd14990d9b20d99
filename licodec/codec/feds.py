"""FEDS teacher and student codecs.

Following "FEDS: Feature and Entropy-Based Distillation Strategy for Efficient Learned
Image Compression" (2025): a high-capacity **teacher**, a mean-scale hyperprior whose
analysis, synthesis and hyper transforms carry Swin-Transformer-V2 stages, with extra
residual blocks and more latent channels than the core hyperprior; and a lightweight
**student** (plain convolutions and GDN, fewer channels) trained from it by the
three-stage distillation in :mod:`licodec.train.distill`.

Both share :class:`~licodec.codec.hyperprior.VariableRateHyperprior`'s entropy layer,
gain-vector rate control (quality 1..Q), tiling and bitstream; only the transforms
differ. ``g_a`` and ``g_s`` are sequences of four *stages* (resolutions H/2, H/4, H/8,
H/16 for analysis and H/8, H/4, H/2, H for synthesis), and the outputs of the stages are
the features the distillation aligns between teacher and student.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from licodec.codec.blocks import ResidualBlock, SwinV2Stage
from licodec.codec.hyperprior import GDN, HyperpriorConfig, VariableRateHyperprior, _conv, _deconv, hyper_transforms


@dataclass(frozen=True)
class FedsTeacherConfig(HyperpriorConfig):
    """Teacher sizes. ``N``/``M`` as in :class:`HyperpriorConfig` (here M=192 latent channels,
    against the core hyperprior's 144). ``swin_depth`` blocks per Swin-V2 stage with
    ``window`` x ``window`` windows; ``res_blocks`` residual blocks after each of the first
    three analysis stages and before each of the first three synthesis up-samplings."""

    N: int = 96
    M: int = 192
    swin_depth: int = 2
    window: int = 8
    res_blocks: int = 1


@dataclass(frozen=True)
class FedsStudentConfig(HyperpriorConfig):
    """Student sizes: the core hyperprior's layout with fewer channels."""

    N: int = 64
    M: int = 128


def _res(n: int, count: int) -> list[nn.Module]:
    return [ResidualBlock(n) for _ in range(count)]


class FedsTeacher(VariableRateHyperprior):
    """FEDS teacher: Swin-V2 + residual hyperprior (FEDS 2025; Swin-V2: Liu et al., CVPR 2022).

    Input ``x`` ``(B, 3, H, W)`` in [0, 1], any size; latent ``y`` ``(B, M, H'/16, W'/16)``,
    hyper-latent ``z`` ``(B, N, H'/64, W'/64)`` with ``H', W'`` rounded up to 64.
    Swin-V2 stages sit at H/8 and H/16 in ``g_a`` and ``g_s``, on ``y`` at the input of
    ``h_a``, and before the last layer of ``h_s``.
    """

    @staticmethod
    def build_transforms(config: FedsTeacherConfig):
        N, M, r = config.N, config.M, config.res_blocks

        def swin(c: int) -> SwinV2Stage:
            return SwinV2Stage(c, depth=config.swin_depth, window=config.window)

        g_a = nn.Sequential(
            nn.Sequential(_conv(3, N), GDN(N), *_res(N, r)),
            nn.Sequential(_conv(N, N), GDN(N), *_res(N, r)),
            nn.Sequential(_conv(N, N), GDN(N), *_res(N, r), swin(N)),
            nn.Sequential(_conv(N, M), swin(M)),
        )
        g_s = nn.Sequential(
            nn.Sequential(swin(M), _deconv(M, N), GDN(N, inverse=True)),
            nn.Sequential(*_res(N, r), swin(N), _deconv(N, N), GDN(N, inverse=True)),
            nn.Sequential(*_res(N, r), _deconv(N, N), GDN(N, inverse=True)),
            nn.Sequential(*_res(N, r), _deconv(N, 3)),
        )
        h_a = nn.Sequential(
            swin(M), _conv(M, N, 3, 1), nn.LeakyReLU(inplace=True), _conv(N, N), nn.LeakyReLU(inplace=True),
            _conv(N, N),
        )
        h_s = nn.Sequential(
            _deconv(N, M), nn.LeakyReLU(inplace=True), _deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
            swin(M * 3 // 2), _conv(M * 3 // 2, M * 2, 3, 1),
        )
        return g_a, g_s, h_a, h_s


class FedsStudent(VariableRateHyperprior):
    """FEDS student (FEDS 2025): the mean-scale hyperprior of Ballé et al. 2018 / Minnen et
    al. 2018 with fewer channels, its transforms grouped into the same four stages as the
    teacher's so that the stage outputs can be aligned. Shapes as :class:`FedsTeacher`."""

    @staticmethod
    def build_transforms(config: FedsStudentConfig):
        N, M = config.N, config.M
        g_a = nn.Sequential(
            nn.Sequential(_conv(3, N), GDN(N)),
            nn.Sequential(_conv(N, N), GDN(N)),
            nn.Sequential(_conv(N, N), GDN(N)),
            nn.Sequential(_conv(N, M)),
        )
        g_s = nn.Sequential(
            nn.Sequential(_deconv(M, N), GDN(N, inverse=True)),
            nn.Sequential(_deconv(N, N), GDN(N, inverse=True)),
            nn.Sequential(_deconv(N, N), GDN(N, inverse=True)),
            nn.Sequential(_deconv(N, 3)),
        )
        return (g_a, g_s, *hyper_transforms(N, M))
