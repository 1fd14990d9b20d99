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

import torch
from torch import nn

from licodec.codec.blocks import ResidualBlock, SwinV2Stage
from licodec.codec.hyperprior import GDN, HyperpriorConfig, VariableRateHyperprior, _conv, _deconv, hyper_transforms
from licodec.entropy.models import load_trainable_state


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

    @torch.no_grad()
    def grow_from(self, core: VariableRateHyperprior) -> None:
        """Start from a trained core hyperprior (same ``N``, at most as many latent channels):
        copy its layers into the matching ones here; the extra latent channels, residual
        blocks and Swin stages start at zero/identity, so the teacher begins by computing
        exactly what ``core`` computes and training only adds to it (Net2Net-style growth)."""
        c, t = core.config, self.config
        if c.N != t.N or c.M > t.M or c.num_qualities != t.num_qualities:
            raise ValueError(f"cannot grow a teacher (N={t.N}, M={t.M}) from N={c.N}, M={c.M}")
        for name in ("g_a", "g_s"):
            _copy_layers(_coding_layers(getattr(core, name)), _coding_layers(getattr(self, name)))
        _copy_layers(_coding_layers(core.latent.h_a), _coding_layers(self.latent.h_a))
        src_hs, dst_hs = _coding_layers(core.latent.h_s), _coding_layers(self.latent.h_s)
        _copy_layers(src_hs[:-1], dst_hs[:-1])
        src, dst = src_hs[-1], dst_hs[-1]  # output: scales then means, each M channels
        dst.weight.zero_()
        dst.bias.zero_()
        cin = src.weight.shape[1]
        for part in range(2):
            dst.weight[part * t.M : part * t.M + c.M, :cin] = src.weight[part * c.M : (part + 1) * c.M]
            dst.bias[part * t.M : part * t.M + c.M] = src.bias[part * c.M : (part + 1) * c.M]
        load_trainable_state(self.latent.z_model, core.latent.z_model.state_dict())
        for name in ("log_gain", "log_inv_gain"):
            s, d = getattr(core, name), getattr(self, name)
            d[:, : c.M] = s
            d[:, c.M :] = s.mean(1, keepdim=True)
        self.refresh()


def _coding_layers(module: nn.Module) -> list[nn.Module]:
    """Convolutions and GDNs of a transform in order, skipping those inside added blocks."""
    out = []

    def walk(m: nn.Module) -> None:
        for child in m.children():
            if isinstance(child, (ResidualBlock, SwinV2Stage)):
                continue
            if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, GDN)):
                out.append(child)
            else:
                walk(child)

    walk(module)
    return out


def _copy_layers(src: list[nn.Module], dst: list[nn.Module]) -> None:
    if len(src) != len(dst):
        raise ValueError(f"layer counts differ: {len(src)} vs {len(dst)}")
    for s, d in zip(src, dst):
        if type(s) is not type(d):
            raise ValueError(f"layer types differ: {type(s).__name__} vs {type(d).__name__}")
        if isinstance(s, GDN):
            d.load_state_dict(s.state_dict())
            continue
        d.weight.zero_()
        d.weight[tuple(slice(0, n) for n in s.weight.shape)] = s.weight
        d.bias.zero_()
        d.bias[: s.bias.shape[0]] = s.bias


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
