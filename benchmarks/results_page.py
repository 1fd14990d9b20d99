"""Regenerate docs/results.md: RD curves of licodec against classic codecs measured in the
same run (Kodak, and off Kodak: the CLIC subset and hires_test) and against published curves,
with BD-rate tables.

    python benchmarks/results_page.py [--jobs 2] [--limit N]

Runs ``licodec eval`` (resumable: results and per-image CSV in benchmarks/results/<set>/),
then draws docs/kodak_rd.png and writes docs/results.md. Published curves come from
../shared/reference/compressai-results/kodak (CompressAI's results folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from common import KODAK, REFERENCE, REPO, SHARED, machine
from licodec.cli.main import main as licodec_main
from licodec.eval.anchors import get_anchor
from licodec.eval.report import bd_table, plot_curves
from licodec.eval.results import load_curve, to_db
from licodec.zoo import DEFAULT_MODEL

LICODEC = list(dict.fromkeys([DEFAULT_MODEL, "hyperprior-vr"]))  # the default first, then the previous default
CODECS = LICODEC + ["jpeg420", "jpeg444", "webp", "avif", "jpeg2000"]
OFF_KODAK = {"CLIC subset": ("clic", SHARED / "data" / "clic"), "hires_test": ("hires_test", SHARED / "data" / "hires_test")}
OFF_KODAK_CODECS = [DEFAULT_MODEL, "jpeg420", "webp"]
METRICS = ["ms-ssim", "haarpsi"]
PUBLISHED = {  # label -> file in CompressAI's results/kodak
    "VTM 4:4:4 (published)": "vtm.json",
    "BPG 4:4:4 (published)": "bpg_444_x265_ycbcr.json",
    "CompressAI bmshj2018-hyperprior (published)": "compressai-bmshj2018-hyperprior_mse_cpu.json",
    "CompressAI mbt2018-mean (published)": "compressai-mbt2018-mean_mse_cpu.json",
}
OUT = REPO / "benchmarks" / "results" / "kodak"
DOCS = REPO / "docs"


def _points_table(curve) -> str:
    keys = [k for k in ("psnr-rgb", "psnr-y", "ms-ssim-rgb", "haarpsi") if curve.has(k)]
    head = ["quality", "bpp"] + [k if k != "ms-ssim-rgb" else "MS-SSIM (dB)" for k in keys] + ["enc s", "dec s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    r = curve.results
    for i, q in enumerate(r["quality"]):
        cells = [f"{q:g}", f"{r['bpp'][i]:.3f}"]
        for k in keys:
            v = to_db(k, [r[k][i]])[0]
            cells.append(f"{v:.4f}" if k == "haarpsi" else f"{v:.2f}")
        cells += [f"{r['encoding_time'][i]:.3f}", f"{r['decoding_time'][i]:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _extra_sections() -> str:
    """Sections from other benchmarks' JSON, when present: effort, speed, training campaign."""
    import json

    results = REPO / "benchmarks" / "results"
    parts = []
    effort = results / "effort.json"
    if effort.exists():
        e = json.loads(effort.read_text())
        rows = ["| effort | iterations | BD-rate vs effort 0 | BD-PSNR (dB) | encode s/image |", "|---|---|---|---|---|"]
        for level, r in e["levels"].items():
            bd = f"{r['bd_rate_vs_effort0_pct']:+.2f}%" if "bd_rate_vs_effort0_pct" in r else "0"
            bp = f"{r['bd_psnr_vs_effort0_db']:+.3f}" if "bd_psnr_vs_effort0_db" in r else "0"
            rows.append(f"| {level} | {r['iterations']} | {bd} | {bp} | {r['encode_s_per_image']:.1f} |")
        parts.append(f"## Encode effort\n\n`{e['command']}` ({e['codec']}, {e['dataset']}, qualities "
                     f"{', '.join(f'{q:g}' for q in e['qualities'])}, {e['machine']['threads']} thread(s); "
                     f"PSNR-RGB on real bytes):\n\n" + "\n".join(rows)
                     + (f"\n\n{e['notes']}" if e.get("notes") else ""))
    speed = results / "context_speed.json"
    if speed.exists():
        sp = json.loads(speed.read_text())
        t = sp["seconds"]
        parts.append(
            f"## Coding speed\n\n`python benchmarks/context_speed.py` ({sp['model']}, {sp['image']} {sp['size']}, "
            f"quality {sp['quality']:g}, {sp['machine']['threads']} threads; CompressAI models of the same N={sp['config']['N']}, "
            f"M={sp['config']['M']}):\n\n| | encode s | decode s |\n|---|---|---|\n"
            f"| licodec {sp['model']} | {t['licodec_encode']:.3f} | {t['licodec_decode']:.3f} |\n"
            f"| CompressAI mbt2018-mean (no context) | {t['mbt2018_mean_encode']:.3f} | {t['mbt2018_mean_decode']:.3f} |\n"
            f"| CompressAI mbt2018 (serial context) | {t['mbt2018_encode']:.3f} | {t['mbt2018_decode']:.3f} |\n\n"
            f"Encode / mbt2018-mean: {sp['encode_over_mbt2018_mean']:.2f}; decode / mbt2018-mean: "
            f"{sp['decode_over_mbt2018_mean']:.2f}; mbt2018's serial decode takes "
            f"{sp['mbt2018_decode_over_licodec_decode']:.1f}x licodec's.")
    campaign = results / "campaign.json"
    if campaign.exists():
        points = json.loads(campaign.read_text())["points"]
        rows = ["| checkpoint | CPU-hours | vs JPEG 4:2:0 | vs WebP | note |", "|---|---|---|---|---|"]
        rows += [f"| {p['label']} | {p['cpu_hours']:.2f} | {p['bd_rate_vs_jpeg420_pct']:+.1f}% | "
                 f"{p['bd_rate_vs_webp_pct']:+.1f}% | {p['note']} |" for p in points]
        budget_rows = ["| comparison | arm | training args | steps | steps/s | vs JPEG 4:2:0 | vs first arm | "
                       "unquantized top-quality PSNR |", "|---|---|---|---|---|---|---|---|"]
        for path in sorted((results / "train_budget").glob("*.json")):
            b = json.loads(path.read_text())
            arms = list(b["arms"].items())
            for label, a in arms:
                top = next(k for k in a if k.startswith("unquantized_psnr"))
                vs_first = a.get(f"vs_{arms[0][0]}", {}).get("bd_rate_pct")
                budget_rows.append(
                    f"| {b['name']} ({b['minutes_per_arm']:g} min, {b['threads_per_arm']} thread) | {label} | "
                    f"`{a['train_args']}` | {a['steps']} | {a['steps_per_s']:.2f} | {a['vs_jpeg420']['bd_rate_pct']:+.1f}% | "
                    + (f"{vs_first:+.1f}%" if vs_first is not None else "") + f" | {a[top]:.2f} dB |")
        parts.append("## Training campaign\n\nKodak BD-rate (PSNR-RGB, pchip) of the default model's lineage "
                     "against the CPU-hours spent training it (`python benchmarks/campaign.py plot`):\n\n"
                     "![RD per CPU-hour](campaign.png)\n\n" + "\n".join(rows) +
                     "\n\nRecipes compared at equal wall-clock budgets, arms trained side by side "
                     "(`python benchmarks/train_budget.py`; Kodak, real bytes):\n\n" + "\n".join(budget_rows))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()

    t0 = time.time()
    argv = ["eval", "kodak", "--root", str(KODAK), "-c", *CODECS, "-m", *METRICS, "-j", str(args.jobs),
            "--out", str(OUT), "--no-progress"] + (["--limit", str(args.limit)] if args.limit else [])
    if licodec_main(argv) != 0:
        raise SystemExit("licodec eval failed")
    off_kodak = []
    for title, (name, root) in OFF_KODAK.items():
        out = REPO / "benchmarks" / "results" / name
        argv = ["eval", str(root), "-c", *OFF_KODAK_CODECS, "-m", "-j", str(args.jobs), "--out", str(out),
                "--no-progress"] + (["--limit", str(args.limit)] if args.limit else [])
        if licodec_main(argv) != 0:
            raise SystemExit(f"licodec eval failed on {root}")
        curves = [load_curve(out / f"{c}.json") for c in OFF_KODAK_CODECS]
        off_kodak.append((title, curves[0].dataset, bd_table(curves, ["psnr-rgb"], test=curves[0]),
                          _points_table(curves[0])))
    wall = time.time() - t0
    measured = [load_curve(OUT / f"{c}.json") for c in CODECS]
    ours = measured[0]
    published = []
    if not args.limit:  # published curves are means over all 24 images
        published = [dataclasses.replace(load_curve(REFERENCE / f), name=label) for label, f in PUBLISHED.items()]
    curves = measured + published
    DOCS.mkdir(exist_ok=True)
    plot_curves(curves, ["psnr-rgb", "ms-ssim-rgb"], DOCS / "kodak_rd.png", title=ours.dataset, force=True,
                max_bpp=2.0)
    table = bd_table(curves, ["psnr-rgb", "ms-ssim-rgb"], test=ours)
    m = machine()
    off_kodak_text = "\n\n".join(
        f"## {title}: {label}\n\nPSNR-RGB only, against JPEG 4:2:0 and WebP measured in the same run "
        f"(`benchmarks/results/{OFF_KODAK[title][0]}/`).\n\n{table}\n### licodec {CODECS[0]}\n\n{points}"
        for title, label, table, points in off_kodak)
    anchors_text = "\n".join(f"- {c.name}: {get_anchor(n).version()}" for c, n in zip(measured, CODECS)
                             if n not in LICODEC)
    page = f"""# Results

Regenerate with `make results` (runs `python benchmarks/results_page.py`; resumable: finished
images are kept in `per_image.csv`, so a rerun measures only what changed; this run took
{wall:.0f} s on 2 cores, reusing every row already measured).
Page written {m['date']} on {m['cpu']} ({m['cores']} cores), torch {m['torch']}.

## {ours.dataset}

licodec `{CODECS[0]}` is the default codec; `hyperprior-vr` is the previous default. Both are
trained on CPU only and undertrained (see the README and `docs/campaign.png`): the numbers below
are as measured, the yardstick for better weights.

![Kodak RD curves](kodak_rd.png)

{table}
Measured curves (solid) ran in the same `licodec eval` run on the same images: bpp from the real
bytes of each file (the whole `.lic` container for licodec), metrics on the 8-bit decoded
image, each point the mean over images (CompressAI's convention). Dashed curves are
CompressAI's published Kodak results (`{REFERENCE.relative_to(REPO.parent)}`), not re-measured.

MS-SSIM is shown in dB, `-10 log10(1 - MS-SSIM)`. LPIPS and DISTS are not in this table:
their ImageNet backbones cannot be downloaded on the machine that made it (see
`licodec eval --metrics lpips dists --weights-dir DIR`).

### licodec {CODECS[0]}

{_points_table(ours)}

{off_kodak_text}

{_extra_sections()}

## Classic codecs (settings)

{anchors_text}

Settings are Pillow's encoders as listed; the quality knob is swept as in `licodec/eval/anchors.py`
(JPEG 2000: compression ratios). Raw data: `benchmarks/results/kodak/*.json` (CompressAI format)
and `per_image.csv` (one row per image, codec and quality).
Encode/decode times are per image with {args.jobs} parallel processes of
{max(1, (m['cores'] or 1) // args.jobs)} thread(s) each.
"""
    (DOCS / "results.md").write_text(page)
    print(table)
    print(f"wrote {DOCS / 'results.md'} and {DOCS / 'kodak_rd.png'} ({wall:.0f} s)")


if __name__ == "__main__":
    main()
