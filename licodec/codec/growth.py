"""Net2Net-style growth: start a larger hyperprior-family codec from a trained smaller one.

:func:`grow_hyperprior` copies a trained :class:`~licodec.codec.hyperprior.VariableRateHyperprior`
(same ``N``, at most as many latent channels) into a codec whose transforms have the same
convolutions and GDNs, possibly with added blocks (residual, Swin-V2) and an added context
model. Added channels, blocks and context networks start at zero or identity, so the grown
codec computes exactly what the source computes and training only adds to it.
"""

from __future__ import annotations

import torch
from torch import nn

from licodec.codec.blocks import ResidualBlock, SwinV2Stage
from licodec.entropy.models import load_trainable_state


def coding_layers(module: nn.Module) -> list[nn.Module]:
    """Convolutions and GDNs of a transform in order, skipping those inside added blocks."""
    from licodec.codec.hyperprior import GDN

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


def copy_layers(src: list[nn.Module], dst: list[nn.Module]) -> None:
    """Copy each layer into the top-left corner of its (at least as large) counterpart; zero the rest."""
    from licodec.codec.hyperprior import GDN

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


@torch.no_grad()
def grow_hyperprior(dst, src) -> None:
    """Copy ``src`` (a trained hyperprior without context) into ``dst`` (module docstring)."""
    c, t = src.config, dst.config
    if getattr(c, "context_groups", ()):
        raise ValueError("growing from a codec with a context model is not supported")
    if c.N != t.N or c.M > t.M or c.num_qualities != t.num_qualities:
        raise ValueError(f"cannot grow N={t.N}, M={t.M} from N={c.N}, M={c.M}")
    for name in ("g_a", "g_s"):
        copy_layers(coding_layers(getattr(src, name)), coding_layers(getattr(dst, name)))
    if t.M > c.M:
        # the added latent channels start at zero (g_a's new outputs are zero), so g_s may read
        # them with random weights without changing the output; all-zero weights on both sides
        # would be a saddle where neither gets a gradient
        first = coding_layers(dst.g_s)[0]
        fresh = torch.empty_like(first.weight[c.M :])
        nn.init.kaiming_uniform_(fresh, a=5**0.5)
        first.weight[c.M :] = fresh * 0.1
    copy_layers(coding_layers(src.latent.h_a), coding_layers(dst.latent.h_a))
    src_hs, dst_hs = coding_layers(src.latent.h_s), coding_layers(dst.latent.h_s)
    copy_layers(src_hs[:-1], dst_hs[:-1])
    s_out, d_out = src_hs[-1], dst_hs[-1]  # output: scales then means, M channels each
    d_out.weight.zero_()
    d_out.bias.zero_()
    cin = s_out.weight.shape[1]
    for part in range(2):
        d_out.weight[part * t.M : part * t.M + c.M, :cin] = s_out.weight[part * c.M : (part + 1) * c.M]
        d_out.bias[part * t.M : part * t.M + c.M] = s_out.bias[part * c.M : (part + 1) * c.M]
    load_trainable_state(dst.latent.z_model, src.latent.z_model.state_dict())
    for name in ("log_gain", "log_inv_gain"):
        s, d = getattr(src, name), getattr(dst, name)
        d[:, : c.M] = s
        d[:, c.M :] = s.mean(1, keepdim=True)
    dst.refresh()
