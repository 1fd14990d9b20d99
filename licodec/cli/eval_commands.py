"""Evaluation sub-commands: ``eval`` (images, or video with ``--video``), ``bdrate``, ``plot``, ``datasets``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from licodec.errors import LicodecError
from licodec.eval import metric_registry

DEFAULT_ANCHORS = ["jpeg420", "webp"]


def _metric_list(selectable: bool, video: bool = False) -> str:
    """Registry names for help texts, with directions: ``ms-ssim (dB), lpips (lower is better), ...``."""
    out = []
    for name in metric_registry.names(selectable, video):
        spec = metric_registry.get(name)
        notes = [spec.unit] if spec.unit else []
        notes += [] if spec.higher_is_better else ["lower is better"]
        out.append(name + (f" ({', '.join(notes)})" if notes else ""))
    return ", ".join(out)


def _quality_spec(text: str) -> tuple[str, tuple[float, ...]]:
    name, sep, values = text.partition("=")
    try:
        qs = tuple(float(v) for v in values.split(",") if v.strip())
    except ValueError:
        qs = ()
    if not sep or not name or not qs:
        raise argparse.ArgumentTypeError(f"expected CODEC=Q1,Q2,... (e.g. jpeg420=10,50,90), got {text!r}")
    return name, qs


def _print_warnings(messages) -> None:
    for m in dict.fromkeys(messages):
        print(f"licodec: warning: {m}", file=sys.stderr)


def _eval(sub) -> None:
    p = sub.add_parser("eval", help="measure RD curves of licodec and classic codecs on a test set",
                       description="Encode every image at every quality with each codec, measure bpp from the "
                                   "real bytes and distortion on the 8-bit decoded image; write per_image.csv and "
                                   "one CompressAI-format JSON per codec. Rerun the same command to resume.")
    p.add_argument("dataset", nargs="?", help="kodak, clic-pro-valid, clic-pro-test, tecnick, or a folder of images "
                                              "(none with --video)")
    p.add_argument("--root", help="folder holding the named dataset (default: $LICODEC_DATA/NAME)")
    p.add_argument("-c", "--codecs", nargs="+", default=None,
                   help="licodec models, classic codecs (jpeg420 jpeg444 webp avif avif444 jpeg2000) and "
                        "LABEL=DIR for licodec weights in a folder (a training run's export); "
                        "default: the default model, jpeg420 and webp")
    p.add_argument("-q", "--quality", type=_quality_spec, action="append", default=[], metavar="CODEC=Q1,Q2",
                   help="qualities for one codec (repeatable); default: each codec's own sweep")
    p.add_argument("-m", "--metrics", nargs="*", default=["ms-ssim"], metavar="METRIC",
                   help=f"besides PSNR (RGB and Y): any of {_metric_list(True)} (default: ms-ssim); "
                        "LPIPS/DISTS need local backbone files (--weights-dir)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--limit", type=int, default=0, help="only the first N images")
    p.add_argument("-o", "--out", help="results folder (default: licodec-eval/DATASET)")
    p.add_argument("--weights-dir", help="folder with torchvision backbone files for LPIPS/DISTS")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    video = p.add_argument_group(
        "video", "--video CLIP ... evaluates video codecs instead (-c, -q, -o as above): the licodec video codec "
                 "(a name or LABEL=DIR), intra:NAME (an image codec on every frame), x264 x265 x264-zl x265-zl "
                 "(quality = QP); writes per_frame.csv, sequences.csv, one JSON per codec and per_frame_<clip>.png")
    video.add_argument("--video", nargs="+", metavar="CLIP",
                       help="folders of PNG frames or files licodec reads (.y4m, .yuv, .mp4, .mkv, .webm, .avi, .mov)")
    video.add_argument("--i-period", type=int, default=None,
                       help=f"frames from one I-frame to the next, for every codec (default {DEFAULT_I_PERIOD})")
    video.add_argument("--frames", type=int, default=None, help="at most N frames of each clip (default all)")
    video.add_argument("--fps", default=None, help="frame rate of PNG folders and raw .yuv (e.g. 50 or 30000/1001)")
    video.add_argument("--size", default=None, help="WxH of raw .yuv clips")

    def run(args) -> int:
        if args.video:
            return _run_video_eval(args)
        extra = [f"--{n.replace('_', '-')}" for n in VIDEO_ONLY_OPTIONS if getattr(args, n) is not None]
        if extra:
            raise LicodecError(f"{extra[0]} is for video evaluation (--video CLIP ...)")
        if not args.dataset:
            raise LicodecError("which images? give a dataset (e.g. kodak) or a folder, or --video CLIP ...")
        from licodec.eval.datasets import load_dataset
        from licodec.eval.runner import evaluate
        from licodec.zoo import DEFAULT_MODEL

        if args.jobs < 1:
            raise LicodecError("--jobs must be at least 1")
        if args.limit < 0:
            raise LicodecError("--limit must be positive")
        args.metrics = list(dict.fromkeys(metric_registry.get(m, selectable=True).name for m in args.metrics))
        dataset = load_dataset(args.dataset, args.root, limit=args.limit)
        codecs = args.codecs or [DEFAULT_MODEL] + DEFAULT_ANCHORS
        qualities = dict(args.quality)
        from licodec.eval.codecs import resolve_codec

        names = [resolve_codec(c).name for c in codecs]  # LABEL=DIR is LABEL; a :eN or :rX suffix stays
        unknown = [n for n in qualities if n not in names]
        if unknown:
            raise LicodecError(f"--quality names {unknown[0]!r}, which is not among the codecs evaluated")
        out = Path(args.out) if args.out else Path("licodec-eval") / dataset.name
        print(f"licodec eval: {dataset.label} from {dataset.root}; codecs {', '.join(codecs)}; "
              f"metrics psnr-rgb, psnr-y{''.join(', ' + m for m in args.metrics)}; {args.jobs} process(es)")
        written = evaluate(dataset, codecs, out, qualities, tuple(args.metrics), args.jobs, args.weights_dir,
                           progress=not args.no_progress)
        _print_summary(written, "psnr-rgb", ["psnr-rgb", "ms-ssim-rgb"], 3)
        print(f"results in {out}/ ({', '.join(p.name for p in written.values())}, per_image.csv)")
        return 0

    p.set_defaults(run=run)


def _print_summary(written: dict, key: str, bd_keys: list[str], bpp_digits: int) -> None:
    """Each written curve's bpp/``key`` points, then (for several curves) the BD-rates on
    ``bd_keys`` of the first curve against every other."""
    from licodec.eval.report import bd_table
    from licodec.eval.results import load_curve

    curves = [load_curve(path) for path in written.values()]
    label = "PSNR" if key == "psnr-rgb" else key.upper()
    for c in curves:
        pts = " ".join(f"{b:.{bpp_digits}f}/{p:.2f}" for b, p in zip(c.bpp, c.results[key]))
        print(f"{c.name}: bpp/{label} {pts}")
    if len(curves) > 1:
        print()
        print(bd_table(curves, bd_keys, test=curves[0]))


DEFAULT_I_PERIOD = 32  # licodec.eval.video_runner's (not imported here: it loads numpy and the codecs)
IMAGE_ONLY_OPTIONS = {"root": None, "jobs": 1, "limit": 0, "weights_dir": None}  # option: its default
VIDEO_ONLY_OPTIONS = ("i_period", "frames", "fps", "size")


def _run_video_eval(args) -> int:
    """``licodec eval --video``: :func:`licodec.eval.video_runner.evaluate_video` and a summary."""
    from licodec.eval.video_runner import CSV_NAME, SEQUENCES_NAME, evaluate_video
    from licodec.zoo import DEFAULT_MODEL, get_entry

    if args.dataset:
        raise LicodecError(f"give a dataset ({args.dataset}) or --video clips, not both")
    for name, default in IMAGE_ONLY_OPTIONS.items():
        if getattr(args, name) != default:
            raise LicodecError(f"--{name.replace('_', '-')} is for the image eval, not --video")
    if args.metrics != ["ms-ssim"]:
        raise LicodecError("-m is for the image eval; --video always measures PSNR (Y, U, V, YUV, RGB) and MS-SSIM")
    from licodec.video.coding import DEFAULT_MODEL as VIDEO_MODEL

    codecs = args.codecs or (([VIDEO_MODEL] if get_entry(VIDEO_MODEL).has_weights else [])
                             + ["x264", "x265", f"intra:{DEFAULT_MODEL}"])
    size = None
    if args.size:
        from licodec.cli.video_commands import frame_size

        size = frame_size(args.size)
    i_period = args.i_period if args.i_period is not None else DEFAULT_I_PERIOD
    out = Path(args.out) if args.out else Path("licodec-eval") / "video"
    print(f"licodec eval --video: {len(args.video)} clip(s); codecs {', '.join(codecs)}; I-period {i_period}; "
          f"{'all' if args.frames is None else f'at most {args.frames}'} frames")
    written = evaluate_video(args.video, codecs, out, dict(args.quality), i_period, args.frames, args.fps, size,
                             progress=not args.no_progress)
    _print_summary(written, "psnr-yuv", ["psnr-yuv", "psnr-rgb"], 4)
    print(f"results in {out}/ ({', '.join(p.name for p in written.values())}, {CSV_NAME}, {SEQUENCES_NAME}, "
          "per_frame_*.png)")
    return 0


def _bdrate(sub) -> None:
    p = sub.add_parser("bdrate", help="Bjøntegaard delta rate of results JSON files against an anchor",
                       description="BD-rate (and BD-quality) of each TEST curve against the ANCHOR curve, from "
                                   "results JSON files (licodec eval's or CompressAI's format).")
    p.add_argument("anchor", help="anchor results JSON")
    p.add_argument("tests", nargs="+", help="results JSON files to compare with the anchor")
    p.add_argument("--metric", default="psnr",
                   help=f"one of {_metric_list(False, video=True)} (default: psnr, on RGB)")
    p.add_argument("--method", default="pchip", choices=["pchip", "akima", "cubic"],
                   help="interpolation (default pchip, as in the JVET/JCT-VC common test conditions)")

    def run(args) -> int:
        from licodec.eval.report import bd_figures
        from licodec.eval.results import load_curve, metric_key

        key = metric_key(args.metric)
        spec = metric_registry.by_key(key)
        anchor = load_curve(args.anchor)
        tests = [load_curve(t) for t in args.tests]
        unit = f" {spec.unit}" if spec.unit else ""
        direction = "" if spec.higher_is_better else " (lower is better)"
        for t in tests:
            rate, dist, notes = bd_figures(anchor, t, key, args.method)
            _print_warnings(notes)
            print(f"{t.name} vs {anchor.name} ({key}, {args.method}): BD-rate {rate:+.2f} %, "
                  f"BD-{key} {dist:+.3f}{unit}{direction}")
        return 0

    p.set_defaults(run=run)


def _plot(sub) -> None:
    p = sub.add_parser("plot", help="plot RD curves from results JSON files and print a BD-rate table")
    p.add_argument("curves", nargs="*", help="results JSON files (licodec eval's or CompressAI's format)")
    p.add_argument("-o", "--output", required=True, help="figure file (.png, .pdf or .svg)")
    p.add_argument("--metrics", nargs="+", default=["psnr", "ms-ssim"], metavar="METRIC",
                   help=f"panels, any of {_metric_list(False, video=True)} (default: psnr ms-ssim)")
    p.add_argument("--anchor", help="BD-rates of every curve against this file (default: the first)")
    p.add_argument("--test", help="instead, BD-rates of this file against every other curve")
    p.add_argument("--method", default="pchip", choices=["pchip", "akima", "cubic"])
    p.add_argument("--table", help="markdown table file (default: the figure's name with .md)")
    p.add_argument("--title", default="")
    p.add_argument("--max-bpp", type=float, default=None, help="crop the rate axis at this bpp")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--per-frame", metavar="CSV",
                   help="instead, PSNR (YUV) and bits of every frame from a video eval's per_frame.csv: each codec "
                        "at its point nearest --bpp (default: the geometric mean of all points' bpp)")
    p.add_argument("--clip", help="with --per-frame: the clip to plot (default: the first in the file)")
    p.add_argument("--bpp", type=float, help="with --per-frame: the rate to pick each codec's point by")

    def run(args) -> int:
        if args.per_frame:
            return _plot_per_frame(args)
        if args.clip or args.bpp is not None:
            raise LicodecError("--clip and --bpp go with --per-frame")
        if not args.curves:
            raise LicodecError("give results JSON files to plot, or --per-frame per_frame.csv")
        from licodec.eval.report import bd_table, plot_curves
        from licodec.eval.results import load_curve, metric_key
        from licodec.image_io import atomic_write

        keys = [metric_key(m) for m in args.metrics]
        paths = list(dict.fromkeys(args.curves))
        curves = [load_curve(c) for c in paths]

        def pick(option: str | None):
            if option is None:
                return None
            if option not in paths:
                raise LicodecError(f"{option} is not among the curves given")
            return curves[paths.index(option)]

        if args.anchor and args.test:
            raise LicodecError("give --anchor or --test, not both")
        out = Path(args.output)
        table_path = Path(args.table) if args.table else out.with_suffix(".md")
        for path in (out, table_path):
            if path.exists() and not args.force:
                raise LicodecError(f"{path} exists; use --force to overwrite it")
        anchor, test = pick(args.anchor), pick(args.test)
        table = bd_table(curves, keys, anchor=anchor, test=test, method=args.method) if len(curves) > 1 else ""
        plot_curves(curves, keys, out, title=args.title, force=args.force, max_bpp=args.max_bpp)
        if table:
            atomic_write(table_path, table.encode(), force=args.force)
            print(table)
            print(f"wrote {out} and {table_path}")
        else:
            print(f"wrote {out}")
        return 0

    p.set_defaults(run=run)


def _plot_per_frame(args) -> int:
    from licodec.eval.video_plots import plot_per_frame, read_per_frame

    if args.curves:
        raise LicodecError("--per-frame plots one per_frame.csv; give no results JSON files with it")
    rows = read_per_frame(args.per_frame)
    clip = args.clip or rows[0]["clip"]
    out = plot_per_frame(rows, clip, args.output, target_bpp=args.bpp, force=args.force)
    print(f"wrote {out}")
    return 0


def _datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list the standard test sets, or download one (needs internet)")
    p.add_argument("action", nargs="?", choices=["list", "download"], default="list")
    p.add_argument("name", nargs="?", help="dataset to download")
    p.add_argument("--root", help="destination (default: $LICODEC_DATA/NAME)")

    def run(args) -> int:
        from licodec.eval.datasets import DATASETS, default_root, download_dataset

        if args.action == "list":
            for info in DATASETS.values():
                count = f"{info.count} images" if info.count else "image count not fixed"
                print(f"{info.name}: {info.title}, {count}; {info.homepage}; default folder {default_root(info.name)}")
            return 0
        if not args.name:
            raise LicodecError("which dataset? e.g. `licodec datasets download kodak`")
        ds = download_dataset(args.name, args.root)
        print(f"{ds.label} in {ds.root}")
        return 0

    p.set_defaults(run=run)


REGISTRARS = [_eval, _bdrate, _plot, _datasets]
