"""Rate-distortion training for variable-rate codecs: resumable, bf16 where it helps.

Loss per image: ``lambda(q) * 255^2 * MSE + bpp`` with a quality ``q`` drawn uniformly
from the codec's continuous range for every image of every batch, so one run trains
every quality. The entropy bottleneck's quantiles get their own auxiliary optimizer.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from licodec.entropy.models import load_trainable_state
from licodec.errors import LicodecError
from licodec.train.data import RandomCrops
from licodec.train.distill import Distiller
from licodec.zoo import create_model, export_weights
from licodec.zoo.registry import read_weights_config

CHECKPOINT = "checkpoint.pt"


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
    bf16: bool = True
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
    lam = torch.tensor([model.lambda_for_quality(float(q)) for q in quality])
    loss = (lam * 255**2 * mse + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean() * 255**2}


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def command_line(cfg: dict) -> str:
    """The ``licodec train`` command that reproduces a run of config ``cfg``."""
    default = TrainConfig(data="", out="")
    parts = ["licodec", "train", "--data", cfg["data"], "--out", cfg["out"]]
    flags = {"model": "--model", "steps": "--steps", "batch": "--batch", "crop": "--crop", "lr": "--lr",
             "seed": "--seed", "checkpoint_every": "--checkpoint-every", "max_minutes": "--max-minutes", "init": "--init", "teacher": "--teacher",
             "align_steps": "--align-steps", "channel_steps": "--channel-steps", "align_weight": "--align-weight",
             "channel_weight": "--channel-weight"}
    for key, flag in flags.items():
        if key not in cfg:
            continue
        if cfg[key] != getattr(default, key) or key == "steps":
            parts += [flag, str(cfg[key])]
    if not cfg["bf16"]:
        parts.append("--no-bf16")
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


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    """Train ``cfg.model`` from scratch (or resume ``cfg.out``); export weights at the end."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = initial_model(cfg).train()
    model = model.to(memory_format=torch.channels_last)
    distiller = make_distiller(cfg, model)
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    if distiller is not None:
        main_params += list(distiller.parameters())
    opt = torch.optim.Adam(main_params, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    step, wall = 0, 0.0
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["train_config"]["model"] != cfg.model:
            raise LicodecError(f"{ckpt_path} trains {ckpt['train_config']['model']!r}, not {cfg.model!r}")
        if ckpt["train_config"].get("teacher", "") != cfg.teacher:
            raise LicodecError(f"{ckpt_path} was trained with teacher {ckpt['train_config'].get('teacher', '')!r}, "
                               f"not {cfg.teacher!r}; use --restart or another --out")
        load_trainable_state(model, ckpt["model"])
        if distiller is not None:
            distiller.load_state_dict(ckpt["distill"])
        opt.load_state_dict(ckpt["opt"])
        aux_opt.load_state_dict(ckpt["aux_opt"])
        step, wall = ckpt["step"], ckpt["wall"]
        torch.set_rng_state(ckpt["torch_rng"])
    data = RandomCrops(cfg.data, cfg.crop, seed=cfg.seed + step)
    forward = torch.compile(model) if cfg.compile else model
    lo, hi = model.quality_range
    log = open(out / "log.jsonl", "a")
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.model}", mininterval=5, dynamic_ncols=True)
    running = {}
    t0 = time.time() - wall

    def checkpoint() -> None:
        _atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                      "distill": distiller.state_dict() if distiller is not None else None,
                      "teacher_sha256": distiller.teacher[0].weights_sha256 if distiller is not None else None,
                      "step": step, "wall": time.time() - t0, "train_config": asdict(cfg),
                      "torch_rng": torch.get_rng_state()}, ckpt_path)

    def out_of_time() -> bool:
        return cfg.max_minutes > 0 and time.time() - t0 >= cfg.max_minutes * 60

    while step < cfg.steps and not out_of_time():
        for g in opt.param_groups:
            g["lr"] = learning_rate(cfg, step, time.time() - t0)
        x = data.batch(cfg.batch).contiguous(memory_format=torch.channels_last)
        quality = torch.empty(cfg.batch).uniform_(lo, hi)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            out_ = forward(x, quality, features=distiller is not None and distiller.needs_features(step))
            extra = distiller.loss(step, x, quality, out_) if distiller is not None else {}
        terms = rd_loss(model, out_, x, quality)
        if extra:
            terms["loss"] = terms["loss"] + extra.pop("distill")
            terms.update(extra)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(main_params, cfg.clip)
        opt.step()
        aux_loss = model.latent.z_model.loss()
        aux_opt.zero_grad(set_to_none=True)
        aux_loss.backward()
        aux_opt.step()
        step += 1
        for k, v in terms.items():
            v = float(v.detach())
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        psnr = 10 * math.log10(255**2 / max(running["mse"], 1e-9))
        bar.update(1)
        bar.set_postfix(loss=f"{running['loss']:.3f}", bpp=f"{running['bpp']:.3f}", psnr=f"{psnr:.2f}", refresh=False)
        if step % cfg.log_every == 0:
            log.write(json.dumps({"step": step, "wall": round(time.time() - t0, 1), "loss": running["loss"],
                                  "bpp": running["bpp"], "psnr": psnr, "aux": float(aux_loss.detach()),
                                  "lr": learning_rate(cfg, step, time.time() - t0),
                                  **({"stage": distiller.stage(step - 1),
                                      **{k: float(v.detach()) for k, v in extra.items()}} if distiller is not None else {})})
                      + "\n")
            log.flush()
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time():
            checkpoint()
    if not ckpt_path.is_file():  # a time budget spent before the first step
        checkpoint()
    bar.close()
    log.close()
    return export(out)


def export(run_dir: str | Path, out_dir: str | Path | None = None, half: bool = False) -> Path:
    """Export a run's checkpoint as shipped weights (safetensors + config + training record)."""
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT
    if not ckpt_path.is_file():
        raise LicodecError(f"no checkpoint in {run_dir}")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    cfg = ckpt["train_config"]
    model = create_model(cfg["model"], pretrained=False)
    load_trainable_state(model, ckpt["model"])
    record = {
        "command": command_line(cfg),
        "data": cfg["data"],
        "steps": ckpt["step"],
        "planned_steps": cfg["steps"],
        "batch": cfg["batch"],
        "crop": cfg["crop"],
        "wall_time_s": round(ckpt["wall"], 1),
        "train_config": cfg,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if cfg.get("teacher"):
        record["teacher"] = {"codec": cfg["teacher"], "weights_sha256": ckpt.get("teacher_sha256"),
                             "align_steps": cfg["align_steps"], "channel_steps": cfg["channel_steps"],
                             "finetune_steps": max(cfg["steps"] - cfg["align_steps"] - cfg["channel_steps"], 0)}
    return export_weights(model, cfg["model"], out_dir or (run_dir / "export"), training=record, half=half)
