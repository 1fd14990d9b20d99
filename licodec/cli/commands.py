"""Sub-commands of the ``licodec`` CLI; each registrar adds one parser with ``run`` set."""

from __future__ import annotations

import time
from pathlib import Path

from licodec.errors import LicodecError

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "kodim23.png"


def _quality(text: str) -> float:
    import argparse

    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"quality must be a number, got {text!r}") from None


def _number(kind, lo: float, hi: float | None, what: str):
    """An argparse type: a ``kind`` (int or float) from ``lo`` to ``hi`` (open above when None)."""
    import argparse

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (lo <= value and (hi is None or value <= hi)):
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
        return value

    return parse


def _effort(text: str) -> int:
    from licodec.codec.refine import MAX_EFFORT

    return _number(int, 0, MAX_EFFORT, f"effort must be an integer from 0 to {MAX_EFFORT}")(text)


_processes = _number(int, 1, None, "-j takes a number of processes (1 or more)")
_positive = _number(float, 1e-12, None, "expected a positive number")


def _add_io_arguments(p, what: str, default_output: str) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help=f"{what}, a folder of them, or - for stdin; several inputs or a folder need -o DIR")
    p.add_argument("-o", "--output", help=f"output file, - for stdout, or a folder for several inputs "
                                          f"(default: {default_output})")
    p.add_argument("-j", "--jobs", type=_processes, default=1, help="worker processes for several inputs")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("-v", "--verbose", action="store_true", help="print size, bpp and timings")


def _run_jobs(args, suffixes: set[str], new_suffix: str, default_output, fn, *fn_args) -> int:
    """One input (file or -) in this process with errors raised; several inputs or a folder as a batch."""
    import sys

    from licodec.cli.jobs import STDIO, Job, plan_batch, run_batch

    inputs = args.inputs
    if len(inputs) == 1 and not Path(inputs[0]).is_dir():
        source = inputs[0]
        if args.output:
            output = args.output
        elif source == STDIO:
            output = STDIO
        else:
            output = default_output(source)
        line = fn(Job(source, output), *fn_args)
        if args.verbose or getattr(args, "report", False):
            print(line, file=sys.stderr if output == STDIO else sys.stdout)
        return 0
    if not args.output or args.output == STDIO:
        raise LicodecError("several inputs or a folder need an output folder: -o DIR")
    jobs = plan_batch(inputs, args.output, suffixes, new_suffix)
    failed = run_batch(fn, jobs, *fn_args, processes=args.jobs, verbose=args.verbose)
    if failed:
        raise LicodecError(f"{failed} of {len(jobs)} files failed")
    return 0


def _encode(sub) -> None:
    p = sub.add_parser("encode", help="compress images (or a video) to .lic files")
    _add_io_arguments(p, "PNG, JPEG, WebP, TIFF or BMP image", "the input's name with .lic; stdout for -")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("-q", "--quality", type=_quality, default=None,
                      help="1 (smallest) to 8 (best), fractions allowed; default 4")
    rate.add_argument("--bpp", type=_positive, default=None,
                      help="target size in bits per pixel of the whole file: the quality is searched (within 3%%)")
    p.add_argument("--size", default=None,
                   help="target file size in bytes (40000, 40k, 40kib, 1.5m): the quality is searched (within 3%%); "
                        "for a raw .yuv video, its frame size WxH")
    p.add_argument("-m", "--model", default=None, help="codec name (see `licodec models`)")
    p.add_argument("-e", "--effort", type=_effort, default=None,
                   help="0 (fastest) to 9: encode time spent refining the latents for this image "
                        "(a video: its I-frames and residuals) for fewer bytes at the same quality; "
                        "decoding is unchanged; default 0")
    vid = p.add_argument_group("video (an input .y4m, .yuv, .mp4, .mkv, .webm, .avi, .mov, or a PNG folder with "
                               "--video): one .lic video; --size WxH gives a raw .yuv's frame size")
    vid.add_argument("--video", action="store_true", help="the input folder is one video's PNG frames (sorted by name)")
    vid.add_argument("--fps", type=_positive, default=None, help="frame rate (raw .yuv: required; PNG folder: default 25)")
    vid.add_argument("--i-period", type=_number(int, 1, None, "--i-period takes a number of frames (1 or more)"),
                     default=None, help="an I-frame every N frames (default: the codec's, 32)")

    def run(args) -> int:
        from licodec.cli.video_commands import encode_video, is_video_input

        if len(args.inputs) == 1 and is_video_input(args.inputs[0], args.video):
            if args.bpp is not None:
                raise LicodecError("--bpp is for images; a video takes -q")
            return encode_video(args.inputs[0], args.output, 4.0 if args.quality is None else args.quality,
                                args.model, args.i_period, args.size, args.fps, args.force, args.verbose,
                                effort=args.effort or 0)
        if args.video or args.fps is not None or args.i_period is not None:
            raise LicodecError("--video, --fps and --i-period go with one video input (.y4m, .yuv, .mp4, ... "
                               "or a PNG folder with --video)")
        if args.size is not None and (args.quality is not None or args.bpp is not None):
            raise LicodecError("-q, --bpp and --size each set the rate; give one")
        from licodec import api
        from licodec.cli.jobs import EncodeOptions, encode_job
        from licodec.rate_control import parse_size
        from licodec.train.data import IMAGE_SUFFIXES
        from licodec.zoo import DEFAULT_MODEL

        opt = EncodeOptions(quality=args.quality, target_bpp=args.bpp,
                            target_size=parse_size(args.size) if args.size is not None else None,
                            model=args.model, effort=args.effort, force=args.force)
        codec = api.load(opt.model or DEFAULT_MODEL)  # an unknown model or bad quality fails once, up front
        if opt.quality is not None:
            codec.check_quality(opt.quality)
        args.report = opt.target_bpp is not None or opt.target_size is not None  # always say the quality chosen
        return _run_jobs(args, IMAGE_SUFFIXES, ".lic", lambda src: str(Path(src).with_suffix(".lic")),
                         encode_job, opt)

    p.set_defaults(run=run)


def _decode(sub) -> None:
    p = sub.add_parser("decode", help="decompress .lic files to images (a .lic video to .y4m or PNG frames)")
    _add_io_arguments(p, ".lic file", "the input's name with .png; PNG on stdout for -")
    lose = p.add_argument_group("simulated loss (codebook codecs: vqgan)",
                                "decode as if these index positions had been lost, predicting them from the rest "
                                "(marked after the sub-streams were decoded and checked)")
    lose.add_argument("--lose", type=_number(float, 0, 1, "--lose takes a fraction from 0 to 1"), default=None,
                      metavar="FRACTION", help="share of the index positions lost")
    lose.add_argument("--lose-seed", type=int, default=0, metavar="S", help="seed of the positions lost (default 0)")
    lose.add_argument("--lose-rows", action="store_true",
                      help="lose whole index rows (a lost chunk of a row-major stream) instead of single positions")
    gen = p.add_argument_group("generative decoding (files of codecs with a generative decoder: hyperprior-vr)",
                               "the same file, decoded with generated detail; the noise is seeded by the file's "
                               "bytes, so a file always decodes to the same pixels")
    gen.add_argument("--realism", type=_number(float, 0, 1, "--realism takes a value from 0 to 1"), default=None,
                     metavar="R", help="0: the codec's own decode (the default) ... 1: the full generated sample")
    gen.add_argument("--steps", type=_number(int, 1, 64, "--steps takes an integer from 1 to 64"), default=None,
                     metavar="S", help="sampling steps of --realism (default: the decoder's, 4)")
    p.add_argument("--frames", default=None, metavar="A:B",
                   help="a .lic video: decode frames A to B-1 only (decoding starts at the I-frame before A); "
                        "the output is a .y4m (default) or, for a name without suffix, a folder of PNG frames")

    def run(args) -> int:
        from licodec.cli.video_commands import decode_video, is_video_file

        if len(args.inputs) == 1 and is_video_file(args.inputs[0]):
            if args.lose is not None or args.realism is not None:
                raise LicodecError("--lose and --realism are for images, not videos")
            if args.output == "-":
                raise LicodecError("a video decodes to a .y4m file or a PNG folder, not stdout")
            return decode_video(args.inputs[0], args.output, args.frames, args.force, args.verbose)
        if args.frames is not None:
            raise LicodecError("--frames goes with a .lic video")
        from licodec.cli.jobs import GenerationOptions, LossOptions, decode_job

        def default_output(src: str) -> str:
            out = Path(src).with_suffix(".png")
            if out.exists() and not args.force:
                raise LicodecError(f"{out} exists; use -o to name another output or --force to overwrite it")
            return str(out)

        if args.lose is None and (args.lose_rows or args.lose_seed):
            raise LicodecError("--lose-seed and --lose-rows go with --lose FRACTION")
        if args.steps is not None and not args.realism:
            raise LicodecError("--steps goes with --realism above 0")
        loss = None if args.lose is None else LossOptions(args.lose, args.lose_seed, args.lose_rows)
        generation = None if args.realism is None else GenerationOptions(args.realism, args.steps)
        return _run_jobs(args, {".lic"}, ".png", default_output, decode_job, args.force, loss, generation)

    p.set_defaults(run=run)


def _info(sub) -> None:
    p = sub.add_parser("info", help="describe a .lic file without decoding it")
    p.add_argument("input")

    def run(args) -> int:
        from licodec.entropy.container import FORMAT_VERSION, Bitstream

        from licodec.cli.jobs import read_lic
        from licodec.cli.video_commands import info_video, is_video_file

        if is_video_file(args.input):
            return info_video(args.input)

        data = read_lic(args.input)
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
        if args.model is None:
            _video_demo(out)
        print(f"outputs in {out}/")
        return 0

    p.set_defaults(run=run)


def _video_demo(out: Path, quality: float = 4.0) -> None:
    """The default video codec (if it has weights) on the bundled panned clip: one I-frame and
    seven P-frames, written as ``panned-clip.lic`` and ``panned-clip.y4m``."""
    from fractions import Fraction

    import numpy as np

    from licodec.eval.metrics import psnr
    from licodec.image_io import atomic_write
    from licodec.video import coding
    from licodec.video.io import Frame, VideoInfo, open_writer
    from licodec.video.samples import panned_clip
    from licodec.zoo import get_entry

    if not get_entry(coding.DEFAULT_MODEL).has_weights:
        return
    frames = panned_clip()
    h, w = frames[0].shape[:2]
    codec = coding.load_video_codec(coding.DEFAULT_MODEL)
    stats = []
    t0 = time.perf_counter()
    data = b"".join(coding.compress(frames, quality, fps=25, i_period=len(frames), codec=codec, stats=stats))
    t1 = time.perf_counter()
    decoded = [d.rgb for d in coding.decompress(data, codec=codec)]
    t2 = time.perf_counter()
    atomic_write(out / "panned-clip.lic", data, force=True)
    with open_writer(out / "panned-clip.y4m", VideoInfo(w, h, Fraction(25), len(decoded), "rgb24"),
                     overwrite=True) as writer:
        for rgb in decoded:
            writer.write(Frame(rgb=rgb))
    p_bytes = sum(s["bytes"] for s in stats[1:]) / (len(stats) - 1)
    print(f"video: {len(frames)} frames {w}x{h} (the photo panned) with {coding.DEFAULT_MODEL} at quality "
          f"{quality:g}: {8 * len(data) / (w * h * len(frames)):.4f} bpp (I-frame {stats[0]['bytes']:,} bytes, "
          f"P-frames {p_bytes:,.0f} on average), PSNR {np.mean([psnr(d, f) for d, f in zip(decoded, frames)]):.2f} dB, "
          f"encode {len(frames) / (t1 - t0):.1f} fps, decode {len(frames) / (t2 - t1):.1f} fps")


def _train(sub) -> None:
    p = sub.add_parser("train", help="train a codec on a folder of images (resumable)",
                       description="Several processes: torchrun --nproc_per_node N -m licodec train ... "
                                   "(DistributedDataParallel; only rank 0 writes the run folder).")
    p.add_argument("--data", required=True, help="folder of training images (searched recursively)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl, export/")
    p.add_argument("--model", default="hyperprior-vr")
    p.add_argument("--steps", type=int, default=30000)
    p.add_argument("--batch", type=int, default=8,
                   help="images per step and process: under torchrun with N processes a step sees N x BATCH images")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                   help="bf16 autocast (default: on where the CPU computes bf16 natively, AVX-512 BF16 or "
                        "AMX; elsewhere fp32, which is several times faster there)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward (inductor)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=100, help="steps between lines of RUN/log.jsonl")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--entropy-lr-mult", type=float, default=1.0, metavar="X",
                   help="learning rate of the hyper-latents' factorized densities, X times --lr (default 1): "
                        "a new entropy bottleneck starts wide (init scale 10) and narrows slowly at 2e-4")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop, checkpoint and export once the run's wall time reaches this (0: no limit)")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the trained weights (e.g. 0.999) and export it "
                        "instead of them (licodec export --raw exports the trained weights); default 0: off")
    p.add_argument("--keep-every", type=int, default=0, metavar="N",
                   help="also keep the checkpoint of every N-th step (a multiple of --checkpoint-every) as "
                        "checkpoint_step<N>.pt, for licodec export --step; default 0: only the latest")
    p.add_argument("--init", default="", help="start from these weights (zoo name or weights folder), not random; "
                   "another codec's weights are grown into --model where it supports that (feds-teacher from hyperprior-vr)")
    d = p.add_argument_group("distillation (FEDS)", "with --teacher: feature alignment, then entropy-weighted "
                             "channel distillation, then rate-distortion fine-tuning for the remaining steps")
    d.add_argument("--teacher", default="", help="teacher codec (zoo name or weights folder)")
    d.add_argument("--align-steps", type=int, default=0, help="stage 1 length (steps)")
    d.add_argument("--channel-steps", type=int, default=0, help="stage 2 length (steps)")
    d.add_argument("--align-weight", type=float, default=1.0, help="weight of the feature-alignment loss")
    d.add_argument("--channel-weight", type=float, default=1.0, help="weight of the channel-distillation loss")
    v = p.add_argument_group("codebook codecs (--model vqgan)",
                             "L1 + MS-SSIM + focal frequency + commitment losses, the PatchGAN from --adv-start on; "
                             "first a base run (top rung K=1024), then one run per rung: "
                             "--init BASE/export --rung K fine-tunes rung K's codebook and 1x1 convolutions "
                             "(the ladder is made from the base codebook by k-means first), all else frozen")
    v.add_argument("--adv-start", type=int, default=-1, help="step from which the adversarial loss is on (-1: never); also for "
                   "generative decoders (vqgan-flow), fine-tuning trained weights given with --init")
    v.add_argument("--adv-weight", type=float, default=0.5, help="adversarial weight (times VQGAN's adaptive weight)")
    v.add_argument("--adv-on-sample", action="store_true",
                   help="generative decoders: the adversarial loss judges the decoder's own full sample (its "
                        "temperature and Euler steps, gradient through the last step) instead of one-step predictions")
    v.add_argument("--adv-detail", action="store_true",
                   help="generative decoders: the discriminator judges only the octaves the decoder generates "
                        "(real and fake keep the base decode's low band, as the decoder composes its output)")
    v.add_argument("--adv-conditional", action="store_true",
                   help="generative decoders: the discriminator sees the base decode beside each image")
    v.add_argument("--disc-warmup", type=int, default=0, metavar="N",
                   help="generative decoders: the discriminator trains alone for its first N steps")
    v.add_argument("--rung", type=int, default=0, help="codebook size K of the rung to fine-tune (0: base training)")
    v.add_argument("--prior", action="store_true",
                   help="train only the learned prior of the --init weights, all else frozen; adds one if they "
                        "have none. vqgan: the index prior (a masked transformer that rANS-codes the indices), on "
                        "every rung; use crops of 256 or more: it learns from the index grid (crop/16 a side). "
                        "video-dvc: the residual prior (the residual's final scales rescaled from the "
                        "prediction, its change over the reference and the decoded motion), on the rate "
                        "of the rounded latents")
    vid = p.add_argument_group("video codecs (--model video-dvc, video-dcvc)",
                               "P-frame pairs: the --data photos with synthetic motion (crops cut by 32 pixels "
                               "a side, so --crop 256 trains on 192), the previous frame coded by the intra codec; "
                               "video-dvc can --init from a video-dcvc run (its motion coder)")
    vid.add_argument("--post-filter", action="store_true",
                     help="video-dvc: train only the post-filter of the --init weights (each P-frame is "
                          "shown corrected from its prediction; the reference stays unfiltered), all else "
                          "frozen, on the shown frame's distortion; adds one if they have none. With --prior, "
                          "the residual prior trains too (on the rate)")
    vid.add_argument("--residual-adapter", action="store_true",
                     help="video-dvc: train only the residual adapters of the --init weights (low-rank branches "
                          "that fit the image codec's transforms to residuals), all else frozen, on the P-frame's "
                          "rate (rounded latents) and its unfiltered distortion; adds rank-8 ones if they have "
                          "none. With --prior, the residual prior trains too")
    vid.add_argument("--adapter-rank", type=int, default=0, metavar="R",
                     help="video-dvc, with --residual-adapter: the adapters' rank; weights with adapters of a "
                          "lower rank get theirs grown to R (the new ranks start at zero); default: their rank, "
                          "or 8 for new ones")
    vid.add_argument("--with-motion", action="store_true",
                     help="video-dvc, with --residual-adapter: the motion coder trains too, on the same loss, "
                          "so that motion and residual coding adapt to each other")
    vid.add_argument("--flow-refiner", action="store_true",
                     help="video-dvc, with --residual-adapter: the flow refiner (the decoded flow refined from "
                          "the prediction it makes, at no bit) trains too; adds one if the weights have none")
    vid.add_argument("--video-data", default="",
                     help="folder of clips (folders of PNG frames) that give 30%% of the pairs, e.g. "
                          "../shared/data/video/vimeo_septuplet_samples")
    vid.add_argument("--p-chain", type=int, default=0, metavar="K",
                     help="train each P-frame against a reference the model itself coded K P-frames after an "
                          "I-frame (default 0: against the I-frame), so it learns its own drift; fine-tune "
                          "with --init and K = 1 or 2")
    vid.add_argument("--sprites", type=float, default=0.0, metavar="P",
                     help="share (0-1) of the synthetic pairs that also carry a moving object (a blob cut from "
                          "another crop, moved by its own motion), for motion edges and occlusions")
    vid.add_argument("--resample-current", action="store_true",
                     help="resample the current frame of each synthetic pair at a random sub-pixel offset "
                          "(bilinear), as its previous frame is by its warp, so that the two are equally sharp "
                          "(as consecutive frames of a real video are)")

    def run(args) -> int:
        from licodec.train.trainer import TrainConfig, train
        from licodec.zoo import get_entry

        get_entry(args.model)
        for name in ("steps", "batch", "crop", "checkpoint_every", "log_every"):
            if getattr(args, name) < 1:
                raise LicodecError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("align_steps", "channel_steps", "align_weight", "channel_weight", "max_minutes", "adv_weight",
                     "rung", "p_chain", "sprites", "entropy_lr_mult", "disc_warmup", "keep_every"):
            if getattr(args, name) < 0:
                raise LicodecError(f"--{name.replace('_', '-')} must not be negative")
        if ((args.adv_on_sample or args.disc_warmup or args.adv_detail or args.adv_conditional)
                and getattr(get_entry(args.model).config_cls, "base", None) is None):
            raise LicodecError(f"--adv-on-sample, --adv-detail, --adv-conditional and --disc-warmup are for generative "
                               f"decoders (vqgan-flow), "
                               f"not {args.model!r}")
        if not 0 <= args.sprites <= 1:
            raise LicodecError(f"--sprites {args.sprites}: a share of the pairs, from 0 to 1")
        if not 0 <= args.ema < 1:
            raise LicodecError(f"--ema {args.ema}: the decay must be at least 0 and below 1 (0: off)")
        if args.keep_every % args.checkpoint_every:
            raise LicodecError(f"--keep-every {args.keep_every} must be a multiple of --checkpoint-every "
                               f"{args.checkpoint_every}")
        if (args.align_steps or args.channel_steps) and not args.teacher:
            raise LicodecError("--align-steps/--channel-steps need a --teacher")
        if args.teacher and not Path(args.teacher).is_dir():
            get_entry(args.teacher)  # an unknown name fails here, before any data is read
        cfg = TrainConfig(data=args.data, out=args.out, model=args.model, steps=args.steps, batch=args.batch,
                          crop=args.crop, lr=args.lr, seed=args.seed,
                          **({} if args.bf16 is None else {"bf16": args.bf16}),
                          checkpoint_every=args.checkpoint_every, log_every=args.log_every, init=args.init,
                          max_minutes=args.max_minutes, compile=args.compile,
                          teacher=args.teacher,
                          align_steps=args.align_steps, channel_steps=args.channel_steps,
                          align_weight=args.align_weight, channel_weight=args.channel_weight,
                          adv_start=max(args.adv_start, -1), adv_weight=args.adv_weight,
                          adv_on_sample=args.adv_on_sample, disc_warmup=args.disc_warmup, rung=args.rung,
                          adv_detail=args.adv_detail, adv_conditional=args.adv_conditional,
                          prior=args.prior, post_filter=args.post_filter,
                          residual_adapter=args.residual_adapter, with_motion=args.with_motion, adapter_rank=args.adapter_rank, flow_refiner=args.flow_refiner, video_data=args.video_data, p_chain=args.p_chain,
                          sprites=args.sprites, resample_current=args.resample_current,
                          entropy_lr_mult=args.entropy_lr_mult, ema=args.ema, keep_every=args.keep_every)
        if args.video_data and not Path(args.video_data).is_dir():
            raise LicodecError(f"--video-data {args.video_data}: no such folder")
        path = train(cfg, resume=not args.restart)
        if path is not None:  # under torchrun, rank 0 only
            print(f"exported weights to {path}")
        return 0

    p.set_defaults(run=run)


def _export(sub) -> None:
    p = sub.add_parser("export", help="export a training run's checkpoint as zoo weights")
    p.add_argument("run_dir", help="the --out folder of `licodec train`")
    p.add_argument("-o", "--output", help="folder for model.safetensors + config.json (default RUN_DIR/export)")
    p.add_argument("--half", action="store_true", help="store parameters as float16 (rounded before the "
                   "entropy tables are frozen, so the shipped model is exactly the one evaluated)")
    p.add_argument("--step", type=int, default=None, metavar="N",
                   help="export the checkpoint of step N kept by --keep-every (default: the latest)")
    p.add_argument("--raw", action="store_true",
                   help="a run trained with --ema: export its trained weights, not their moving average")

    def run(args) -> int:
        from licodec.train.trainer import export

        path = export(args.run_dir, args.output, half=args.half, step=args.step, raw=args.raw)  # keeps the training command recorded in the checkpoint
        print(f"exported weights to {path}")
        return 0

    p.set_defaults(run=run)


def _average(sub) -> None:
    p = sub.add_parser("average", help="average weights of one codec (a model soup of fine-tunes from the same weights)",
                       description="Writes sum_i c_i * W_i of the weights folders as new zoo weights; the folders must "
                                   "hold one codec with one config. Wortsman et al. 2022, model soups.")
    p.add_argument("weights", nargs="+", help="weights folders (model.safetensors + config.json), at least two")
    p.add_argument("-o", "--output", required=True, help="folder for the averaged model.safetensors + config.json")
    p.add_argument("--coefficients", type=float, nargs="+", metavar="C",
                   help="one per folder, non-negative, summing to 1 (default: equal)")
    p.add_argument("--half", action="store_true", help="store parameters as float16")

    def run(args) -> int:
        from licodec.train.average import average_weights

        path = average_weights(args.weights, args.output, args.coefficients, half=args.half)
        print(f"averaged weights to {path}")
        return 0

    p.set_defaults(run=run)


from licodec.cli.eval_commands import REGISTRARS as _EVAL  # noqa: E402

REGISTRARS = [_encode, _decode, _info, _models, _demo, _train, _export, _average, *_EVAL]
