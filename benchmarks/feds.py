"""FEDS teacher/student benchmark: RD on Kodak, the CLIC subset and hires_test; size, speed, memory.

    python benchmarks/feds.py rd [--codecs LABEL ...] [--datasets ...] [--qualities 1 3 5 8]
    python benchmarks/feds.py speed
    python benchmarks/feds.py report            # -> benchmarks/results/feds.json

Codecs (label = zoo name or ``name:weights_dir``):
  core     hyperprior-vr (shipped)       teacher  feds-teacher (shipped)
  student  feds-student (shipped, distilled)
  scratch  feds-student trained from scratch for the same steps (``--scratch DIR``, default
           /work/runs/feds-student-scratch/export; not shipped: ``licodec train --model
           feds-student --steps N`` makes it)

``rd`` codes every image at every quality for real (bytes from the bitstream, PSNR on the
8-bit decoded image) and appends rows to ``benchmarks/results/feds/rd_LABEL.csv``; a rerun does
only the missing rows (keyed by weights hash); each codec has its own ``rd_LABEL.csv``, so the
codecs can be measured in parallel processes. ``speed`` times encode and decode of every codec in one process (2 threads,
median of 3) and measures peak memory of each in a fresh process. ``report`` computes the
BD-rates (pchip, RGB PSNR) and writes the JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, SHARED, machine, read_rgb, write_json

OUT = RESULTS / "feds"
FIELDS = ["dataset", "image", "codec", "weights", "quality", "bytes", "bpp", "psnr"]
DATASETS = {"kodak": "Kodak (24)", "clic": "CLIC subset (8)", "hires_test": "hires_test (30)"}
COMPARISONS = [("student vs teacher", "teacher", "student"), ("teacher vs core", "core", "teacher"),
               ("distilled vs scratch student", "scratch", "student"), ("student vs core", "core", "student")]


def codec_specs(scratch: str) -> dict:
    return {"core": "hyperprior-vr", "teacher": "feds-teacher", "student": "feds-student",
            "scratch": f"feds-student:{scratch}"}


def load(spec: str):
    from licodec.zoo import create_model

    name, _, wdir = spec.partition(":")
    return create_model(name, weights_dir=wdir or None)


def images(dataset: str) -> list[Path]:
    from licodec.train.data import list_images

    return list_images(SHARED / "data" / dataset)


def code_image(model, rgb: np.ndarray, quality: float) -> tuple[int, np.ndarray, float, float]:
    """Real bytes and the 8-bit decoded image; encode and decode seconds."""
    from licodec.entropy.container import Bitstream

    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().div(255)
    t0 = time.perf_counter()
    data = model.compress(x, quality).to_bytes()
    t1 = time.perf_counter()
    x_hat = model.decompress(Bitstream.from_bytes(data))
    t2 = time.perf_counter()
    out = x_hat[0].mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return len(data), out, t1 - t0, t2 - t1


def read_rows() -> list[dict]:
    rows = []
    for path in sorted(OUT.glob("rd_*.csv")):
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def cmd_rd(args) -> None:
    from licodec.eval.metrics import psnr

    specs = codec_specs(args.scratch)
    OUT.mkdir(parents=True, exist_ok=True)
    for label in args.codecs:
        path_csv = OUT / f"rd_{label}.csv"
        new = not path_csv.is_file()
        with open(path_csv, "a", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            if new:
                writer.writeheader()
            model = load(specs[label])
            done = {(r["dataset"], r["image"], float(r["quality"])) for r in read_rows()
                    if r["codec"] == label and r["weights"] == model.weights_sha256}
            for dataset in args.datasets:
                for path in images(dataset):
                    rgb = read_rgb(path)
                    for q in args.qualities:
                        if (dataset, path.name, q) in done:
                            continue
                        n, out, _, _ = code_image(model, rgb, q)
                        writer.writerow({"dataset": dataset, "image": path.name, "codec": label,
                                         "weights": model.weights_sha256, "quality": q, "bytes": n,
                                         "bpp": 8 * n / (rgb.shape[0] * rgb.shape[1]), "psnr": psnr(out, rgb)})
                        f.flush()
                    print(f"{label} {dataset} {path.name}", flush=True)


MEMORY_CHILD = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from feds import code_image, load
from common import read_rgb
torch.set_num_threads(2)
model = load(sys.argv[2])
rgb = read_rgb(sys.argv[3])
n, _, enc, dec = code_image(model, rgb, float(sys.argv[4]))
# VmHWM is this process's own peak (ru_maxrss would include the parent's, inherited through fork)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"bytes": n, "peak_rss_mb": hwm / 1024}))
"""


def cmd_speed(args) -> None:
    torch.set_num_threads(2)
    specs = codec_specs(args.scratch)
    labels = ["core", "teacher", "student"]
    sources = {"kodim23 (768x512)": SHARED / "data" / "kodak" / "kodim23.png",
               "hires wiki_001": SHARED / "data" / "hires_test" / "wiki_001.png"}
    result = {"threads": 2, "quality": args.quality, "repeats": 3, "codecs": {}}
    models = {label: load(specs[label]) for label in labels}
    for label, model in models.items():
        entry = {"spec": specs[label], "weights": model.weights_sha256,
                 "params": sum(p.numel() for p in model.parameters()), "images": {}}
        for key, path in sources.items():
            rgb = read_rgb(path)
            code_image(model, rgb, args.quality)  # warm-up
            runs = [code_image(model, rgb, args.quality) for _ in range(3)]
            proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(Path(__file__).parent), specs[label],
                                   str(path), str(args.quality)], capture_output=True, text=True, check=True)
            mem = json.loads(proc.stdout.strip().splitlines()[-1])
            entry["images"][key] = {"size": f"{rgb.shape[1]}x{rgb.shape[0]}", "bytes": runs[0][0],
                                    "encode_s": statistics.median(r[2] for r in runs),
                                    "decode_s": statistics.median(r[3] for r in runs),
                                    "peak_rss_mb": mem["peak_rss_mb"]}
            print(label, key, entry["images"][key], flush=True)
        result["codecs"][label] = entry
    s, t = result["codecs"]["student"], result["codecs"]["teacher"]
    result["student_over_teacher"] = {
        "params": s["params"] / t["params"],
        **{f"{key} {what}": s["images"][key][what] / t["images"][key][what]
           for key in sources for what in ("encode_s", "decode_s", "peak_rss_mb")},
    }
    result["machine"] = machine()
    write_json(OUT / "speed.json", result)


def curves(rows: list[dict], dataset: str, label: str, weights: str) -> dict | None:
    """Mean bpp and mean PSNR per quality over the dataset's images (all qualities complete)."""
    sel = [r for r in rows if r["dataset"] == dataset and r["codec"] == label and r["weights"] == weights]
    n_images = len(images(dataset))
    by_q = {}
    for r in sel:
        by_q.setdefault(float(r["quality"]), []).append(r)
    qs = sorted(q for q, rs in by_q.items() if len({r["image"] for r in rs}) == n_images)
    if len(qs) < 2:
        return None
    return {"quality": qs,
            "bpp": [float(np.mean([float(r["bpp"]) for r in by_q[q]])) for q in qs],
            "psnr": [float(np.mean([float(r["psnr"]) for r in by_q[q]])) for q in qs]}


def weights_of(label: str, spec: str, rows: list[dict]) -> str:
    """The weights hash of ``spec``; for an unshipped run's export that is gone (``scratch``), the
    one hash its rows were measured with (those rows stay valid: they name their weights)."""
    from licodec.errors import LicodecError

    try:
        return load(spec).weights_sha256
    except LicodecError:
        measured = {r["weights"] for r in rows if r["codec"] == label}
        if len(measured) != 1:
            raise
        print(f"{label}: {spec} is gone; using the rows of its weights {next(iter(measured))}")
        return measured.pop()


def cmd_report(args) -> None:
    from licodec.eval.bdrate import bd_psnr, bd_rate

    specs = codec_specs(args.scratch)
    rows = read_rows()
    weights = {label: weights_of(label, spec, rows) for label, spec in specs.items()}
    report = {"codecs": {label: {"spec": spec, "weights": weights[label]} for label, spec in specs.items()},
              "datasets": {}, "metric": "RGB PSNR on 8-bit decoded images, bpp from real bytes",
              "bd_method": "pchip"}
    for dataset, title in DATASETS.items():
        entry = {"title": title, "curves": {}, "bd_rate_percent": {}, "bd_psnr_db": {}}
        for label in specs:
            c = curves(rows, dataset, label, weights[label])
            if c:
                entry["curves"][label] = c
        for name, anchor, test in COMPARISONS:
            if anchor in entry["curves"] and test in entry["curves"]:
                a, b = entry["curves"][anchor], entry["curves"][test]
                entry["bd_rate_percent"][name] = bd_rate(a["bpp"], a["psnr"], b["bpp"], b["psnr"])
                entry["bd_psnr_db"][name] = bd_psnr(a["bpp"], a["psnr"], b["bpp"], b["psnr"])
        report["datasets"][dataset] = entry
    speed = OUT / "speed.json"
    if speed.is_file():
        report["speed"] = json.loads(speed.read_text())
    report["machine"] = machine()
    write_json(RESULTS / "feds.json", report)
    for dataset, entry in report["datasets"].items():
        print(f"\n{entry['title']}")
        for label, c in entry["curves"].items():
            pts = ", ".join(f"{b:.3f}/{p:.2f}" for b, p in zip(c["bpp"], c["psnr"]))
            print(f"  {label:<8} bpp/PSNR: {pts}")
        for name, v in entry["bd_rate_percent"].items():
            print(f"  BD-rate {name}: {v:+.2f}% (BD-PSNR {entry['bd_psnr_db'][name]:+.3f} dB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("rd", "speed", "report"):
        p = sub.add_parser(name)
        p.add_argument("--scratch", default="/work/runs/feds-student-scratch/export")
        if name == "rd":
            p.add_argument("--codecs", nargs="+", default=["core", "teacher", "student", "scratch"])
            p.add_argument("--datasets", nargs="+", default=list(DATASETS))
            p.add_argument("--qualities", nargs="+", type=float, default=[1.0, 3.0, 5.0, 8.0])
        if name == "speed":
            p.add_argument("--quality", type=float, default=4.0)
    args = parser.parse_args()
    {"rd": cmd_rd, "speed": cmd_speed, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()
