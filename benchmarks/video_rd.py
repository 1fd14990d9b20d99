"""Video rate-distortion: licodec's video codec against x264/x265 and all-intra licodec, on
BasketballPass (HEVC class D, 416x240, 100 frames, 50 fps) and the 4 Vimeo-90k septuplets (448x256, 7 frames).

    python benchmarks/video_rd.py [-c video-dcvc x264 x265 intra:hyperprior-ctx] [-q x264=22,27,32,37,42]
                                  [--frames 100] [--i-period 32] [--only basketball] [--out benchmarks/results/video]

Each set is one ``licodec eval --video`` run (:func:`licodec.eval.video_runner.evaluate_video`) into
OUT/<set>/ (per_frame.csv, sequences.csv, one CompressAI-format JSON per codec, per-frame plots;
rerunning resumes). Then the BD-rates on YUV PSNR ((6Y+U+V)/8, pchip in the log-rate domain) of
every codec against x264 and against the all-intra curve, the drift (:func:`drift`: per codec and
quality, the PSNR-YUV of the first P-frame of each full I-period minus that of its last, raw and
less the all-intra codec's change over the same frames) and the encode/decode frames per second
are printed and written to OUT/summary.json.
Default codecs: the video codec if it has weights, x264, x265 and hyperprior-ctx all-intra; a
training run's export is ``-c mine=RUN/export``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

from common import RESULTS, SHARED, machine
from licodec.cli.eval_commands import _quality_spec
from licodec.errors import LicodecError
from licodec.eval.report import bd_figures
from licodec.eval.results import load_curve
from licodec.eval.video_runner import evaluate_video

VIDEO = SHARED / "data" / "video"
SETS = {
    "basketball": dict(clips=[VIDEO / "BasketballPass_416x240_100f_rgb"], fps=50),
    "vimeo": dict(clips=sorted(p for p in (VIDEO / "vimeo_septuplet_samples").glob("*/*") if p.is_dir()), fps=25),
}
KEY = "psnr-yuv"


def default_codecs() -> list[str]:
    from licodec.video.coding import DEFAULT_MODEL
    from licodec.zoo import get_entry

    return ([DEFAULT_MODEL] if get_entry(DEFAULT_MODEL).has_weights else []) + ["x264", "x265", "intra:hyperprior-ctx"]


def bd_rates(curves: dict, anchor: str) -> dict[str, float | None]:
    """BD-rate (%) on YUV PSNR of every other curve against ``anchor``; None where it cannot be
    computed (no overlap, a non-monotonic curve)."""
    out = {}
    for name, curve in curves.items():
        if name == anchor:
            continue
        try:
            out[name] = round(bd_figures(curves[anchor], curve, KEY)[0], 2)
        except LicodecError:
            out[name] = None
    return out


def drift(per_frame_csv: Path, i_period: int, intra: str | None) -> dict[str, dict]:
    """Per codec and quality, the PSNR-YUV drop (dB) from the first to the last P-frame of an
    I-period (positive: quality falls along the period), the worst over every full I-period of
    every clip: ``raw``, and ``vs_intra``, less the all-intra codec's drop over the same frames
    (its mean over qualities) -- the content's own change, which no reference chain causes; and,
    for codecs with the all-intra codec's quality scale, ``vs_intra_same_q``, less its drop at the
    same quality (the content's change of PSNR depends on the quality: larger at high ones)."""
    groups = defaultdict(dict)  # (codec, quality, clip, period) -> frame in period -> psnr
    with open(per_frame_csv, newline="") as f:
        for row in csv.DictReader(f):
            if int(row["i_period"]) == i_period:
                frame = int(row["frame"])
                key = (row["codec"], row["quality"], row["clip"], frame // i_period)
                groups[key][frame % i_period] = float(row["psnr_yuv"])
    drops = {k: p[1] - p[i_period - 1] for k, p in groups.items() if len(p) == i_period and i_period > 2}
    content, same_q = defaultdict(list), {}
    for (codec, quality, clip, period), d in drops.items():
        if codec == intra:
            content[clip, period].append(d)
            same_q[quality, clip, period] = d
    out = defaultdict(lambda: defaultdict(dict))
    for (codec, quality, clip, period), d in drops.items():
        cell = out[codec][quality]
        cell["raw"] = round(max(cell.get("raw", d), d), 3)
        if content.get((clip, period)):
            adjusted = d - sum(content[clip, period]) / len(content[clip, period])
            cell["vs_intra"] = round(max(cell.get("vs_intra", adjusted), adjusted), 3)
        if (quality, clip, period) in same_q:
            adjusted = d - same_q[quality, clip, period]
            cell["vs_intra_same_q"] = round(max(cell.get("vs_intra_same_q", adjusted), adjusted), 3)
    return {c: dict(sorted(q.items(), key=lambda kv: float(kv[0]))) for c, q in out.items()}


def print_table(title: str, rates: dict[str, dict]) -> None:
    anchors = list(rates)
    codecs = list(dict.fromkeys(c for r in rates.values() for c in r))
    print(f"\n{title}: BD-rate on PSNR-YUV (negative = fewer bits)")
    print("| codec | " + " | ".join(f"vs {a}" for a in anchors) + " |")
    print("|---|" + "---|" * len(anchors))
    for c in codecs:
        cells = [rates[a].get(c, "") for a in anchors]
        print(f"| {c} | " + " | ".join("-" if v == "" else "n/a" if v is None else f"{v:+.1f}%" for v in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--codecs", nargs="+", default=None)
    parser.add_argument("-q", "--quality", type=_quality_spec, action="append", default=[], metavar="CODEC=Q1,Q2")
    parser.add_argument("--frames", type=int, default=100, help="at most N frames per clip (default 100)")
    parser.add_argument("--i-period", type=int, default=32)
    parser.add_argument("--only", choices=list(SETS), help="one set only")
    parser.add_argument("--out", default=str(RESULTS / "video"))
    args = parser.parse_args()

    codecs = args.codecs or default_codecs()
    intra = next((c for c in codecs if c.startswith("intra:")), None)
    summary = {"machine": machine(), "codecs": codecs, "frames": args.frames, "i_period": args.i_period, "sets": {}}
    for name, spec in SETS.items():
        if args.only and name != args.only:
            continue
        t0 = time.time()
        written = evaluate_video(spec["clips"], codecs, f"{args.out}/{name}", dict(args.quality), args.i_period,
                                 args.frames, spec["fps"])
        curves = {codec: load_curve(path) for codec, path in written.items()}
        rates = {a: bd_rates(curves, a) for a in ("x264", intra) if a in curves}
        drops = drift(Path(args.out) / name / "per_frame.csv", args.i_period, intra)
        speed = {c: {"encode_fps": [round(v, 2) for v in curve.results["encoding_fps"]],
                     "decode_fps": [round(v, 2) for v in curve.results["decoding_fps"]]} for c, curve in curves.items()}
        summary["sets"][name] = {"clips": [str(c.relative_to(VIDEO)) for c in spec["clips"]],
                                 "seconds": round(time.time() - t0, 1), "bd_rate_psnr_yuv": rates,
                                 "drift_first_minus_last_p_db": drops, "fps": speed,
                                 "curves": {c: str(p.relative_to(args.out)) if p.is_relative_to(args.out) else str(p)
                                            for c, p in written.items()}}
        for codec, curve in curves.items():
            points = " ".join(f"{b:.4f}/{p:.2f}" for b, p in zip(curve.bpp, curve.results[KEY]))
            print(f"{name} {codec}: bpp/PSNR-YUV {points}")
            if codec in drops:
                print("  drift (first - last P-frame PSNR-YUV, dB, worst period; raw/vs all-intra/vs all-intra at "
                      "the same quality): " + " ".join(
                          f"q{q}:{d['raw']:+.2f}/{d.get('vs_intra', float('nan')):+.2f}/"
                          f"{d.get('vs_intra_same_q', float('nan')):+.2f}" for q, d in drops[codec].items()))
            print(f"  encode/decode fps: {speed[codec]['encode_fps']} / {speed[codec]['decode_fps']}")
        print_table(name, rates)
    path = Path(args.out) / "summary.json"
    if path.exists() and args.only:  # keep the other set's figures
        summary["sets"] = {**json.loads(path.read_text()).get("sets", {}), **summary["sets"]}
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
