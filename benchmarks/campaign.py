"""The training campaign's trajectory: Kodak BD-rate of the default model's lineage against CPU-hours.

    python benchmarks/campaign.py add LABEL --cpu-hours H --curve CODEC.json --jpeg JPEG.json --webp WEBP.json
                                  [--note TEXT]
    python benchmarks/campaign.py plot      # docs/campaign.png from benchmarks/results/campaign.json

``add`` appends one point (a checkpoint of the lineage, evaluated by ``licodec eval`` on
Kodak with the anchors measured in the same run) with the cumulative CPU-hours spent on
training it (wall seconds x torch threads, summed over the lineage's runs). ``plot``
draws BD-rate (PSNR-RGB, pchip) against JPEG 4:2:0 and WebP over CPU-hours, with the
issue's targets as dashed lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import REPO, RESULTS

STORE = RESULTS / "campaign.json"
FIGURE = REPO / "docs" / "campaign.png"


def _bd(anchor_path: str, curve_path: str) -> float:
    from licodec.eval.bdrate import bd_rate
    from licodec.eval.results import load_curve

    a, t = load_curve(Path(anchor_path)), load_curve(Path(curve_path))
    return round(bd_rate(a.bpp, a.results["psnr-rgb"], t.bpp, t.results["psnr-rgb"]), 2)


def add(args) -> None:
    data = json.loads(STORE.read_text()) if STORE.exists() else {"points": []}
    from licodec.eval.results import load_curve

    c = load_curve(Path(args.curve))
    point = {"label": args.label, "cpu_hours": args.cpu_hours,
             "bd_rate_vs_jpeg420_pct": _bd(args.jpeg, args.curve), "bd_rate_vs_webp_pct": _bd(args.webp, args.curve),
             "kodak_bpp": [round(b, 4) for b in c.bpp], "kodak_psnr_rgb": [round(v, 3) for v in c.results["psnr-rgb"]],
             "note": args.note}
    data["points"] = [p for p in data["points"] if p["label"] != args.label] + [point]
    data["points"].sort(key=lambda p: p["cpu_hours"])
    STORE.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{args.label}: {args.cpu_hours:.2f} CPU-h, vs JPEG {point['bd_rate_vs_jpeg420_pct']:+.1f}%, "
          f"vs WebP {point['bd_rate_vs_webp_pct']:+.1f}%")


def plot(_args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = json.loads(STORE.read_text())["points"]
    hours = [p["cpu_hours"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(hours, [p["bd_rate_vs_jpeg420_pct"] for p in points], "o-", label="vs JPEG 4:2:0 (optimized Huffman)")
    ax.plot(hours, [p["bd_rate_vs_webp_pct"] for p in points], "s-", label="vs WebP (method 6)")
    for p in points:
        ax.annotate(p["label"], (p["cpu_hours"], p["bd_rate_vs_jpeg420_pct"]), textcoords="offset points",
                    xytext=(4, -12), fontsize=7)
    ax.axhline(-35, ls="--", c="C0", lw=0.8, label="target vs JPEG (-35%)")
    ax.axhline(0, ls="--", c="C1", lw=0.8, label="target vs WebP (0%)")
    ax.set_xlabel("training CPU-hours (wall s x threads, cumulative)")
    ax.set_ylabel("Kodak BD-rate, PSNR-RGB (%)")
    ax.set_title("licodec default model: RD per CPU-hour (Kodak, 24 images, real bytes)")
    ax.grid(alpha=0.3)
    ax.set_xlim(left=0)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    print(f"wrote {FIGURE}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("add")
    a.add_argument("label")
    a.add_argument("--cpu-hours", type=float, required=True)
    a.add_argument("--curve", required=True)
    a.add_argument("--jpeg", required=True)
    a.add_argument("--webp", required=True)
    a.add_argument("--note", default="")
    a.set_defaults(run=add)
    sub.add_parser("plot").set_defaults(run=plot)
    args = p.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
