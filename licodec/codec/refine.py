"""Encode-time refinement of the latents: the ``effort`` setting.

The analysis transform gives latents that are good on average over the training set;
for one image, gradient descent on the rate-distortion objective of the *shipped
decoder* finds better ones (Campos et al. 2019, "Content adaptive optimization for neural
image compression"). Rounding has no useful gradient, so the latents are rounded by
stochastic Gumbel annealing (Yang, Bamler & Mandt 2020, "Improving inference for neural
image compression", NeurIPS): each residual goes to its floor or its ceiling with
probabilities from ``softmax(-atanh(distance) / tau)``, relaxed by Gumbel-softmax at
temperature ``tau`` annealed towards hard rounding.

Both ``y`` and the hyper-latent ``z`` are refined. Every few iterations the true objective
(hard rounding, the rate the coder will spend) is measured and the best latents so far
kept, starting from the unrefined ones: refinement never makes the estimated RD cost worse.
The decoder and the bitstream do not change; a file of any effort decodes the same way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from licodec.cpu import native_bf16

# iterations of each effort level 0..9 (0: a single analysis pass, no refinement)
EFFORT_ITERATIONS = (0, 5, 10, 20, 30, 50, 75, 100, 150, 200)
MAX_EFFORT = len(EFFORT_ITERATIONS) - 1


def check_effort(effort) -> int:
    from licodec.errors import LicodecError

    if isinstance(effort, bool) or not isinstance(effort, int) or not 0 <= effort <= MAX_EFFORT:
        raise LicodecError(f"effort must be an integer from 0 to {MAX_EFFORT}, got {effort!r}")
    return effort


def sga_round(r: Tensor, tau: float, generator: torch.Generator | None = None) -> Tensor:
    """Stochastic Gumbel annealing of ``r`` to its floor or ceiling (Yang et al. 2020, eq. 8):
    a Gumbel-softmax sample of the two candidates; ``generator`` makes the noise reproducible."""
    floor = torch.floor(r)
    d_floor = (r - floor).clamp(-1 + 1e-6, 1 - 1e-6)  # distance to the floor, in [0, 1)
    d_ceil = (1 - d_floor).clamp(-1 + 1e-6, 1 - 1e-6)
    logits = torch.stack([-torch.atanh(d_floor), -torch.atanh(d_ceil)], dim=-1) / tau
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float32).clamp_(1e-10, 1 - 1e-7)
    probs = torch.softmax(logits - torch.log(-torch.log(u)).to(logits.dtype), dim=-1)
    return floor + probs[..., 1]


def _rd_cost(codec, g_s, x: Tensor, y: Tensor, z: Tensor, inv_gain: Tensor, lam: float, quantize, size,
             correction=None) -> Tensor:
    extra = {} if correction is None else {"correction": correction}
    y_hat, likelihoods = codec.latent(y, z=z, quantize=quantize, **extra)
    x_hat = g_s(y_hat * inv_gain)[..., : size[0], : size[1]]
    mse = (x_hat.float() - x[..., : size[0], : size[1]]).pow(2).mean()
    bits = sum(-torch.log2(lik).sum() for lik in likelihoods.values())
    return lam * 255**2 * mse + bits / (size[0] * size[1])


def refine_latents(codec, x: Tensor, quality: float, iterations: int, size: tuple[int, int],
                   lr: float | None = None, check_every: int = 5, correction=None,
                   transforms=None) -> tuple[Tensor, Tensor]:
    """Refined ``(y, z)`` for the padded image ``x`` ``(1, 3, H', W')`` in [0, 1] whose top-left
    ``size`` is the real image. ``codec`` is a variable-rate hyperprior-family codec.

    ``lr``: Adam's step; by default a factor times the spread of the unrefined ``y``, within
    bounds, all three from the latent codec's ``refine_step``: the latents' scale follows the
    quality's gain, and so does the best step; the measurements are beside each rule.
    ``correction``: the factor on the latent codec's final scales, as the coder will use it (a
    residual prior's, :mod:`licodec.codec.residual_prior`), so that the cost is the one coded.
    ``transforms``: ``(g_a, g_s)`` instead of the codec's own (a residual coder's adapted ones)."""
    g_a, g_s = (codec.g_a, codec.g_s) if transforms is None else transforms
    with torch.no_grad():
        gain, inv_gain = codec._gains(torch.tensor([float(quality)]))
    lam = codec.lambda_for_quality(float(quality))
    owners = [codec] if transforms is None else [codec, *transforms]  # frozen while the latents descend
    params = list({id(p): p for m in owners for p in m.parameters() if p.requires_grad}.values())
    was_training = codec.training
    codec.eval()
    for p in params:
        p.requires_grad_(False)
    try:
        x = x.contiguous(memory_format=torch.channels_last)  # oneDNN's faster kernels
        with torch.no_grad():
            y0 = g_a(x) * gain
            z0 = codec.latent.h_a(y0)
            best = (float(_rd_cost(codec, g_s, x, y0, z0, inv_gain, lam, torch.round, size, correction)), y0, z0)
        if lr is None:
            factor, low, high = codec.latent.refine_step
            lr = min(max(factor * float(y0.std()), low), high)
        y = y0.clone().requires_grad_(True)
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([y, z], lr=lr)
        decay = math.log(0.5 / 0.05) / max(iterations, 1)  # tau: 0.5 -> 0.05
        noise = torch.Generator().manual_seed(0)  # the same image gives the same file, run after run
        for it in range(iterations):
            tau = 0.5 * math.exp(-decay * it)
            # the descent runs in bfloat16 where the CPU has it natively (about 2.5x faster on
            # AMX); the checks below, which pick the latents that are coded, in float32
            with torch.enable_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=native_bf16()):
                loss = _rd_cost(codec, g_s, x, y, z, inv_gain, lam, lambda r: sga_round(r, tau, noise), size, correction)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            if (it + 1) % check_every == 0 or it + 1 == iterations:
                with torch.no_grad():
                    cost = float(_rd_cost(codec, g_s, x, y, z, inv_gain, lam, torch.round, size, correction))
                if cost < best[0]:
                    best = (cost, y.detach().clone(), z.detach().clone())
        return best[1], best[2]
    finally:
        for p in params:
            p.requires_grad_(True)
        codec.train(was_training)
