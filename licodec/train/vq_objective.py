"""The training objective of :class:`~licodec.codec.vq.VQCodec`, kept out of the codec.

Per batch (``x`` and the reconstruction ``x_hat`` in [0, 1])::

    rec  = w_l1 * |x_hat - x|_1 + w_ms * (1 - MS-SSIM(x_hat, x)) + w_ffl * FFL(x_hat, x)
    loss = rec + beta * ||z_e - sg(z_q)||^2 [+ adv_weight * lambda_adaptive * hinge_G]

* L1 and MS-SSIM (Wang et al. 2003; the L1 + MS-SSIM mix of Zhao et al. 2017, "Loss Functions
  for Image Restoration with Neural Networks") stand in for VQGAN's LPIPS: no pretrained
  network is used anywhere.
* FFL: the focal frequency loss of Jiang et al. 2021 ("Focal Frequency Loss for Image
  Reconstruction and Synthesis", ICCV): squared distance of the orthonormal 2-D spectra,
  weighted per frequency by the (detached, per-image max-normalised) distance itself, so the
  frequencies the decoder gets wrong -- typically the high ones it blurs -- dominate.
* Commitment (van den Oord et al. 2017): pulls the unit encoder codes ``z_e`` towards their
  chosen codes; the codebook itself learns by moving averages in the codec's forward pass.
* Adversarial (Esser et al. 2021, VQGAN): a PatchGAN (:mod:`licodec.train.discriminator`) with
  hinge losses, switched on at step ``adv_start`` (``-1``: never); its weight is VQGAN's
  adaptive one (gradient norms at the decoder's last layer) times ``adv_weight``. The
  discriminator has its own Adam optimizer (betas 0.5, 0.9, the generator's learning rate),
  is saved in the run's checkpoint and is not exported with the codec.

Stages (Mao et al. 2024): base training (``rung`` 0) trains the encoder, the decoder and the
base rung (K = ``codebook_size``) on the top quality only; ``rung K`` (with ``--init`` the
base run's weights) builds the ladder from the base codebook if the weights do not carry it
yet (:mod:`licodec.codec.vq_ladder`) and fine-tunes rung K alone -- its codebook (moving
averages) and its two 1x1 projections -- with everything else frozen. Fine-tuning the rungs
one after another, each run starting from the previous one's export, gives one weights folder
with every rung fine-tuned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from licodec.errors import LicodecError
from licodec.train.discriminator import PatchDiscriminator, adaptive_weight, hinge_d_loss, hinge_g_loss

_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003


def ms_ssim(x: Tensor, y: Tensor, win_size: int = 11, sigma: float = 1.5) -> Tensor:
    """MS-SSIM ``(B,)`` of images ``(B, C, H, W)`` in [0, 1], differentiable.

    ``pytorch_msssim``'s SSIM terms over as many of the 5 scales as the crop allows (each
    scale's side at least the window: 4 scales at 128, 3 at 64), their weights renormalised.
    Contrast terms are floored at 1e-4 instead of pytorch_msssim's relu, whose zero gives an
    infinite gradient under the fractional powers."""
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    side = min(x.shape[-2:])
    win_size = min(win_size, side if side % 2 else side - 1)
    levels = max(n for n in range(1, 6) if n == 1 or side // 2 ** (n - 1) >= win_size)
    weights = torch.tensor(_MS_WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    win = _fspecial_gauss_1d(win_size, sigma).repeat([x.shape[1], 1, 1, 1])
    terms = []
    for i in range(levels):
        ssim_pc, cs = _ssim(x, y, data_range=1.0, win=win, size_average=False)
        if i < levels - 1:
            terms.append(cs.clamp_min(1e-4))
            pad = [s % 2 for s in x.shape[2:]]
            x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
    terms.append(ssim_pc.clamp_min(1e-4))
    return torch.prod(torch.stack(terms) ** weights.view(-1, 1, 1), dim=0).mean(1)


def focal_frequency_loss(x_hat: Tensor, x: Tensor, alpha: float = 1.0) -> Tensor:
    """Focal frequency loss (Jiang et al. 2021), a scalar: ``mean(w * |F(x_hat) - F(x)|^2)`` over
    images, channels and frequencies of the orthonormal 2-D FFT, with the spectrum weight
    ``w = |F(x_hat) - F(x)|^alpha`` normalised to a maximum of 1 per image and channel and
    detached."""
    diff = torch.fft.fft2(x_hat.float(), norm="ortho") - torch.fft.fft2(x.float(), norm="ortho")
    dist = diff.real.pow(2) + diff.imag.pow(2)
    with torch.no_grad():
        w = dist.sqrt().pow(alpha)
        w = w / w.flatten(2).amax(2).clamp_min(1e-12)[..., None, None]
    return (w * dist).mean()


@dataclass(frozen=True)
class VQLossConfig:
    """Weights of the terms (see the module docstring) and the discriminator's size."""

    l1: float = 1.0
    msssim: float = 1.0
    ffl: float = 1.0
    beta: float = 0.25
    disc_channels: int = 32
    disc_layers: int = 3


LOGGED = ("l1", "msssim", "ffl", "commit", "perplexity", "usage", "alive", "restarts",
          "g_adv", "adv_lambda", "d_loss", "d_real", "d_fake")


class VQObjective:
    """The VQ objective for the trainer (:mod:`licodec.train.objectives` documents the interface).

    ``cfg``: the run's :class:`~licodec.train.trainer.TrainConfig` (``rung``, ``adv_start``,
    ``adv_weight``, ``lr``, ``bf16``, ``init``, ``seed``)."""

    supports_ddp = False  # the moving averages of the codebook would differ between processes

    def __init__(self, model, cfg, device: torch.device, losses: VQLossConfig = VQLossConfig()) -> None:
        self.cfg, self.losses, self.device = cfg, losses, device
        base = model.config.codebook_size
        self.size = cfg.rung or base
        if self.size not in model.config.rungs:
            rungs = ", ".join(map(str, model.config.rungs))
            raise LicodecError(f"--rung {cfg.rung}: {model.codec_id} has rungs {rungs}")
        if cfg.rung and not cfg.init:
            raise LicodecError("--rung fine-tunes one rung of trained weights: give the base run's export with --init")
        self.quality = model.quality_of(self.size)
        self.adv_start, self.adv_weight = cfg.adv_start, cfg.adv_weight
        self.disc = PatchDiscriminator(losses.disc_channels, losses.disc_layers).to(device)
        self.d_opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        self._prepare(model)

    def _prepare(self, model) -> None:
        """Build the ladder if a rung needs it; leave trainable only what this stage trains."""
        rung = model.rungs[f"k{self.size}"]
        if self.cfg.rung and self.size != model.config.codebook_size and not int(model.ladder_built):
            model.build_ladder(seed=self.cfg.seed)
        model.requires_grad_(False)
        if self.cfg.rung:
            rung.proj_in.requires_grad_(True)
            rung.proj_out.requires_grad_(True)
        else:
            model.encoder.requires_grad_(True)
            model.decoder.requires_grad_(True)
            rung.requires_grad_(True)
        self._rung = rung
        self._last_layer = model.decoder.last_layer if model.decoder.last_layer.requires_grad else rung.proj_out.weight

    def adversarial(self, step: int) -> bool:
        return 0 <= self.adv_start <= step

    def qualities(self, quality: Tensor) -> Tensor:
        """Every image of the batch at this stage's rung."""
        return torch.full_like(quality, float(self.quality))

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16)

    def loss(self, model, out, x: Tensor, quality: Tensor, step: int) -> dict:
        x_hat = out.x_hat.float()
        lw = self.losses
        l1 = (x_hat - x).abs().mean()
        msssim = ms_ssim(x_hat, x).mean()
        ffl = focal_frequency_loss(x_hat, x)
        rec = lw.l1 * l1 + lw.msssim * (1 - msssim) + lw.ffl * ffl
        commit = (out.features["z_e"] - out.features["z_q"]).pow(2).sum(1).mean()
        loss = rec + lw.beta * commit
        terms = {}
        if self.adversarial(step):
            self.disc.requires_grad_(False)
            with self._autocast():
                g_adv = hinge_g_loss(self.disc(x_hat))
            lam = adaptive_weight(rec, g_adv, self._last_layer)
            loss = loss + self.adv_weight * lam * g_adv
            terms = {"g_adv": g_adv.detach(), "adv_lambda": lam}
        n_pixels = x.shape[-2] * x.shape[-1]
        return {"loss": loss, "bpp": (out.bits / n_pixels).mean(), "mse": (x_hat - x).detach().pow(2).mean() * 255**2,
                "l1": l1.detach(), "msssim": msssim.detach(), "ffl": ffl.detach(), "commit": commit.detach(),
                "perplexity": out.features["perplexity"].float(), "usage": out.features["usage"].float(),
                "alive": out.features["alive"].float(),
                "restarts": out.features["restarts"].float(), **terms}

    def after_step(self, step: int, x: Tensor, out, lr: float) -> dict:
        """The discriminator's step on this batch (real ``x``, fake ``x_hat``), once adversarial."""
        if not self.adversarial(step):
            return {}
        for g in self.d_opt.param_groups:
            g["lr"] = lr
        self.disc.requires_grad_(True)
        with self._autocast():
            real = self.disc(x)
            fake = self.disc(out.x_hat.detach().float())
        d_loss = hinge_d_loss(real, fake)
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        return {"d_loss": d_loss.detach(), "d_real": real.detach().float().mean(),
                "d_fake": fake.detach().float().mean()}

    def aux_loss(self, model):
        return None

    def log_record(self, current: dict) -> dict:
        return {k: current[k] for k in LOGGED if k in current}

    def state_dict(self) -> dict:
        return {"rung": self.size, "disc": self.disc.state_dict(), "d_opt": self.d_opt.state_dict()}

    def load_state_dict(self, state: dict | None) -> None:
        if state is None:
            raise LicodecError("the checkpoint has no discriminator state; use --restart or another --out")
        if state["rung"] != self.size:
            raise LicodecError(f"the checkpoint fine-tunes rung {state['rung']}, not {self.size}; "
                               "use --restart or another --out")
        self.disc.load_state_dict(state["disc"])
        self.d_opt.load_state_dict(state["d_opt"])
