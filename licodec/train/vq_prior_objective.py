"""Training of the learned index prior of :class:`~licodec.codec.vq.VQCodec`, kept out of the codec.

``licodec train --model vqgan --init VQ_EXPORT --prior`` freezes the whole codec but its index
prior (:mod:`licodec.codec.vq_prior`; weights without one get a fresh prior of
:data:`DEFAULT_LAYERS` blocks, its heads starting at each rung's code usage) and trains it on
the indices the frozen encoder gives at every rung: one encoder pass per batch, quantized by
each rung's codebook (no decoder runs, so the progress bar's PSNR is NaN in these runs).

Loss per rung, in bits per index (cross-entropy / ln 2), on two kinds of masks:

* Scheduled (the first ``B - B // 4`` images of the batch): a pass ``p`` of the fixed coding
  schedule, drawn with probability proportional to its share of the grid, so that the expected
  loss is the coded bits per index; the network sees groups ``0..p-1`` and predicts group
  ``p`` (groups after ``p`` are absent, exactly as when coding).
* Free (the last ``B // 4`` images; with a batch of 2 or 3, the last image of every fourth
  step; never with a batch of 1): MaskGIT's
  masks, a share ``cos(pi/2 * u)`` (``u`` uniform) of the positions, at random, predicted from
  the rest (pass id ``FREE``): the task of lost-index restoration.

The loss is the mean over rungs of the images' mean. Logged per rung: ``bits_k{K}`` (scheduled
bits per index, an estimate of the coded rate) and over rungs ``ratio`` (mean of bits/log2 K:
1 is the uniform coding of Mao et al.) and ``free_ratio`` (the same for the free masks). All
draws come from a generator seeded by ``(seed, step)``: a resumed run continues exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from licodec.codec.base import CodecOutput, pad_to_multiple
from licodec.codec.vq_prior import IndexPrior, pass_sizes
from licodec.errors import LicodecError

DEFAULT_LAYERS = 4
FREE_SHARE = 4  # one image in FREE_SHARE trains the free (restoration) masks


def scheduled_loss(prior: IndexPrior, size: int, indices: Tensor, generator: torch.Generator) -> Tensor:
    """Bits per index ``(B,)``: cross-entropy of a random pass of the schedule (drawn in
    proportion to its size) on index grids ``indices`` ``(B, h, w)`` at rung ``size``."""
    h, w = indices.shape[1:]
    sizes = torch.from_numpy(pass_sizes(h, w)).double()
    p = int(torch.multinomial(sizes / sizes.sum(), 1, generator=generator))
    logits, pos = prior.scheduled_logits(size, indices, p)
    target = indices.reshape(indices.shape[0], -1)[:, torch.from_numpy(pos).to(indices.device)]
    ce = F.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")
    return ce.mean(1) / math.log(2)


def free_loss(prior: IndexPrior, size: int, indices: Tensor, generator: torch.Generator) -> Tensor:
    """Bits per masked index ``(B,)``: MaskGIT-style random masks (a share ``cos(pi/2 u)``, at
    least one position) predicted from the rest."""
    b, h, w = indices.shape
    n = h * w
    u = torch.rand(b, generator=generator, dtype=torch.float64)
    counts = (torch.cos(math.pi / 2 * u) * n).round().clamp(1, n).long()
    ranks = torch.rand(b, n, generator=generator).argsort(1).argsort(1)
    masked = (ranks < counts[:, None]).to(indices.device)
    logits = prior.masked_logits(size, indices, masked.view(b, h, w))
    ce = F.cross_entropy(logits.float().transpose(1, 2), indices.reshape(b, -1), reduction="none")
    return (ce * masked).sum(1) / masked.sum(1) / math.log(2)


def prior_losses(prior: IndexPrior, size: int, indices: Tensor, generator: torch.Generator,
                 free_images: int | None = None) -> dict:
    """The loss of one rung on a batch (module docstring): ``{"loss", "bits", "free_bits"}``,
    scalars (``free_bits`` NaN when no image trains the free masks). ``free_images``: how many
    of the batch's last images train the free masks (default ``B // FREE_SHARE``). Grids larger
    than the prior's window are cropped to one window (at a random place) as coding sees them."""
    b, h, w = indices.shape
    win = prior.window
    if h > win or w > win:
        top = int(torch.randint(h - min(h, win) + 1, (1,), generator=generator))
        left = int(torch.randint(w - min(w, win) + 1, (1,), generator=generator))
        indices = indices[:, top : top + win, left : left + win]
    nf = b // FREE_SHARE if free_images is None else free_images
    ns = b - nf
    sched = scheduled_loss(prior, size, indices[:ns], generator) if ns else indices.new_zeros(0, dtype=torch.float32)
    free = free_loss(prior, size, indices[ns:], generator) if nf else indices.new_zeros(0, dtype=torch.float32)
    nan = torch.tensor(float("nan"), device=indices.device)
    return {"loss": torch.cat([sched, free]).mean(),
            "bits": sched.detach().mean() if ns else nan, "free_bits": free.detach().mean() if nf else nan}


class PriorObjective:
    """The trainer's objective for ``--prior`` runs (the interface of :mod:`licodec.train.objectives`,
    plus :meth:`forward`, which the trainer calls instead of the codec's forward)."""

    supports_ddp = False

    def __init__(self, model, cfg, device: torch.device) -> None:
        if getattr(model, "objective", "rd") != "vq" or not hasattr(model, "add_prior"):
            raise LicodecError(f"--prior trains the index prior of a codebook codec (vqgan), not {cfg.model!r}")
        if not cfg.init:
            raise LicodecError("--prior trains the index prior of trained weights: give their export with --init")
        if cfg.rung or cfg.adv_start >= 0:
            raise LicodecError("--prior trains the index prior alone: no --rung or --adv-start")
        self.cfg, self.device, self.model = cfg, device, model
        if model.prior is None:
            model.add_prior(DEFAULT_LAYERS)
            model.prior.to(device)
        model.requires_grad_(False)
        model.prior.requires_grad_(True)
        self.sizes = tuple(model.config.rungs)

    def qualities(self, quality: Tensor) -> Tensor:
        return quality  # unused: every batch trains every rung

    @torch.no_grad()
    def forward(self, x: Tensor, quality: Tensor, features: bool = False) -> CodecOutput:
        """The frozen encoder's index grids of ``x`` at every rung, in ``features["indices"]``
        (``{K: (B, h, w)}``); computed in float32 as the coder does."""
        model = self.model
        with torch.autocast(x.device.type, enabled=False):
            padded, _ = pad_to_multiple(x.float(), model.stride)
            h = model.encoder(padded)
            indices = {size: model.rungs[f"k{size}"].quantize(model.rungs[f"k{size}"].encode(h)) for size in self.sizes}
        return CodecOutput(x_hat=x, likelihoods={}, bits=x.new_zeros(x.shape[0]), features={"indices": indices})

    def loss(self, model, out, x: Tensor, quality: Tensor, step: int) -> dict:
        g = torch.Generator()
        g.manual_seed(int(np.random.SeedSequence([self.cfg.seed, step, 2]).generate_state(1)[0]))
        b = x.shape[0]
        free_images = b // FREE_SHARE if b >= FREE_SHARE else int(b >= 2 and step % 4 == 3)
        losses, terms, ratios, free = [], {}, [], []
        for size in self.sizes:
            r = prior_losses(model.prior, size, out.features["indices"][size], g, free_images)
            losses.append(r["loss"])
            terms[f"bits_k{size}"] = r["bits"]
            ratios.append(r["bits"] / math.log2(size))
            if free_images:
                free.append(r["free_bits"] / math.log2(size))
        n_pixels = x.shape[-2] * x.shape[-1]
        per_image = math.prod(out.features["indices"][self.sizes[0]].shape[1:])
        bits = torch.stack([terms[f"bits_k{s}"] for s in self.sizes])
        extra = {"free_ratio": torch.stack(free).mean()} if free else {}
        # no reconstruction is made: "mse" is NaN (the progress bar's PSNR too)
        return {"loss": torch.stack(losses).mean(), "bpp": bits.mean() * per_image / n_pixels,
                "mse": torch.tensor(float("nan")), "ratio": torch.stack(ratios).mean(), **extra, **terms}

    def after_step(self, step: int, x: Tensor, out, lr: float) -> dict:
        return {}

    def aux_loss(self, model):
        return None

    def log_record(self, current: dict) -> dict:
        keys = ["ratio", "free_ratio"] + [f"bits_k{s}" for s in self.sizes]
        return {k: current[k] for k in keys if k in current and not math.isnan(current[k])}

    def state_dict(self) -> dict:
        return {"rung": "prior", "prior": True}

    def load_state_dict(self, state: dict | None) -> None:
        if not state or not state.get("prior"):
            raise LicodecError("the checkpoint does not train an index prior; use --restart or another --out")
