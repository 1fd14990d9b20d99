"""The training objective of :class:`~licodec.codec.video.ConditionalVideoCodec`: P-frames.

There is little training video here, so most pairs are synthesised from the training photos:
a crop ``x`` (the current frame) and a previous frame made by warping it with random motion (a
global pan, zoom and rotation of random size, plus a smooth random deformation), both cut to
the crop's centre ``crop - 64`` so that no replicated border enters. With ``--video-data DIR``,
a share of the pairs are consecutive frames (1 or 2 apart) of the real clips under ``DIR``
(folders of PNG frames, e.g. the Vimeo-90k septuplet samples).

The previous frame is then coded by the intra codec at the pair's I-frame quality (the pair's
quality plus ``config.intra_quality_offset``; its eval-mode forward, rounded to 8 bits), as a
decoder would have it; the encoder's flow is DIS optical
flow between the current frame and that decoded reference (:mod:`licodec.codec.motion`).

With ``--p-chain K`` each sample is a run of ``K + 2`` frames instead (synthetic: each frame the
next one warped by its own random motion; real clips: consecutive frames): the first is intra
coded, the next ``K`` are P-coded by the model being trained (no gradient, rounded to 8 bits),
and the last is the trained P-frame, so the model learns to code against references that
already carry its own P-frame errors (the drift of a long I-period; DCVC-style cascaded
training, without the gradient through the chain).
With ``--sprites P`` a share ``P`` of the synthetic samples also carry a moving object: a blob
cut from another crop of the batch (mirrored; with a batch of 1, the crop itself mirrored), pasted
over the scene and moved by its own random motion (twice the scene's range; the blob has no part
in the cut margin, so the replicated border never holds any of it). So the pairs have motion edges
and occlusions as real video does, which smooth synthetic motion lacks (the idea of FlyingChairs,
Dosovitskiy et al. 2015).
With ``--resample-current`` the current frame of a synthetic sample is resampled too, by a random
sub-pixel shift (bilinear, 0-1 px in x and y): every earlier frame is a bilinear warp, which blurs
it, so otherwise each pair's reference is blurrier than its current frame, which consecutive frames
of a real video are not. (A filter of the prediction trained on prediction MSE over the unmatched
pairs learned to sharpen: +0.3 dB on them and -0.2 to -0.4 dB on BasketballPass; over the matched
pairs it learned nothing, +-0.00 dB on both: docs/video.md.)
With ``--prior`` (video-dvc, from ``--init`` weights) only the residual prior trains
(:mod:`licodec.codec.residual_prior`; weights without one get a new one, which starts as the
identity), everything else frozen, on the rate of the *rounded* residual latents (straight-through
rounding), the rate the coder pays: the prior rescales the final scales only, so the
reconstruction, and the distortion, do not depend on it. (An earlier prior that also corrected
the means drifted the wrong way under the additive-noise rate: +6% of the residual's bits in 825
steps, measured.) Without ``--prior`` a residual prior, if any, stays frozen.
With ``--post-filter`` (video-dvc, from ``--init`` weights) only the P-frames' post-filter trains
(:mod:`licodec.codec.post_filter`; a new one starts as the identity), on the distortion of the
shown (filtered) frame (the rate does not depend on it); with ``--prior`` as well, both train, each
on its own term of the loss. A chain's references (``--p-chain``) are unfiltered, as in coding. Without ``--post-filter`` a filter, if any, stays frozen.
With ``--residual-adapter`` (video-dvc, from ``--init`` weights) only the residual adapters train
(:mod:`licodec.codec.residual_adapter`; weights without them get new ones of rank
``RESIDUAL_ADAPTER_RANK``, or ``--adapter-rank``, which start as the identity; ``--adapter-rank``
above their rank grows the weights' own), on the rate of the rounded residual
latents (straight-through, as the coder pays it) and the distortion of the *unfiltered* frame (the
next reference; a post-filter, if any, stays frozen); with ``--prior`` as well, the residual prior
trains too. Not with ``--post-filter``: the two train on different frames' distortion. With
``--with-motion`` as well, the motion coder (and its hyperprior's tables) trains too, on the same
loss (its own rate with additive noise, as it trained alone), so that motion and residual coding adapt to each other (trained alone over new pairs, the
motion coder lost to the adapters and prior it was no longer matched with: docs/video.md). With
``--flow-refiner`` as well (with ``--residual-adapter``), the flow refiner trains too
(:mod:`licodec.codec.flow_refiner`; weights without one get a new one of width
``FLOW_REFINER_WIDTH``, which starts as the identity).
Loss per pair: ``lambda(q) * 255^2 * MSE(x_hat, x) + bpp`` (frame and motion bits), plus for the
first ``WARMUP_STEPS`` steps of a run from random weights (not with ``--init``)
``0.1 * lambda(q) * 255^2 * MSE(warp(ref, flow_hat), x)``, which teaches the motion coder what a good prediction needs before the context takes over (DVC's
warm-up, Lu et al. 2019). Every draw comes from a generator seeded by ``(seed, step)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from licodec.codec.base import CodecOutput
from licodec.codec.latent import ste_round
from licodec.codec.motion import estimate_flow_batch, warp
from licodec.errors import LicodecError

WARMUP_STEPS = 2000
RESIDUAL_PRIOR_WIDTH = 96  # the width of a new residual prior (--prior): 0.21 M parameters
POST_FILTER_WIDTH = 24  # the width of a new post-filter (--post-filter): 13.2 k parameters
RESIDUAL_ADAPTER_RANK = 8  # the rank of new residual adapters (--residual-adapter): 0.16 M parameters
FLOW_REFINER_WIDTH = 32  # the width of a new flow refiner (--flow-refiner): 50.8 k parameters
MARGIN = 32  # pixels cut on each side of a synthetic pair
REAL_SHARE = 0.3  # share of pairs from real clips when --video-data is given


def synthetic_flow(b: int, h: int, w: int, g: torch.Generator) -> Tensor:
    """Random smooth motion ``(b, 2, h, w)`` in pixels: pan (log-uniform 0.25-16 px), zoom
    (+-4%), rotation (+-2 degrees) about the centre, plus a deformation of +-1.5 px on a 4x4 grid
    (bicubic). A tenth of the flows are zero (a static scene)."""
    u = torch.rand(b, 8, generator=g, dtype=torch.float64)
    pan = torch.exp(math.log(0.25) + u[:, 0] * math.log(64.0)) * (u[:, 1] < 0.9)
    angle = u[:, 2] * 2 * math.pi
    tx, ty = pan * torch.cos(angle), pan * torch.sin(angle)
    zoom = (u[:, 3] - 0.5) * 0.08
    rot = (u[:, 4] - 0.5) * math.radians(4)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) - (h - 1) / 2,
                            torch.arange(w, dtype=torch.float64) - (w - 1) / 2, indexing="ij")
    fx = tx[:, None, None] + zoom[:, None, None] * xs - rot[:, None, None] * ys
    fy = ty[:, None, None] + zoom[:, None, None] * ys + rot[:, None, None] * xs
    deform = (torch.rand(b, 2, 4, 4, generator=g, dtype=torch.float64) - 0.5) * 3.0
    deform = F.interpolate(deform, size=(h, w), mode="bicubic", align_corners=True)
    flow = torch.stack([fx, fy], 1) + deform * (u[:, 5] < 0.7)[:, None, None, None]
    return (flow * (u[:, 6] >= 0.1)[:, None, None, None]).float()


def sprite_masks(b: int, h: int, w: int, g: torch.Generator) -> Tensor:
    """Random blob-shaped masks ``(b, 1, h, w)`` in [0, 1]: a disc of radius 12-35% of the side at a
    random centre, its edge bent by a smooth random field (6x6, bicubic), thresholded and then
    softened over about 2 pixels (an anti-aliased object edge)."""
    u = torch.rand(b, 3, generator=g, dtype=torch.float64)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, h, dtype=torch.float64), torch.linspace(0, 1, w, dtype=torch.float64),
                            indexing="ij")
    radius = (0.12 + 0.23 * u[:, 2])[:, None, None]
    dist = torch.sqrt((xs - u[:, 0, None, None]) ** 2 + (ys - u[:, 1, None, None]) ** 2) / radius
    bend = F.interpolate(torch.rand(b, 1, 6, 6, generator=g, dtype=torch.float64) - 0.5, size=(h, w),
                         mode="bicubic", align_corners=True)[:, 0]
    mask = (dist + 0.8 * bend < 1).double()[:, None]
    return F.avg_pool2d(mask, 3, 1, 1, count_include_pad=False).float()


def _clips(root: Path) -> list[list[Path]]:
    """Folders under ``root`` holding 2 or more PNG frames (sorted by name), each a clip."""
    clips = []
    for folder in sorted({p.parent for p in root.rglob("*.png")}):
        frames = sorted(folder.glob("*.png"))
        if len(frames) >= 2:
            clips.append(frames)
    if not clips:
        raise LicodecError(f"no clip (a folder of 2 or more PNG frames) under {root}")
    return clips


class VideoObjective:
    """The trainer's objective for the video codec (interface of :mod:`licodec.train.objectives`,
    plus :meth:`forward`, which builds the pair, the decoded reference and the flow)."""

    supports_ddp = False

    def __init__(self, model, cfg, device: torch.device) -> None:
        if cfg.rung or cfg.adv_start >= 0 or cfg.teacher:
            raise LicodecError(f"{cfg.model!r} trains with its rate-distortion loss alone: no --rung, --adv-start "
                               "or --teacher")
        self.prior_only = bool(cfg.prior)
        self.filter_only = bool(getattr(cfg, "post_filter", False))
        self.adapter_only = bool(getattr(cfg, "residual_adapter", False))
        self.with_motion = bool(getattr(cfg, "with_motion", False))
        self.refiner = bool(getattr(cfg, "flow_refiner", False))
        rank = int(getattr(cfg, "adapter_rank", 0))
        if rank and not self.adapter_only:
            raise LicodecError("--adapter-rank sets the rank of the residual adapters: give --residual-adapter too")
        if self.with_motion and not self.adapter_only:
            raise LicodecError("--with-motion trains the motion coder beside the residual adapters: give "
                               "--residual-adapter too (without both, the motion coder trains alone)")
        if self.refiner and not self.adapter_only:
            raise LicodecError("--flow-refiner trains the flow refiner beside the residual adapters: give "
                               "--residual-adapter too")
        if self.filter_only and self.adapter_only:
            raise LicodecError("--post-filter trains on the shown frame, --residual-adapter on the unfiltered one: "
                               "train them one after the other")
        for flag, part, wanted in (("--prior", "the residual prior", self.prior_only),
                                   ("--post-filter", "the post-filter", self.filter_only),
                                   ("--residual-adapter", "the residual adapters", self.adapter_only)):
            if not wanted:
                continue
            if not hasattr(model, "add_residual_prior"):
                raise LicodecError(f"{flag} trains {part} of residual P-frames (video-dvc), not {cfg.model!r}")
            if not cfg.init:
                raise LicodecError(f"{flag} trains {part} of trained weights: give them with --init")
        if self.prior_only and model.residual_prior is None:
            model.add_residual_prior(RESIDUAL_PRIOR_WIDTH)
        if self.filter_only and model.post_filter is None:
            model.add_post_filter(POST_FILTER_WIDTH)
        if self.adapter_only and model.residual_adapter is None:
            model.add_residual_adapter(rank or RESIDUAL_ADAPTER_RANK)
        elif rank and rank != model.residual_adapter.rank:
            model.grow_residual_adapter(rank)
        if self.refiner and model.flow_refiner is None:
            model.add_flow_refiner(FLOW_REFINER_WIDTH)
        if (self.prior_only or self.filter_only or self.adapter_only) and not self.with_motion:
            model.requires_grad_(False)
        for part, wanted in (("residual_prior", self.prior_only), ("post_filter", self.filter_only),
                             ("residual_adapter", self.adapter_only), ("flow_refiner", self.refiner)):
            if getattr(model, part, None) is not None:  # each trains only with its own flag
                getattr(model, part).requires_grad_(wanted)
        inner = cfg.crop - 2 * MARGIN
        if inner <= 0 or inner % model.stride:
            raise LicodecError(f"--crop must be {2 * MARGIN} plus a multiple of {model.stride} for {cfg.model!r} "
                               f"(e.g. {model.stride * 3 + 2 * MARGIN})")
        self.cfg, self.model, self.device, self.inner = cfg, model, device, inner
        root = getattr(cfg, "video_data", "")
        self.clips = _clips(Path(root)) if root else []
        self.chain = int(getattr(cfg, "p_chain", 0))
        self.sprites = float(getattr(cfg, "sprites", 0.0))
        self.resample_current = bool(getattr(cfg, "resample_current", False))
        if not 0 <= self.sprites <= 1:
            raise LicodecError(f"--sprites is a share of the pairs, from 0 to 1; got {self.sprites}")
        if self.chain < 0:
            raise LicodecError(f"--p-chain must not be negative, got {self.chain}")
        self.warmup_steps = 0 if cfg.init else WARMUP_STEPS
        self._frames = {}
        self._step = 0

    def qualities(self, quality: Tensor) -> Tensor:
        return quality

    def _generator(self, step: int) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(int(np.random.SeedSequence([self.cfg.seed, step, 5]).generate_state(1)[0]))
        return g

    def _frame(self, path: Path) -> np.ndarray:
        if path not in self._frames:
            with Image.open(path) as im:
                self._frames[path] = np.asarray(im.convert("RGB"))
        return self._frames[path]

    def _real_run(self, g: torch.Generator, n: int) -> list[Tensor]:
        """``n`` frames of a real clip, oldest first (1 or 2 apart for a pair, consecutive for a chain)."""
        clip = self.clips[int(torch.randint(len(self.clips), (1,), generator=g))]
        if len(clip) < n:
            raise LicodecError(f"--p-chain {n - 2} needs clips of {n} frames or more; {clip[0].parent} has {len(clip)}")
        gap = 1 + int(torch.randint(2, (1,), generator=g)) if n == 2 and len(clip) > 2 else 1
        i = int(torch.randint(len(clip) - gap * (n - 1), (1,), generator=g))
        frames = [self._frame(clip[i + k * gap]) for k in range(n)]
        s = self.inner
        if min(frames[0].shape[:2]) < s:
            raise LicodecError(f"clip frame {clip[i]} is smaller than the training crop {s}")
        top = int(torch.randint(frames[0].shape[0] - s + 1, (1,), generator=g))
        left = int(torch.randint(frames[0].shape[1] - s + 1, (1,), generator=g))

        def cut(a):
            return torch.from_numpy(np.ascontiguousarray(a[top : top + s, left : left + s])).permute(2, 0, 1).float() / 255

        run = torch.stack([cut(f) for f in frames])
        return list((run.flip(-1) if bool(torch.rand(1, generator=g) < 0.5) else run).unbind(0))

    @torch.no_grad()
    def sequences(self, x: Tensor, step: int) -> list[Tensor]:
        """The ``p_chain + 2`` frames ``(B, 3, crop - 64, crop - 64)`` of a step, oldest first; the
        last is the current frame. Every frame but the current one is rounded to 8 bits, like any
        decoded frame's source."""
        g = self._generator(step)
        b, _, h, w = x.shape
        frames = [x.float()]
        if self.sprites:  # an object over the scene, moving by its own motion: edges and occlusions
            sprite = (x.roll(1, 0) if b > 1 else x).flip(-1, -2).float()
            alpha = sprite_masks(b, h, w, g) * (torch.rand(b, generator=g) < self.sprites)[:, None, None, None]
            # none of the object in the margin that is cut off: a warp that reads past the crop then
            # finds no object in the replicated border (the object's motion exceeds the margin)
            alpha[..., :MARGIN, :] = alpha[..., h - MARGIN :, :] = 0
            alpha[..., :MARGIN] = alpha[..., w - MARGIN :] = 0
            background = frames[0]
            frames[0] = alpha * sprite + (1 - alpha) * background
        for _ in range(self.chain + 1):
            if self.sprites:
                background = warp(background, synthetic_flow(b, h, w, g))
                sprite_flow = synthetic_flow(b, h, w, g) * 2
                sprite, alpha = warp(sprite, sprite_flow), warp(alpha, sprite_flow)
                frames.insert(0, (alpha * sprite + (1 - alpha) * background).clamp(0, 1))
            else:
                frames.insert(0, warp(frames[0], synthetic_flow(b, h, w, g)).clamp(0, 1))
        if self.resample_current:  # as sharp as the warped frames before it
            shift = torch.rand(b, 2, 1, 1, generator=g).expand(b, 2, h, w)
            frames[-1] = warp(frames[-1], shift).clamp(0, 1)
        m = MARGIN
        frames = [f[..., m : h - m, m : w - m].clone() for f in frames]
        if self.clips:
            real = torch.rand(b, generator=g) < REAL_SHARE
            for i in torch.nonzero(real).flatten().tolist():
                for f, r in zip(frames, self._real_run(g, len(frames))):
                    f[i] = r
        return [f.mul(255).round().div(255) for f in frames[:-1]] + [frames[-1].contiguous()]

    @torch.no_grad()
    def decoded_reference(self, prev: Tensor, quality: Tensor) -> Tensor:
        """The intra codec's decode of ``prev`` as an I-frame of frame quality ``quality`` (at the
        model's intra quality, ``config.intra_quality_offset`` higher), rounded to 8 bits."""
        intra = self.model.intra
        was_training = intra.training
        intra.eval()
        try:
            with torch.autocast(prev.device.type, enabled=False):
                x_hat = intra(prev.float(), self.model._intra_quality(quality)).x_hat
        finally:
            intra.train(was_training)
        return x_hat.clamp(0, 1).mul(255).round().div(255)

    def start(self, step: int) -> None:
        """The trainer's step about to run (the pairs' draws are seeded by it)."""
        self._step = step

    @torch.no_grad()
    def coded_reference(self, frame: Tensor, reference: Tensor, quality: Tensor) -> Tensor:
        """The model's own P-frame decode of ``frame`` against ``reference``, rounded to 8 bits."""
        flow = estimate_flow_batch(frame, reference, self.model.config.flow_preset)
        out = self.model(frame, quality, reference, flow)
        x_hat = out.features.get("reference_frame", out.x_hat)  # unfiltered: a post-filter only shows
        return x_hat.float().clamp(0, 1).mul(255).round().div(255)

    def forward(self, x: Tensor, quality: Tensor, features: bool = False) -> CodecOutput:
        frames = self.sequences(x, self._step)
        cur = frames[-1]
        reference = self.decoded_reference(frames[0], quality)
        for frame in frames[1:-1]:
            reference = self.coded_reference(frame, reference, quality)
        flow = estimate_flow_batch(cur, reference, self.model.config.flow_preset)
        rounded = self.prior_only or self.adapter_only  # the rate the coder pays
        out = self.model(cur, quality, reference, flow, **({"quantize": ste_round} if rounded else {}))
        out.features.update({"current": cur, "reference": reference})
        return out

    def loss(self, model, out, x: Tensor, quality: Tensor, step: int) -> dict:
        cur = out.features["current"]
        lam = torch.tensor([model.lambda_for_quality(float(q)) for q in quality], device=cur.device)
        # the adapters fit the next reference (unfiltered); everything else the frame shown
        x_hat = out.features["reference_frame"] if self.adapter_only else out.x_hat
        mse = (255 * (x_hat.float() - cur)).square().flatten(1).mean(1)
        pred_mse = (255 * (out.features["prediction"].float() - cur)).square().flatten(1).mean(1)
        pixels = cur.shape[-2] * cur.shape[-1]
        bpp = out.bits / pixels
        motion = sum(-torch.log2(out.likelihoods[k]).flatten(1).sum(1) for k in ("motion_y", "motion_z")) / pixels
        loss = (lam * mse + bpp).mean()
        if step < self.warmup_steps:
            loss = loss + 0.1 * (lam * pred_mse).mean()
        ref_mse = (255 * (out.features["reference"] - cur)).square().mean()
        return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(), "motion_bpp": motion.mean(),
                "pred_mse": pred_mse.mean(), "ref_mse": ref_mse}

    def after_step(self, step: int, x: Tensor, out, lr: float) -> dict:
        return {}

    def aux_loss(self, model):
        if (self.prior_only or self.filter_only or self.adapter_only) and not self.with_motion:
            return None  # the motion coder's tables stay
        return sum(m.z_model.loss() for m in model.children() if hasattr(m, "z_model"))

    def log_record(self, current: dict) -> dict:
        def db(mse):
            return float(10 * np.log10(255**2 / max(mse, 1e-9)))

        return {"motion_bpp": current["motion_bpp"], "pred_psnr": db(current["pred_mse"]),
                "ref_psnr": db(current["ref_mse"])}

    def state_dict(self) -> dict:
        return {"video": True, "prior": self.prior_only, "post_filter": self.filter_only,
                "residual_adapter": self.adapter_only, "with_motion": self.with_motion,
                "flow_refiner": self.refiner}

    def load_state_dict(self, state: dict | None) -> None:
        if state is not None and not state.get("video"):
            raise LicodecError("the checkpoint does not train a video codec; use --restart or another --out")
