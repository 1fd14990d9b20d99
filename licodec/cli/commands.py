"""Sub-commands of the ``licodec`` CLI; each registrar adds one parser with ``run`` set."""

from __future__ import annotations

import time
from pathlib import Path

from licodec.errors import LicodecError

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "kodim23.png"


def _read_bytes(path: str) -> bytes:
    p = Path(path)
    if not p.exists():
        raise LicodecError(f"no such file: {p}")
    if p.is_dir():
        raise LicodecError(f"{p} is a folder, not a .lic file")
    data = p.read_bytes()
    if not data:
        raise LicodecError(f"{p} is empty")
    return data


def _quality(text: str) -> float:
    import argparse

    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"quality must be a number, got {text!r}") from None


def _effort(text: str) -> int:
    import argparse

    from licodec.codec.refine import MAX_EFFORT

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_EFFORT:
        raise argparse.ArgumentTypeError(f"effort must be an integer from 0 to {MAX_EFFORT}, got {text!r}")
    return value


def _encode(sub) -> None:
    p = sub.add_parser("encode", help="compress an image to a .lic file")
    p.add_argument("input", help="PNG, JPEG, WebP, TIFF or BMP image")
    p.add_argument("-o", "--output", help="output .lic (default: the input's name with .lic)")
    p.add_argument("-q", "--quality", type=_quality, default=4.0, help="1 (smallest) to 8 (best), fractions allowed")
    p.add_argument("-m", "--model", default=None, help="codec name (see `licodec models`)")
    p.add_argument("-e", "--effort", type=_effort, default=None,
                   help="0 (fastest) to 9: encode time spent refining the latents for this image "
                        "(fewer bytes at the same quality; decoding is unchanged); default 0")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-v", "--verbose", action="store_true", help="print size, bpp and timings")

    def run(args) -> int:
        from licodec import api
        from licodec.image_io import atomic_write, read_image
        from licodec.zoo import DEFAULT_MODEL

        out = Path(args.output) if args.output else Path(args.input).with_suffix(".lic")
        if out.exists() and not args.force:
            raise LicodecError(f"{out} exists; use --force to overwrite it")
        model = args.model or DEFAULT_MODEL
        t0 = time.perf_counter()
        codec = api.load(model)
        codec.check_quality(args.quality)
        t1 = time.perf_counter()
        src = read_image(args.input)
        t2 = time.perf_counter()
        effort = api.DEFAULT_EFFORT if args.effort is None else args.effort
        data = api.compress_bitstream(src, args.quality, model, effort=effort).to_bytes()
        t3 = time.perf_counter()
        atomic_write(out, data, force=args.force)
        if args.verbose:
            h, w = src.rgb.shape[:2]
            print(f"{args.input} ({w}x{h}) -> {out}: {len(data):,} bytes, {8 * len(data) / (w * h):.4f} bpp, "
                  f"quality {args.quality:g}, effort {effort}, {model}; load {t1 - t0:.2f} s, read {t2 - t1:.2f} s, encode {t3 - t2:.2f} s")
        return 0

    p.set_defaults(run=run)


def _decode(sub) -> None:
    p = sub.add_parser("decode", help="decompress a .lic file to an image")
    p.add_argument("input", help=".lic file")
    p.add_argument("-o", "--output", help="output image, format from the suffix (default: the input's name with .png)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-v", "--verbose", action="store_true", help="print timings")

    def run(args) -> int:
        from licodec import api
        from licodec.entropy.container import Bitstream
        from licodec.image_io import save_image

        out = Path(args.output) if args.output else Path(args.input).with_suffix(".png")
        if out.exists() and not args.force:
            raise LicodecError(f"{out} exists; use -o to name another output or --force to overwrite it")
        data = _read_bytes(args.input)
        t0 = time.perf_counter()
        bitstream = Bitstream.from_bytes(data)
        api.codec_for(bitstream)  # load (and verify) the weights before timing the decode
        t1 = time.perf_counter()
        image = api.decompress(bitstream)
        t2 = time.perf_counter()
        save_image(image, out, force=args.force)
        if args.verbose:
            w, h = image.size
            print(f"{args.input} -> {out} ({w}x{h}, {image.mode}): {8 * len(data) / (w * h):.4f} bpp; "
                  f"load {t1 - t0:.2f} s, decode {t2 - t1:.2f} s")
        return 0

    p.set_defaults(run=run)


def _info(sub) -> None:
    p = sub.add_parser("info", help="describe a .lic file without decoding it")
    p.add_argument("input")

    def run(args) -> int:
        from licodec.entropy.container import FORMAT_VERSION, Bitstream

        data = _read_bytes(args.input)
        b = Bitstream.from_bytes(data)
        pixels = b.height * b.width
        print(f"file:       {args.input} ({len(data):,} bytes, {8 * len(data) / pixels:.4f} bpp)")
        print(f"format:     licodec bitstream v{FORMAT_VERSION}")
        print(f"codec:      {b.codec_id} (weights {b.weights_sha256})")
        print(f"quality:    {b.quality:g}")
        print(f"image:      {b.width}x{b.height}, {b.channels} channel(s), source {b.bit_depth}-bit")
        print(f"tiles:      {'none' if b.tile == 0 else f'{b.tile}x{b.tile}'}")
        print(f"header:     {len(data) - b.payload_bytes:,} bytes")
        for name, s in b.streams.items():
            print(f"  {name:<10} {len(s):>10,} bytes")
        return 0

    p.set_defaults(run=run)


def _models(sub) -> None:
    p = sub.add_parser("models", help="list the codecs of the zoo")

    def run(args) -> int:
        from licodec.zoo import DEFAULT_MODEL, get_entry, list_models
        from licodec.zoo.registry import read_weights_config

        for name in list_models():
            entry = get_entry(name)
            if entry.has_weights:
                meta = read_weights_config(entry.weights_dir)
                training = meta.get("training", {})
                steps = training.get("lineage_steps", training.get("steps"))
                weights = f"weights {meta['sha256'][:16]}" + (f", {steps} training steps" if steps else "")
                if "lineage_cpu_hours" in training:
                    weights += f" ({training['lineage_cpu_hours']:g} CPU-hours over {len(training['lineage'])} runs)"
            else:
                weights = "no weights shipped"
            mark = " (default)" if name == DEFAULT_MODEL else ""
            print(f"{name}{mark}: {entry.description}; {weights}")
        return 0

    p.set_defaults(run=run)


def _demo(sub) -> None:
    p = sub.add_parser("demo", help="encode and decode the bundled sample photo; print bpp, PSNR, times")
    p.add_argument("--out", default="licodec-demo", help="folder for the .lic and decoded .png files")
    p.add_argument("-q", "--quality", type=_quality, nargs="+", default=[1.0, 4.0, 8.0])
    p.add_argument("-m", "--model", default=None)

    def run(args) -> int:
        import numpy as np

        from licodec import api
        from licodec.entropy.container import Bitstream
        from licodec.eval.metrics import psnr
        from licodec.image_io import atomic_write, read_image, save_image
        from licodec.zoo import DEFAULT_MODEL

        model = args.model or DEFAULT_MODEL
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        src = read_image(SAMPLE)
        h, w = src.rgb.shape[:2]
        t0 = time.perf_counter()
        codec = api.load(model)
        print(f"licodec demo: {SAMPLE.name} ({w}x{h}) with {model} (weights {codec.weights_sha256}, "
              f"loaded in {time.perf_counter() - t0:.2f} s)")
        print(f"{'quality':>7} {'bytes':>8} {'bpp':>7} {'PSNR dB':>8} {'encode s':>9} {'decode s':>9}")
        for q in args.quality:
            codec.check_quality(q)
            t1 = time.perf_counter()
            data = api.compress_bitstream(src, q, model).to_bytes()
            t2 = time.perf_counter()
            image = api.decompress(Bitstream.from_bytes(data))
            t3 = time.perf_counter()
            stem = out / f"{SAMPLE.stem}-q{q:g}"
            atomic_write(stem.with_suffix(".lic"), data, force=True)
            save_image(image, stem.with_suffix(".png"), force=True)
            print(f"{q:>7g} {len(data):>8,} {8 * len(data) / (w * h):>7.4f} "
                  f"{psnr(np.asarray(image), src.rgb):>8.2f} {t2 - t1:>9.3f} {t3 - t2:>9.3f}")
        print(f"outputs in {out}/")
        return 0

    p.set_defaults(run=run)


def _train(sub) -> None:
    p = sub.add_parser("train", help="train a codec on a folder of images (resumable)")
    p.add_argument("--data", required=True, help="folder of training images (searched recursively)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl, export/")
    p.add_argument("--model", default="hyperprior-vr")
    p.add_argument("--steps", type=int, default=30000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward (inductor)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=100, help="steps between lines of RUN/log.jsonl")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop, checkpoint and export once the run's wall time reaches this (0: no limit)")
    p.add_argument("--init", default="", help="start from these weights (zoo name or weights folder), not random; "
                   "another codec's weights are grown into --model where it supports that (feds-teacher from hyperprior-vr)")
    d = p.add_argument_group("distillation (FEDS)", "with --teacher: feature alignment, then entropy-weighted "
                             "channel distillation, then rate-distortion fine-tuning for the remaining steps")
    d.add_argument("--teacher", default="", help="teacher codec (zoo name or weights folder)")
    d.add_argument("--align-steps", type=int, default=0, help="stage 1 length (steps)")
    d.add_argument("--channel-steps", type=int, default=0, help="stage 2 length (steps)")
    d.add_argument("--align-weight", type=float, default=1.0, help="weight of the feature-alignment loss")
    d.add_argument("--channel-weight", type=float, default=1.0, help="weight of the channel-distillation loss")

    def run(args) -> int:
        from licodec.train.trainer import TrainConfig, train
        from licodec.zoo import get_entry

        get_entry(args.model)
        for name in ("steps", "batch", "crop", "checkpoint_every", "log_every"):
            if getattr(args, name) < 1:
                raise LicodecError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("align_steps", "channel_steps", "align_weight", "channel_weight", "max_minutes"):
            if getattr(args, name) < 0:
                raise LicodecError(f"--{name.replace('_', '-')} must not be negative")
        if (args.align_steps or args.channel_steps) and not args.teacher:
            raise LicodecError("--align-steps/--channel-steps need a --teacher")
        if args.teacher and not Path(args.teacher).is_dir():
            get_entry(args.teacher)  # an unknown name fails here, before any data is read
        cfg = TrainConfig(data=args.data, out=args.out, model=args.model, steps=args.steps, batch=args.batch,
                          crop=args.crop, lr=args.lr, bf16=args.bf16, seed=args.seed,
                          checkpoint_every=args.checkpoint_every, log_every=args.log_every, init=args.init,
                          max_minutes=args.max_minutes, compile=args.compile,
                          teacher=args.teacher,
                          align_steps=args.align_steps, channel_steps=args.channel_steps,
                          align_weight=args.align_weight, channel_weight=args.channel_weight)
        path = train(cfg, resume=not args.restart)
        print(f"exported weights to {path}")
        return 0

    p.set_defaults(run=run)


def _export(sub) -> None:
    p = sub.add_parser("export", help="export a training run's checkpoint as zoo weights")
    p.add_argument("run_dir", help="the --out folder of `licodec train`")
    p.add_argument("-o", "--output", help="folder for model.safetensors + config.json (default RUN_DIR/export)")
    p.add_argument("--half", action="store_true", help="store parameters as float16 (rounded before the "
                   "entropy tables are frozen, so the shipped model is exactly the one evaluated)")

    def run(args) -> int:
        from licodec.train.trainer import export

        path = export(args.run_dir, args.output, half=args.half)  # keeps the training command recorded in the checkpoint
        print(f"exported weights to {path}")
        return 0

    p.set_defaults(run=run)


from licodec.cli.eval_commands import REGISTRARS as _EVAL  # noqa: E402

REGISTRARS = [_encode, _decode, _info, _models, _demo, _train, _export, *_EVAL]
