"""Low-rank adapters that fit the frozen image codec's transforms to residuals.

Residual P-frames (:class:`~licodec.codec.video_residual.ResidualVideoCodec`) code
``x - prediction + 1/2`` with the image codec, whose analysis and synthesis were trained on
photos. A residual is another signal: mostly flat grey, its energy at moving edges. Retraining the
image codec's transforms for it would cost a second copy of them (1.9 M parameters); instead each
convolution ``W`` of the analysis ``g_a`` and the synthesis ``g_s`` gets a low-rank branch beside
it, ``W x + U (D x)``, as LoRA does for language models (Hu et al. 2022, "LoRA: Low-Rank
Adaptation of Large Language Models", ICLR): ``D`` is a convolution of the same kernel, stride and
padding as ``W`` to ``rank`` channels, ``U`` a 1x1 convolution back to ``W``'s output channels
(with a bias). ``U`` starts at zero, so new adapters leave the transforms exactly as they were.

The image codec itself is not changed: I-frames use its own transforms, residuals the adapted
ones (:class:`AdaptedTransform`, built on demand around the frozen ``g_a`` / ``g_s``). The
entropy model stays the image codec's (with the residual prior's correction, if any).

Sizes: ``rank * (Cin * k * k + Cout + 1)`` parameters per convolution; for ``hyperprior-ctx``
(N=96, M=192, 5x5 kernels) about 20 k per rank unit over both transforms.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _branch(conv: nn.Module, rank: int) -> nn.Sequential:
    """``U (D x)`` beside ``conv``: ``D`` of ``conv``'s kind and geometry to ``rank`` channels, ``U``
    1x1 back to its output channels, zero-initialised."""
    if isinstance(conv, nn.ConvTranspose2d):
        down = nn.ConvTranspose2d(conv.in_channels, rank, conv.kernel_size, conv.stride, conv.padding,
                                  conv.output_padding, bias=False)
    else:
        down = nn.Conv2d(conv.in_channels, rank, conv.kernel_size, conv.stride, conv.padding, bias=False)
    up = nn.Conv2d(rank, conv.out_channels, 1)
    nn.init.zeros_(up.weight)
    nn.init.zeros_(up.bias)
    return nn.Sequential(down, up)


class ResidualAdapter(nn.Module):
    """The branches of the residual transforms: ``analysis`` (one per convolution of the image
    codec's ``g_a``, in order) and ``synthesis`` (``g_s``'s). ``g_a``, ``g_s``: the image codec's
    transforms (``nn.Sequential`` of convolutions and nonlinearities), read for their
    convolutions' geometry (which the image codec's own config fixes); ``rank``: the branches'
    width."""

    def __init__(self, g_a: nn.Sequential, g_s: nn.Sequential, rank: int) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be at least 1, got {rank}")
        self.analysis = nn.ModuleList(_branch(m, rank) for m in g_a if isinstance(m, _CONVS))
        self.synthesis = nn.ModuleList(_branch(m, rank) for m in g_s if isinstance(m, _CONVS))

    @property
    def rank(self) -> int:
        return self.analysis[0][0].out_channels

    def grown(self, g_a: nn.Sequential, g_s: nn.Sequential, rank: int) -> "ResidualAdapter":
        """A copy of rank ``rank`` (at least this one's) that computes exactly what this one does:
        each branch keeps its ``D`` channels and ``U`` columns, the new ``D`` channels start as new
        branches' do and the new ``U`` columns at zero."""
        if rank < self.rank:
            raise ValueError(f"adapters grow: rank {rank} is below their rank {self.rank}")
        w = self.analysis[0][0].weight
        grown = ResidualAdapter(g_a, g_s, rank).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            for old, new in zip([*self.analysis, *self.synthesis], [*grown.analysis, *grown.synthesis], strict=True):
                r = old[0].out_channels
                if isinstance(old[0], nn.ConvTranspose2d):  # weight (in, out, k, k)
                    new[0].weight[:, :r] = old[0].weight
                else:
                    new[0].weight[:r] = old[0].weight
                new[1].weight[:, :r] = old[1].weight
                new[1].bias.copy_(old[1].bias)
        return grown

    def transforms(self, g_a: nn.Sequential, g_s: nn.Sequential) -> tuple[nn.Module, nn.Module]:
        """The adapted ``(g_a, g_s)`` (they share the image codec's frozen layers)."""
        return AdaptedTransform(g_a, self.analysis), AdaptedTransform(g_s, self.synthesis)


class AdaptedTransform(nn.Module):
    """``base`` (an ``nn.Sequential``) with ``branches[i]`` added to the output of its ``i``-th
    convolution: the same input and output shapes as ``base``."""

    def __init__(self, base: nn.Sequential, branches: nn.ModuleList) -> None:
        super().__init__()
        convs = sum(isinstance(m, _CONVS) for m in base)
        if convs != len(branches):
            raise ValueError(f"{len(branches)} adapter branches for a transform of {convs} convolutions")
        self.base, self.branches = base, branches

    def forward(self, x: Tensor) -> Tensor:
        i = 0
        for layer in self.base:
            if isinstance(layer, _CONVS):
                x = layer(x) + self.branches[i](x)
                i += 1
            else:
                x = layer(x)
        return x
