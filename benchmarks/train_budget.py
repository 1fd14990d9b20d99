"""Training recipes compared per CPU-hour: equal wall-clock budgets, trained side by side, RD on real bytes.

Each ``--arm LABEL "TRAIN ARGS"`` is a ``licodec train`` run with those extra arguments
(``--init``, ``--model``, ``--lr``, ``--no-bf16``, ``--crop``/``--batch``, ...). All arms train
at the same time, each with ``--threads`` torch threads, for ``--minutes`` of wall time
(``licodec train --max-minutes``), so they share the machine equally. Then, in the same run:

* ``licodec eval`` of every arm's exported weights and of JPEG 4:2:0 and WebP on Kodak
  (real bytes, PSNR-RGB), BD-rates (pchip) against both anchors and against the first arm;
* the unquantized autoencoder's PSNR at the top quality (``g_s(g_a(x))`` without rounding),
  the ceiling that the transforms put on the RD curve;
* training throughput (steps, steps per second).

Run folders live under ``--runs`` (outside the work tree); rerunning the same command
resumes: finished arms are not retrained, evaluated images are not re-evaluated.
The JSON goes to ``benchmarks/results/train_budget/NAME.json``.

    python benchmarks/train_budget.py ab1-precision --minutes 25 \\
        --arm bf16 "--init hyperprior-vr" --arm fp32 "--init hyperprior-vr --no-bf16"
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = HERE / "results" / "train_budget"


def launch(label: str, extra: str, run_dir: Path, minutes: float, threads: int, data: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "licodec", "train", "--data", str(data), "--out", str(run_dir),
           "--steps", "1000000", "--checkpoint-every", "250", "--max-minutes", str(minutes), *shlex.split(extra)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    log = open(run_dir.parent / f"{label}.out", "a")
    print(f"[{label}] {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def throughput(run_dir: Path) -> dict:
    lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    last = lines[-1]
    return {"steps": last["step"], "wall_s": last["wall"], "steps_per_s": last["step"] / last["wall"],
            "train_psnr_last": last["psnr"], "train_bpp_last": last["bpp"]}


def unquantized_psnr(weights_dir: Path, images: list[Path], quality: float) -> float:
    """Mean PSNR-RGB of ``g_s(g_a(x))`` without rounding at ``quality`` (the transforms' ceiling)."""
    import numpy as np
    import torch
    from PIL import Image

    from licodec.codec.base import crop, pad_to_multiple
    from licodec.zoo import create_model
    from licodec.zoo.registry import read_weights_config

    model = create_model(read_weights_config(weights_dir)["codec"], weights_dir=weights_dir).eval()
    values = []
    with torch.no_grad():
        gain, inv_gain = model._gains(torch.tensor([quality]))
        for path in images:
            x = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
            padded, size = pad_to_multiple(x, model.stride)
            x_hat = crop(model.g_s(model.g_a(padded) * gain * inv_gain), size).clamp(0, 1)
            x_hat = (x_hat * 255).round() / 255
            values.append(10 * math.log10(1 / float((x_hat - x).pow(2).mean())))
    return float(np.mean(values))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("name", help="comparison name (results file and run folder)")
    p.add_argument("--arm", nargs=2, action="append", metavar=("LABEL", "TRAIN_ARGS"), required=True)
    p.add_argument("--minutes", type=float, default=25.0, help="wall-clock budget of every arm")
    p.add_argument("--threads", type=int, default=0, help="torch threads per arm (default: cores / arms)")
    p.add_argument("--runs", default="/work/runs/budget", help="run folders (outside the work tree)")
    p.add_argument("--data", default=str(DATA / "train"))
    p.add_argument("--kodak", default=str(DATA / "kodak"))
    p.add_argument("--qualities", default="1,2,4,6,8", help="licodec qualities evaluated")
    p.add_argument("--jobs", type=int, default=2, help="evaluation processes")
    args = p.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from licodec.eval.bdrate import bd_psnr, bd_rate
    from licodec.eval.datasets import load_dataset
    from licodec.eval.results import load_curve
    from licodec.eval.runner import evaluate

    base = Path(args.runs) / args.name
    base.mkdir(parents=True, exist_ok=True)
    threads = args.threads or max(1, (os.cpu_count() or 1) // len(args.arm))
    t0 = time.time()
    procs = {}
    for label, extra in args.arm:
        run_dir = base / label
        run_dir.mkdir(exist_ok=True)
        procs[label] = launch(label, extra, run_dir, args.minutes, threads, Path(args.data))
    failed = [label for label, proc in procs.items() if proc.wait() != 0]
    if failed:
        print(f"arms failed: {failed}; see {base}/<label>.out", file=sys.stderr)
        return 1
    train_wall = time.time() - t0

    qualities = tuple(float(q) for q in args.qualities.split(","))
    dataset = load_dataset("kodak", args.kodak)
    codecs = [f"{label}={base / label / 'export'}" for label, _ in args.arm] + ["jpeg420", "webp"]
    curves_dir = base / "eval-kodak"
    written = evaluate(dataset, codecs, curves_dir, {label: qualities for label, _ in args.arm}, metrics=(),
                       jobs=args.jobs, progress=False)
    curves = {name: load_curve(path) for name, path in written.items()}

    def bd(test: str, anchor: str) -> dict:
        a, t = curves[anchor], curves[test]
        return {"bd_rate_pct": round(bd_rate(a.bpp, a.results["psnr-rgb"], t.bpp, t.results["psnr-rgb"]), 2),
                "bd_psnr_db": round(bd_psnr(a.bpp, a.results["psnr-rgb"], t.bpp, t.results["psnr-rgb"]), 3)}

    first = args.arm[0][0]
    top = max(qualities)
    arms = {}
    for label, extra in args.arm:
        run_dir = base / label
        arms[label] = {
            "train_args": extra,
            **throughput(run_dir),
            "kodak": {"bpp": [round(b, 4) for b in curves[label].bpp],
                      "psnr_rgb": [round(v, 3) for v in curves[label].results["psnr-rgb"]],
                      "qualities": list(qualities)},
            "vs_jpeg420": bd(label, "jpeg420"),
            "vs_webp": bd(label, "webp"),
            **({"vs_" + first: bd(label, first)} if label != first else {}),
            f"unquantized_psnr_q{top:g}": round(unquantized_psnr(run_dir / "export", dataset.paths, top), 3),
        }
    result = {
        "name": args.name,
        "command": "python benchmarks/train_budget.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "minutes_per_arm": args.minutes,
        "threads_per_arm": threads,
        "train_wall_s": round(train_wall, 1),
        "dataset": dataset.label,
        "metric": "PSNR-RGB on real bytes; BD-rate pchip in the log-rate domain",
        "arms": arms,
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for label, r in arms.items():
        print(f"{label:>12}: {r['steps']} steps ({r['steps_per_s']:.2f}/s)  vs JPEG {r['vs_jpeg420']['bd_rate_pct']:+.1f}%  "
              f"vs WebP {r['vs_webp']['bd_rate_pct']:+.1f}%  "
              + (f"vs {first} {r['vs_' + first]['bd_rate_pct']:+.1f}%  " if label != first else "")
              + f"unquantized q{top:g} {r[f'unquantized_psnr_q{top:g}']:.2f} dB")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
