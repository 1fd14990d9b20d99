"""The training objective of :class:`~licodec.codec.flow.FlowDecoder`, kept out of the codec.

Per batch ``x`` ``(B, 3, H, W)`` in [0, 1] at base qualities ``q`` drawn uniformly from the
decoder's range: the frozen base codec's decode ``x_b``, the scaled residual
``r = s * (x - x_b)``, noise ``eps ~ N(0, I)`` and times ``t = sigmoid(n)``, ``n ~ N(0, 1)``
(the logit-normal times of Esser et al. 2024, "Scaling Rectified Flow Transformers"), then::

    x_t  = (1 - t) * r + t * eps
    loss = mean |v_theta(x_t, x_b, t, q) - (eps - r)|^2

the conditional flow-matching loss (Lipman et al. 2023; Liu et al. 2023). The noise and times
are drawn from a generator seeded by ``(seed, step)``, so a resumed run draws what it would have.
Logged: ``mse`` is the one-step reconstruction's (``x_b + r_hat / s`` with
``r_hat = x_t - t * v``), so the progress bar's PSNR shows what the flow has learnt; ``base_mse``
is the base decode's.

Adversarial fine-tuning (``--adv-start S``, from step ``S`` on): the flow-matching regression
pulls each step's prediction ``r_hat`` towards the mean residual given ``x_t``, which a sampler
with few steps turns into smooth detail. As in Adversarial Diffusion Distillation (Sauer et al.
2023), the one-step reconstruction ``x_b + r_hat / s`` of the same forward pass also meets a
PatchGAN (:mod:`licodec.train.discriminator`, hinge losses) against the real crop, weighted by
VQGAN's adaptive weight (gradient norms at the U-Net's last convolution) times ``adv_weight``;
the flow-matching loss stays as the regulariser. The discriminator is training state only.
With ``--adv-on-sample`` the PatchGAN judges instead what the decoder returns at realism 1: the
full sample from ``temperature * eps`` with its default Euler steps, the earlier steps without
gradient and the last one with it (so the network learns on the states its own sampler reaches,
not only on ``x_t`` made from real residuals). With ``--disc-warmup N`` the discriminator trains
alone for its first ``N`` steps (the flow sees only the flow-matching loss), so that a fine-tune
from trained weights does not start by following a random discriminator.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from licodec.codec.base import CodecOutput
from licodec.errors import LicodecError
from licodec.train.discriminator import PatchDiscriminator, adaptive_weight, hinge_d_loss, hinge_g_loss

LOGGED = ("g_adv", "adv_lambda", "d_loss", "d_real", "d_fake")


class FlowObjective:
    """The trainer's objective for generative decoders (interface of :mod:`licodec.train.objectives`,
    plus :meth:`forward`, which runs the frozen base codec instead of the decoder's sampler)."""

    supports_ddp = False  # the base decode and the draws are per process; one process is enough here

    def __init__(self, model, cfg, device: torch.device) -> None:
        if cfg.rung or cfg.prior or cfg.teacher:
            raise LicodecError(f"{cfg.model!r} trains with the flow-matching loss (and --adv-start): no --rung, "
                               "--prior or --teacher")
        if cfg.adv_start >= 0 and not cfg.init:
            raise LicodecError("--adv-start fine-tunes a trained flow: give its weights with --init")
        stride = model.base.stride if hasattr(model.base, "stride") else 1
        if cfg.crop % max(stride, model.stride):
            raise LicodecError(f"--crop must be a multiple of {max(stride, model.stride)} for {cfg.model!r}")
        self.cfg, self.model = cfg, model
        self.scale = model.config.residual_scale
        self.adv_start, self.adv_weight = cfg.adv_start, cfg.adv_weight
        self.on_sample, self.disc_warmup = cfg.adv_on_sample, cfg.disc_warmup
        self.detail, self.conditional = cfg.adv_detail, cfg.adv_conditional
        if (self.on_sample or self.disc_warmup or self.detail or self.conditional) and cfg.adv_start < 0:
            raise LicodecError("--adv-on-sample, --adv-detail, --adv-conditional and --disc-warmup need --adv-start")
        self.disc = self.d_opt = None  # built only for adversarial runs
        if cfg.adv_start >= 0:
            self.disc = PatchDiscriminator(in_channels=6 if self.conditional else 3).to(device)
            self.d_opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        self._fake = self._real = self._cond = None

    def adversarial(self, step: int) -> bool:
        return 0 <= self.adv_start <= step

    def qualities(self, quality: Tensor) -> Tensor:
        """Uniform in the decoder's quality range; for a base with integer qualities only (one
        codebook per quality), each integer of the range equally often."""
        if not self.model.integer_qualities:
            return quality
        lo, hi = self.model.quality_range
        u = (quality - lo) / max(hi - lo, 1e-9)
        return (lo + torch.floor(u * (hi - lo + 1))).clamp(lo, hi)

    @torch.no_grad()
    def forward(self, x: Tensor, quality: Tensor, features: bool = False) -> CodecOutput:
        """The base decode ``x_b`` in ``features["x_b"]`` (float32, no gradient)."""
        with torch.autocast(x.device.type, enabled=False):
            out, x_b = self.model.base_decode(x.float(), quality)
        return CodecOutput(x_hat=x_b, likelihoods={}, bits=out.bits.detach(), features={"x_b": x_b})

    def loss(self, model, out, x: Tensor, quality: Tensor, step: int) -> dict:
        g = torch.Generator()
        g.manual_seed(int(np.random.SeedSequence([self.cfg.seed, step, 3]).generate_state(1)[0]))
        x = x.float()
        x_b = out.features["x_b"]
        r = self.scale * (x - x_b)
        eps = torch.randn(x.shape, generator=g).to(x.device)
        t = torch.sigmoid(torch.randn(x.shape[0], generator=g)).to(x.device)
        tt = t[:, None, None, None]
        x_t = (1 - tt) * r + tt * eps
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            v = model.velocity(x_t, x_b, t, quality)
        v = v.float()
        loss = (v - (eps - r)).square().mean()
        terms = {}
        adversarial = self.adversarial(step)
        fooling = adversarial and step >= self.adv_start + self.disc_warmup  # the generator's adversarial term
        with torch.set_grad_enabled(fooling and not self.on_sample):
            r_one = x_t - tt * v
            x_one = (x_b + r_one / self.scale).clamp(0, 1)
        if adversarial:
            with torch.set_grad_enabled(fooling):
                if self.on_sample:
                    fake = self.decoder_sample(model, x_b, quality, g)
                else:
                    fake = (x_b + model.detail(r_one) / self.scale).clamp(0, 1) if self.detail else x_one
            self._real = (x_b + model.detail(r) / self.scale).clamp(0, 1) if self.detail else x
            self._cond = x_b if self.conditional else None
            terms = {"fm": loss.detach()}
            if fooling:
                self.disc.requires_grad_(False)
                g_adv = hinge_g_loss(self._judge(fake))
                lam = adaptive_weight(loss, g_adv, model.unet.head.weight)
                terms.update(g_adv=g_adv.detach(), adv_lambda=lam)
                loss = loss + self.adv_weight * lam * g_adv
            self._fake = fake.detach()
            x_one = x_one.detach()
            if self.on_sample:
                terms["sample_mse"] = (255 * (self._fake - x)).square().mean()
        with torch.no_grad():
            mse = (255 * (x_one - x)).square().mean()
            base_mse = (255 * (x_b - x)).square().mean()
        bpp = out.bits.mean() / (x.shape[-2] * x.shape[-1])
        return {"loss": loss, "bpp": bpp, "mse": mse, "base_mse": base_mse, **terms}

    def decoder_sample(self, model, x_b: Tensor, quality: Tensor, g: torch.Generator) -> Tensor:
        """The decoder's own full sample of ``x_b`` (realism 1, its default steps, temperature and
        low-band removal, noise from ``g``), differentiable through its last Euler step only."""
        eps = torch.randn(x_b.shape, generator=g).to(x_b.device)
        with torch.autocast(x_b.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            r = model.integrate(model.config.temperature * eps, x_b, quality, model.config.steps, grad_last=True)
            r = model.detail(r)
        return (x_b + r.float() / self.scale).clamp(0, 1)

    def _judge(self, image: Tensor) -> Tensor:
        """The discriminator's logits for ``image`` (beside the base decode when conditional)."""
        return self.disc(image if self._cond is None else torch.cat([image, self._cond], dim=1))

    def after_step(self, step: int, x: Tensor, out, lr: float) -> dict:
        """The discriminator's step (real: ``x``, or with ``--adv-detail`` the base decode plus the true
        residual's detail, as :meth:`loss` kept it; fake: this step's one-step reconstructions, or the
        decoder's samples with ``--adv-on-sample``); it trains from ``adv_start`` on, warm-up included."""
        if not self.adversarial(step) or self._fake is None:
            return {}
        for g in self.d_opt.param_groups:
            g["lr"] = lr
        self.disc.requires_grad_(True)
        real, fake = self._judge(self._real.float()), self._judge(self._fake)
        d_loss = hinge_d_loss(real, fake)
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        self._fake = self._real = self._cond = None
        return {"d_loss": d_loss.detach(), "d_real": real.detach().mean(), "d_fake": fake.detach().mean()}

    def aux_loss(self, model):
        return None

    def log_record(self, current: dict) -> dict:
        extra = {k: current[k] for k in ("fm", *LOGGED) if k in current}
        if "sample_mse" in current:
            extra["sample_psnr"] = float(10 * np.log10(255**2 / max(current["sample_mse"], 1e-9)))
        return {"base_psnr": float(10 * np.log10(255**2 / max(current["base_mse"], 1e-9))), **extra}

    def state_dict(self) -> dict:
        if self.disc is None:
            return {"flow": True}
        return {"flow": True, "disc": self.disc.state_dict(), "d_opt": self.d_opt.state_dict()}

    def load_state_dict(self, state: dict | None) -> None:
        if state is not None and not state.get("flow"):
            raise LicodecError("the checkpoint does not train a generative decoder; use --restart or another --out")
        if state is not None and "disc" in state and self.disc is not None:
            self.disc.load_state_dict(state["disc"])
            self.d_opt.load_state_dict(state["d_opt"])
