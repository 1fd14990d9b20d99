"""Rate-distortion training for variable-rate codecs: resumable, bf16 where the CPU has it natively.

Loss per image: ``lambda(q) * 255^2 * MSE + bpp`` with a quality ``q`` drawn uniformly
from the codec's continuous range for every image of every batch, so one run trains
every quality. The entropy bottleneck's quantiles get their own auxiliary optimizer.
The loss comes from :func:`~licodec.train.objectives.objective_for`: this one for the
rate-distortion codecs; codebook codecs (``vqgan``) train with
:mod:`licodec.train.vq_objective` (reconstruction, commitment and a PatchGAN with its own
optimizer, in the checkpoint), on one process only for now.

Several processes: ``torchrun --nproc_per_node N -m licodec train ...`` trains with
``DistributedDataParallel`` (backend gloo on CPU; nccl, one GPU per process, when CUDA is
available). ``--batch`` is per process, so a step sees ``N * batch`` images. All the
randomness of a step is a function of ``(seed, step)``: the global batch's images, crops,
flips and qualities (:meth:`RandomCrops.step_batch <licodec.train.data.RandomCrops.step_batch>`)
and the entropy models' rate noise (:class:`StepNoise`); process ``r`` takes images
``r * batch`` to ``(r + 1) * batch - 1``. With losses that are means over images and DDP
averaging the gradients, N processes with batch ``b`` therefore take the step that one
process with batch ``N * b`` takes, up to float rounding, and a resumed run continues as an
uninterrupted one would. The distillation losses are ratios of sums over the batch, so
with a teacher this holds only approximately. The quantiles are left out of DDP's
gradient sync: their auxiliary loss does not depend on the data, so every process makes
the same update. The distiller's adapters are not in the DDP module; their gradients are
averaged explicitly. Only rank 0 writes the checkpoint (the unwrapped model's state),
``log.jsonl``, the progress bar and the export; the checkpoint and the training record
note the number of processes. A run may resume with another number of processes (its
global batch changes from then on).
"""

from __future__ import annotations

import functools
import json
import math
import os
import shlex
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from licodec import cpu
from licodec.entropy.models import EntropyBottleneck, GaussianConditional, load_trainable_state
from licodec.errors import LicodecError
from licodec.train.data import RandomCrops
from licodec.train.distill import Distiller
from licodec.train.objectives import objective_for
from licodec.zoo import create_model, export_weights
from licodec.zoo.registry import read_weights_config

CHECKPOINT = "checkpoint.pt"


def kept_checkpoint_name(step: int) -> str:
    """File name of a checkpoint kept by ``--keep-every`` (``licodec export RUN --step N``)."""
    return f"checkpoint_step{step}.pt"


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out: str
    model: str = "hyperprior-vr"
    steps: int = 30000
    batch: int = 8
    crop: int = 128
    lr: float = 2e-4
    aux_lr: float = 1e-3
    warmup: int = 500
    decay_from: float = 0.7  # cosine decay to 5% of lr over the last 30% of steps
    clip: float = 1.0
    bf16: bool = field(default_factory=lambda: cpu.native_bf16())  # bf16 autocast where the CPU has it natively
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 100
    max_minutes: float = 0.0  # stop (checkpoint and export) once the run's wall time reaches this; 0: no limit
    compile: bool = False  # torch.compile (inductor) the training forward
    init: str = ""  # start from these weights (a zoo name or a weights folder) instead of random
    # distillation (licodec.train.distill): a teacher (zoo name or weights folder) turns it on
    teacher: str = ""
    align_steps: int = 0  # stage 1: feature alignment
    channel_steps: int = 0  # stage 2: entropy-weighted channel distillation; then RD fine-tuning
    align_weight: float = 1.0
    channel_weight: float = 1.0
    # codebook codecs (vqgan; licodec.train.vq_objective)
    adv_start: int = -1  # step from which the PatchGAN loss is on; -1: never
    adv_weight: float = 0.5  # times VQGAN's adaptive weight
    adv_on_sample: bool = False  # generative decoders: the PatchGAN judges the decoder's full sample
    disc_warmup: int = 0  # generative decoders: adversarial steps in which only the discriminator trains
    adv_detail: bool = False  # generative decoders: the PatchGAN judges only the octaves the decoder generates
    adv_conditional: bool = False  # generative decoders: the PatchGAN sees the base decode beside each image
    rung: int = 0  # 0: base training; K: fine-tune rung K (codebook + 1x1 convs) of the --init weights
    # train only the learned prior of the --init weights: a codebook codec's index prior
    # (licodec.train.vq_prior_objective), video-dvc's residual prior (licodec.train.video_objective)
    prior: bool = False
    post_filter: bool = False  # video-dvc: train only the P-frames' post-filter (with --prior, both)
    residual_adapter: bool = False  # video-dvc: train only the residual adapters (with --prior, both)
    with_motion: bool = False  # video-dvc: with --residual-adapter, the motion coder trains too
    adapter_rank: int = 0  # video-dvc, with --residual-adapter: the adapters' rank (grown to it; 0: theirs, or 8 if new)
    flow_refiner: bool = False  # video-dvc: with --residual-adapter, the flow refiner trains too (added if none)
    # video codecs (licodec.train.video_objective)
    video_data: str = ""  # folders of PNG frames (real clips) for a share of the P-frame pairs; "" synthetic only
    entropy_lr_mult: float = 1.0  # learning rate of the hyper-latents' factorized densities, times lr
    sprites: float = 0.0  # share of synthetic P-frame pairs with a moving object over the scene
    resample_current: bool = False  # synthetic pairs: the current frame resampled at a random sub-pixel offset too
    p_chain: int = 0  # P-frames coded by the model itself before the trained one (0: the reference is an I-frame)
    # weight averaging and kept checkpoints (any codec)
    ema: float = 0.0  # decay of an exponential moving average of the trained weights, exported instead of them; 0: off
    keep_every: int = 0  # also keep the checkpoint of every N-th step as checkpoint_step<N>.pt; 0: only the latest


def learning_rate(cfg: TrainConfig, step: int, wall: float = 0.0) -> float:
    """Linear warm-up over ``cfg.warmup`` steps, then constant, then a cosine decay to 5% over
    the last ``1 - decay_from`` of the run. The run's progress is its share of ``cfg.steps`` or,
    with a time budget (``max_minutes``), of the budget's wall time if that is further along."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = step / max(cfg.steps, 1)
    if cfg.max_minutes > 0:
        progress = max(progress, wall / (cfg.max_minutes * 60))
    if progress < cfg.decay_from:
        return cfg.lr
    t = (progress - cfg.decay_from) / max(1 - cfg.decay_from, 1e-9)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def rd_loss(model, out, x: torch.Tensor, quality: torch.Tensor) -> dict:
    """Per-image RD loss averaged over the batch; also returns bpp and MSE (255 scale)."""
    n_pixels = x.shape[-2] * x.shape[-1]
    mse = (out.x_hat.float() - x).pow(2).flatten(1).mean(1)
    bpp = out.bits / n_pixels
    lam = torch.tensor([model.lambda_for_quality(float(q)) for q in quality], device=mse.device)
    loss = (lam * 255**2 * mse + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean() * 255**2}


class WeightAverage:
    """An exponential moving average of the trained parameters (Polyak averaging, the usual
    companion of diffusion and flow training, e.g. Karras et al. 2022), in float32.

    After step ``k`` (counted from 0 in this run, so a fine-tune starts from its ``--init``
    weights): ``avg = d * avg + (1 - d) * w`` with ``d = min(decay, (1 + k) / (10 + k))``, the
    warm-up that keeps the first steps' average from leaning on the starting weights.
    """

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise LicodecError(f"--ema {decay}: the decay must lie strictly between 0 and 1")
        self.decay, self.params = decay, dict(named_params)
        self.average = {n: p.detach().float().clone() for n, p in self.params.items()}

    @torch.no_grad()
    def update(self, k: int) -> None:
        d = min(self.decay, (1 + k) / (10 + k))
        for n, p in self.params.items():
            self.average[n].lerp_(p.detach().float(), 1 - d)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "average": self.average}

    def load_state_dict(self, state: dict) -> None:
        if set(state["average"]) != set(self.average):
            raise LicodecError("the checkpoint's weight average does not cover this run's trained parameters")
        self.average = {n: t.float().clone() for n, t in state["average"].items()}


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def command_line(cfg: dict) -> str:
    """The ``licodec train`` command (under ``torchrun`` when the run used several processes)
    that reproduces a run of config ``cfg``."""
    default = TrainConfig(data="", out="")
    world_size = cfg.get("world_size", 1)
    parts = ["torchrun", "--nproc_per_node", str(world_size), "-m"] if world_size > 1 else []
    parts += ["licodec", "train", "--data", cfg["data"], "--out", cfg["out"]]
    flags = {"model": "--model", "steps": "--steps", "batch": "--batch", "crop": "--crop", "lr": "--lr",
             "seed": "--seed", "checkpoint_every": "--checkpoint-every", "max_minutes": "--max-minutes", "init": "--init", "teacher": "--teacher",
             "align_steps": "--align-steps", "channel_steps": "--channel-steps", "align_weight": "--align-weight",
             "channel_weight": "--channel-weight", "adv_start": "--adv-start", "adv_weight": "--adv-weight", "disc_warmup": "--disc-warmup",
             "rung": "--rung", "video_data": "--video-data", "p_chain": "--p-chain", "sprites": "--sprites",
             "entropy_lr_mult": "--entropy-lr-mult", "ema": "--ema", "keep_every": "--keep-every",
             "adapter_rank": "--adapter-rank"}
    for key, flag in flags.items():
        if key not in cfg:
            continue
        if cfg[key] != getattr(default, key) or key == "steps":
            parts += [flag, str(cfg[key])]
    if not cfg["bf16"]:
        parts.append("--no-bf16")
    for key in ("prior", "post_filter", "residual_adapter", "with_motion", "flow_refiner", "resample_current",
                "adv_on_sample", "adv_detail", "adv_conditional"):
        if cfg.get(key):
            parts.append("--" + key.replace("_", "-"))
    if cfg.get("compile"):
        parts.append("--compile")
    return " ".join(shlex.quote(p) for p in parts)


def _weights_ref(ref: str) -> tuple[str, Path | None]:
    """``(codec name, weights folder or None)`` of a zoo name or a weights folder."""
    if Path(ref).is_dir():
        return read_weights_config(Path(ref))["codec"], Path(ref)
    return ref, None


def initial_model(cfg: TrainConfig):
    """The model a run starts from: random, or ``cfg.init``'s weights. Weights of another codec
    are grown into this one by its ``grow_from`` (e.g. the FEDS teacher from the hyperprior)."""
    if not cfg.init:
        return create_model(cfg.model, pretrained=False)
    init_codec, weights_dir = _weights_ref(cfg.init)
    if init_codec == cfg.model:
        return create_model(cfg.model, pretrained=True, weights_dir=weights_dir)
    source = create_model(init_codec, pretrained=True, weights_dir=weights_dir)
    model = create_model(cfg.model, pretrained=False)
    if not hasattr(model, "grow_from"):
        raise LicodecError(f"{cfg.model!r} cannot start from {init_codec!r} weights")
    try:
        model.grow_from(source)
    except ValueError as e:
        raise LicodecError(f"cannot start {cfg.model!r} from {init_codec!r}: {e}") from None
    return model


def make_distiller(cfg: TrainConfig, student) -> Distiller | None:
    """The FEDS distiller of a run with a teacher (None without one)."""
    if not cfg.teacher:
        return None
    name, weights_dir = _weights_ref(cfg.teacher)
    teacher = create_model(name, pretrained=True, weights_dir=weights_dir).to(memory_format=torch.channels_last)
    try:
        return Distiller(student, teacher, cfg.align_steps, cfg.channel_steps, cfg.align_weight, cfg.channel_weight)
    except ValueError as e:
        raise LicodecError(f"cannot distil {cfg.model!r} from {name!r}: {e}") from None


class StepNoise:
    """The entropy models' training noise, drawn so that it does not depend on the world size.

    In training, CompressAI's entropy models add uniform noise in [-1/2, 1/2) to the latents
    to estimate the rate. From torch's global generator, image ``i`` of a step's global batch
    would get other noise with 2 processes than with 1. Installed on ``model`` (for the
    training forward, batch ``batch`` per process), this draws the noise of the whole global
    batch from a generator seeded by ``(seed, step)`` (:meth:`start`) and adds this process's
    slice of it: cheap, the latents are small.
    """

    def __init__(self, model: torch.nn.Module, seed: int, batch: int, rank: int = 0, world_size: int = 1) -> None:
        self.seed, self.batch, self.rank, self.world_size = seed, batch, rank, world_size
        self.generator = torch.Generator()
        for m in model.modules():
            if isinstance(m, (EntropyBottleneck, GaussianConditional)):
                m.quantize = functools.partial(self._quantize, m.quantize, isinstance(m, EntropyBottleneck))

    def start(self, step: int) -> None:
        """Seed the noise of step ``step``."""
        self.generator.manual_seed(int(np.random.SeedSequence([self.seed, step, 1]).generate_state(1)[0]))

    @torch.compiler.disable
    def _quantize(self, original, channel_major: bool, inputs: torch.Tensor, mode: str, means=None) -> torch.Tensor:
        if mode != "noise":
            return original(inputs, mode, means)
        b = self.batch
        # EntropyBottleneck.forward passes (C, 1, B * h * w); GaussianConditional (B, ...)
        shape = (inputs.shape[0], inputs.numel() // (inputs.shape[0] * b)) if channel_major else inputs.shape[1:]
        noise = torch.rand((b * self.world_size, *shape), generator=self.generator, dtype=inputs.dtype)
        noise = noise[self.rank * b : (self.rank + 1) * b].to(inputs.device) - 0.5
        return inputs + (noise.transpose(0, 1).reshape(inputs.shape) if channel_major else noise)


def _init_distributed() -> tuple[int, int, torch.device, bool]:
    """``(rank, world size, device, whether the process group is ours)``. Under torchrun (its
    environment has ``WORLD_SIZE`` > 1) this creates the process group: gloo on CPU, nccl with
    one GPU per process (``LOCAL_RANK``) when CUDA is available. Otherwise ``(0, 1, cpu, False)``."""
    owned = not (dist.is_available() and dist.is_initialized())
    if owned:
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return 0, 1, torch.device("cpu"), False
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    return dist.get_rank(), dist.get_world_size(), device, owned


def _average_gradients(params, world_size: int) -> None:
    """Average the gradients of ``params`` over the processes. Which parameters have one
    depends only on the step (the distillation stage), so it is the same set everywhere."""
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world_size
        for g, v in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(v.view(g.shape))


def train(cfg: TrainConfig, resume: bool = True) -> Path | None:
    """Train ``cfg.model`` from scratch (or resume ``cfg.out``); export weights at the end.
    Under torchrun every process runs this; rank 0 returns the export folder, the others None."""
    rank, world_size, device, owned = _init_distributed()
    try:
        return _train(cfg, resume, rank, world_size, device)
    finally:
        if owned:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, resume: bool, rank: int, world_size: int, device: torch.device) -> Path | None:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = initial_model(cfg).train()
    model = model.to(memory_format=torch.channels_last)
    distiller = make_distiller(cfg, model)
    model.to(device)
    if distiller is not None:
        distiller.to(device)
        distiller.teacher[0].to(device)
    if cfg.prior and getattr(model, "objective", "rd") != "video":  # a codebook codec's index prior alone
        from licodec.train.vq_prior_objective import PriorObjective

        objective = PriorObjective(model, cfg, device)
    else:
        objective = objective_for(model, cfg, device)  # RD, or e.g. the VQ losses + discriminator (own optimizer)
    if world_size > 1 and not objective.supports_ddp:
        raise LicodecError(f"{cfg.model} cannot train under torchrun yet (its codebook statistics would differ "
                           "between processes); train it with one process")
    noise = StepNoise(model, cfg.seed, cfg.batch, rank, world_size)
    aux_names = [n for n, _ in model.named_parameters() if n.endswith("quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n in aux_names]
    main = [(n, p) for n, p in model.named_parameters() if n not in aux_names and p.requires_grad]
    main_params = [p for n, p in main if cfg.entropy_lr_mult == 1 or ".z_model." not in n]
    if distiller is not None:
        main_params += list(distiller.parameters())
    groups = [{"params": main_params, "lr_mult": 1.0}]
    if cfg.entropy_lr_mult != 1:  # the hyper-latents' factorized densities, at their own rate
        groups.append({"params": [p for n, p in main if ".z_model." in n], "lr_mult": cfg.entropy_lr_mult})
    opt = torch.optim.Adam(groups, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr) if aux_params else None
    average = WeightAverage(main, cfg.ema) if cfg.ema else None
    step, wall, saved = 0, 0.0, None
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["train_config"]["model"] != cfg.model:
            raise LicodecError(f"{ckpt_path} trains {ckpt['train_config']['model']!r}, not {cfg.model!r}")
        if ckpt["train_config"].get("teacher", "") != cfg.teacher:
            raise LicodecError(f"{ckpt_path} was trained with teacher {ckpt['train_config'].get('teacher', '')!r}, "
                               f"not {cfg.teacher!r}; use --restart or another --out")
        if ckpt["train_config"].get("prior", False) != cfg.prior:
            what = "trains" if ckpt["train_config"].get("prior", False) else "does not train"
            raise LicodecError(f"{ckpt_path} {what} a learned prior alone (--prior), unlike this run; "
                               "use --restart or another --out")
        for key, flag, part in (("post_filter", "--post-filter", "the post-filter"),
                                ("residual_adapter", "--residual-adapter", "the residual adapters"),
                                ("with_motion", "--with-motion", "the motion coder with them"),
                                ("flow_refiner", "--flow-refiner", "a flow refiner")):
            if ckpt["train_config"].get(key, False) != getattr(cfg, key):
                what = "trains" if ckpt["train_config"].get(key, False) else "does not train"
                raise LicodecError(f"{ckpt_path} {what} {part} ({flag}), unlike this run; "
                                   "use --restart or another --out")
        if ckpt["train_config"].get("adapter_rank", 0) != cfg.adapter_rank:
            raise LicodecError(f"{ckpt_path} trains residual adapters of --adapter-rank "
                               f"{ckpt['train_config'].get('adapter_rank', 0)}, not {cfg.adapter_rank}; "
                               "use --restart or another --out")
        load_trainable_state(model, ckpt["model"])
        if distiller is not None:
            distiller.load_state_dict(ckpt["distill"])
        opt.load_state_dict(ckpt["opt"])
        if aux_opt is not None:
            aux_opt.load_state_dict(ckpt["aux_opt"])
        objective.load_state_dict(ckpt.get("objective"))
        if average is not None:
            if ckpt.get("ema") is None:
                raise LicodecError(f"{ckpt_path} has no weight average (it was trained without --ema); "
                                   "use --restart, another --out, or leave --ema out")
            average.load_state_dict(ckpt["ema"])
        step, wall = ckpt["step"], ckpt["wall"]
        saved = step
        torch.set_rng_state(ckpt["torch_rng"])
    net = model
    if world_size > 1:
        dist.barrier()  # every process has read the checkpoint before rank 0 may replace it
        # the quantiles follow their own, data-independent loss: the same update everywhere, no sync
        DDP._set_params_and_buffers_to_ignore_for_model(model, aux_names)
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        for p in distiller.parameters() if distiller is not None else ():
            dist.broadcast(p.data, 0)  # the codec's are broadcast by DDP
    data = RandomCrops(cfg.data, cfg.crop, seed=cfg.seed)
    forward = torch.compile(net) if cfg.compile else net
    if hasattr(objective, "forward"):  # an objective that trains one part of the codec runs only what it needs
        forward = objective.forward
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.model}", mininterval=5, dynamic_ncols=True,
               disable=rank != 0)
    running = {}
    t0 = time.time() - wall

    def checkpoint() -> None:
        nonlocal saved
        if rank == 0:
            _atomic_save({"model": model.state_dict(), "opt": opt.state_dict(),
                          "aux_opt": aux_opt.state_dict() if aux_opt is not None else None,
                          "objective": objective.state_dict(),
                          "ema": average.state_dict() if average is not None else None,
                          "distill": distiller.state_dict() if distiller is not None else None,
                          "teacher_sha256": distiller.teacher[0].weights_sha256 if distiller is not None else None,
                          "step": step, "wall": time.time() - t0, "threads": torch.get_num_threads(),
                          "train_config": {**asdict(cfg), "world_size": world_size},
                          "model_config": model.config.to_dict(),
                          "torch_rng": torch.get_rng_state()}, ckpt_path)
            if cfg.keep_every and step % cfg.keep_every == 0:
                shutil.copyfile(ckpt_path, out / kept_checkpoint_name(step))
        saved = step

    def elapsed() -> float:
        """Rank 0's wall time: the learning rate and the time budget's end are the same everywhere."""
        t = torch.tensor([time.time() - t0], dtype=torch.float64, device=device)
        if world_size > 1:
            dist.broadcast(t, 0)
        return float(t)

    while step < cfg.steps:
        wall = elapsed()
        if cfg.max_minutes > 0 and wall >= cfg.max_minutes * 60:
            break
        for g in opt.param_groups:
            g["lr"] = learning_rate(cfg, step, wall) * g.get("lr_mult", 1.0)
        x, quality = data.step_batch(step, cfg.batch, model.quality_range, rank, world_size)
        quality = objective.qualities(quality)
        x, quality = x.to(device).contiguous(memory_format=torch.channels_last), quality.to(device)
        noise.start(step)
        if hasattr(objective, "start"):  # an objective that draws its own inputs per step (video pairs)
            objective.start(step)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            out_ = forward(x, quality, features=distiller is not None and distiller.needs_features(step))
            extra = distiller.loss(step, x, quality, out_) if distiller is not None else {}
        terms = objective.loss(model, out_, x, quality, step)
        if extra:
            terms["loss"] = terms["loss"] + extra.pop("distill")
            terms.update(extra)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if distiller is not None and world_size > 1:
            _average_gradients(distiller.parameters(), world_size)
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.clip)
        opt.step()
        if average is not None:
            average.update(step)
        terms.update(objective.after_step(step, x, out_, opt.param_groups[0]["lr"]))
        aux_loss = objective.aux_loss(model)
        if aux_loss is not None:
            aux_opt.zero_grad(set_to_none=True)
            aux_loss.backward()
            aux_opt.step()
        step += 1
        values = torch.stack([v.detach().float() for v in terms.values()])
        if world_size > 1:  # log the global batch's means
            dist.all_reduce(values)
            values /= world_size
        current = dict(zip(terms, values.tolist()))
        for k, v in current.items():
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        psnr = 10 * math.log10(255**2 / max(running["mse"], 1e-9))
        bar.update(1)
        bar.set_postfix(loss=f"{running['loss']:.3f}", bpp=f"{running['bpp']:.3f}", psnr=f"{psnr:.2f}", refresh=False)
        if log is not None and step % cfg.log_every == 0:
            log.write(json.dumps({"step": step, "wall": round(time.time() - t0, 1), "loss": running["loss"],
                                  "bpp": running["bpp"], "psnr": psnr,
                                  **({"aux": float(aux_loss.detach())} if aux_loss is not None else {}),
                                  "lr": learning_rate(cfg, step, time.time() - t0),
                                  **objective.log_record(running),
                                  **({"stage": distiller.stage(step - 1), **{k: current[k] for k in extra}}
                                     if distiller is not None else {})})
                      + "\n")
            log.flush()
        if step % cfg.checkpoint_every == 0:
            checkpoint()
    if saved != step:  # the last step, the end of a time budget, or a budget spent before the first step
        checkpoint()
    bar.close()
    if log is not None:
        log.close()
    path = export(out) if rank == 0 else None
    if world_size > 1:
        dist.barrier()  # no process ends before the export exists
    return path


def export(run_dir: str | Path, out_dir: str | Path | None = None, half: bool = False, step: int | None = None,
           raw: bool = False) -> Path:
    """Export a run's checkpoint as shipped weights (safetensors + config + training record):
    the latest, or the one of ``step`` kept by ``--keep-every``. A run trained with ``--ema``
    exports its weight average unless ``raw``."""
    run_dir = Path(run_dir)
    ckpt_path = run_dir / (CHECKPOINT if step is None else kept_checkpoint_name(step))
    if not ckpt_path.is_file():
        if step is None:
            raise LicodecError(f"no checkpoint in {run_dir}")
        kept = sorted(int(p.stem.removeprefix("checkpoint_step")) for p in run_dir.glob("checkpoint_step*.pt"))
        raise LicodecError(f"{run_dir} keeps no checkpoint of step {step}"
                           + (f" (it keeps steps {', '.join(map(str, kept))})" if kept else " (trained without --keep-every)"))
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    cfg = ckpt["train_config"]
    config = None  # the model's own config (e.g. with an index prior added), when the checkpoint records it
    if "model_config" in ckpt:
        from licodec.zoo import get_entry

        config = get_entry(cfg["model"]).config_cls.from_dict(ckpt["model_config"])
    model = create_model(cfg["model"], pretrained=False, config=config)
    load_trainable_state(model, ckpt["model"])
    averaged = ckpt.get("ema") is not None and not raw
    if averaged:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in ckpt["ema"]["average"].items():
                params[name].copy_(value)
    record = {
        "command": command_line(cfg),
        "data": cfg["data"],
        "steps": ckpt["step"],
        "planned_steps": cfg["steps"],
        "batch": cfg["batch"],  # per process
        "world_size": cfg.get("world_size", 1),
        "crop": cfg["crop"],
        "wall_time_s": round(ckpt["wall"], 1),
        "train_config": cfg,
        "torch": torch.__version__,
        # the training process's threads (checkpoints before 2026-12-07 do not record them:
        # then this process's, which is wrong when another process exports the run)
        "threads": ckpt.get("threads", torch.get_num_threads()),
        "date": time.strftime("%Y-%m-%d"),
        "weights": f"moving average (decay {cfg['ema']:g})" if averaged else "trained",
    }
    if cfg.get("teacher"):
        record["teacher"] = {"codec": cfg["teacher"], "weights_sha256": ckpt.get("teacher_sha256"),
                             "align_steps": cfg["align_steps"], "channel_steps": cfg["channel_steps"],
                             "finetune_steps": max(cfg["steps"] - cfg["align_steps"] - cfg["channel_steps"], 0)}
    return export_weights(model, cfg["model"], out_dir or (run_dir / "export"), training=record, half=half)
