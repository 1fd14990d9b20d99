"""The metric registry is the single source of names, keys, directions, units and minimum
sizes for ``eval -m``, ``bdrate --metric``, ``plot`` and the results files."""

import importlib
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import random_image
from licodec.cli.main import main
from licodec.errors import LicodecError
from licodec.eval import metric_registry as R
from licodec.eval import results, runner
from test_cli import run_fails

NEW = ("ssimulacra2", "cvvdp", "nlpd", "vif", "swd")
NEEDS_WEIGHTS = ("lpips", "lpips-vgg", "dists")  # ImageNet backbones: tested in test_perceptual.py


def test_table_is_consistent():
    specs = list(R.METRICS.values())
    assert set(NEW) <= set(R.names(selectable=True))
    assert [s.name for s in specs if s.always] == ["psnr", "psnr-y"]
    assert len({s.key for s in specs}) == len(specs)
    directions = {s.name: s.higher_is_better for s in specs}
    assert directions == {"psnr": True, "psnr-y": True, "ms-ssim": True, "haarpsi": True, "lpips": False,
                          "lpips-vgg": False, "dists": False, "ssimulacra2": True, "cvvdp": True, "nlpd": False,
                          "vif": True, "swd": False}
    assert R.get("cvvdp").unit == "JOD" and R.get("ms-ssim").in_db and R.get("psnr").unit == "dB"
    for alias, name in (("MS_SSIM", "ms-ssim"), ("ms-ssim-rgb", "ms-ssim"), ("psnr-rgb", "psnr"), ("VIFp", "vif"),
                        ("lpips-alex", "lpips"), (" SSIMULACRA2 ", "ssimulacra2")):
        assert R.get(alias).name == name
    with pytest.raises(LicodecError, match="unknown metric 'vmaf'; valid: psnr, psnr-y, ms-ssim"):
        R.get("vmaf")
    with pytest.raises(LicodecError, match="PSNR is always measured"):
        R.get("psnr", selectable=True)
    assert R.axis_label("nlpd") == "NLPD (lower is better)" and R.axis_label("cvvdp") == "ColorVideoVDP [JOD]"
    assert R.axis_label("ms-ssim-rgb") == "MS-SSIM [dB]" and R.axis_label("other") == "other"
    for spec in specs:  # every builder resolves (LPIPS/DISTS are only built with their weights)
        module, _, attr = spec.builder.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), spec.name
    assert R.build("psnr")(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8)) == float("inf")


def test_results_and_runner_read_the_registry():
    for spec in R.METRICS.values():
        assert results.metric_key(spec.name) == spec.key
        assert results.lower_is_better(spec.key) == (not spec.higher_is_better)
    assert results.to_db("ms-ssim-rgb", [0.9, 1.0]) == [pytest.approx(10.0), float("inf")]
    assert results.to_db("nlpd", [0.9]) == [0.9] and results.to_db("unknown", [0.5]) == [0.5]
    cols = runner.columns_for(("ssimulacra2", "ms-ssim", "swd"))
    assert cols[-5:] == ["ssimulacra2", "ms-ssim-rgb", "swd", "encoding_time", "decoding_time"]


@pytest.mark.parametrize("name", [n for n in R.names(selectable=True) if n not in NEEDS_WEIGHTS])
def test_every_metric_follows_its_registry_entry(name):
    """Identity is the best value, noise makes it worse in the registry's direction, and
    images below min_side are refused with a one-line LicodecError."""
    spec = R.get(name)
    metric = R.build(name)
    img = random_image(np.random.default_rng(3), 192, 192)
    dist = np.clip(img + np.random.default_rng(4).normal(0, 12, img.shape), 0, 255).round().astype(np.uint8)
    best, worse = metric(img, img), metric(img, dist)
    assert isinstance(worse, float)
    assert (worse < best) if spec.higher_is_better else (worse > best)
    small = img[: spec.min_side - 1, : spec.min_side + 3]
    with pytest.raises(LicodecError, match="px") as err:
        metric(small, small)
    assert "\n" not in str(err.value)
    edge = img[: spec.min_side, : spec.min_side]
    assert np.isfinite(metric(edge, edge))


# --------------------------------------------------------------------------- CLI


def _help(capsys, argv):
    assert main(argv) == 0
    return " ".join(capsys.readouterr().out.split())


def test_cli_choices_come_from_the_registry(capsys):
    eval_help = _help(capsys, ["eval", "--help"])
    bdrate_help = _help(capsys, ["bdrate", "--help"])
    plot_help = _help(capsys, ["plot", "--help"])
    for name in R.names(selectable=True):
        assert name in eval_help
    for name in R.names():
        assert name in bdrate_help and name in plot_help
    assert "nlpd (lower is better)" in bdrate_help and "cvvdp (JOD)" in eval_help


def _curve(name, bpp, values):
    return {"name": name, "results": {"bpp": bpp, **values}}


def _monotone(spec, improving):
    """Four values of ``spec``'s metric that get better with rate (in its own direction)."""
    base = {"dB": [28.0, 31.0, 34.0, 37.5], "JOD": [6.0, 7.5, 8.5, 9.2], "score": [30.0, 50.0, 70.0, 85.0]}
    if spec.in_db:
        return [0.9, 0.95, 0.975, 0.99]
    values = base.get(spec.unit, [0.5, 0.6, 0.7, 0.8])
    return values if spec.higher_is_better == improving else [1 - v if v < 1 else 100 - v for v in values]


def test_bdrate_direction_for_every_metric(tmp_path, capsys):
    """A curve needing 10 % fewer bits for the same values has BD-rate -10 % whatever the
    metric's direction; BD-quality is in the metric's own direction."""
    bpp = [0.1, 0.25, 0.5, 1.0]
    values = {spec.key: _monotone(spec, True) for spec in R.METRICS.values()}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_curve("anchor", bpp, values)))
    b.write_text(json.dumps(_curve("better", [0.9 * x for x in bpp], values)))
    for spec in R.METRICS.values():
        assert main(["bdrate", str(a), str(b), "--metric", spec.name]) == 0
        out = capsys.readouterr().out
        assert "BD-rate -10.00 %" in out, (spec.name, out)
        quality = float(out.split(f"BD-{spec.key} ")[1].split()[0])
        assert (quality > 0) if spec.higher_is_better else (quality < 0), (spec.name, out)
        assert ("lower is better" in out) == (not spec.higher_is_better)
    # a lower-is-better metric given as if higher were better is not monotonic: refused
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_curve("bad", bpp, {"nlpd": [0.1, 0.2, 0.3, 0.4]})))
    run_fails(capsys, ["bdrate", str(bad), str(bad), "--metric", "nlpd"], "not monotonic")


def test_eval_bdrate_and_plot_with_the_new_metrics(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(5)
    for i in range(2):
        Image.fromarray(random_image(rng, 48, 64)).save(photos / f"p{i}.png")
    out = tmp_path / "res"
    argv = ["eval", str(photos), "-c", "jpeg420", "jpeg444", "-q", "jpeg420=5,40,95", "-q", "jpeg444=5,40,95",
            "-m", *NEW, "HaarPSI", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    header = (out / "per_image.csv").read_text().splitlines()[0].split(",")
    assert header[10:-2] == list(NEW) + ["haarpsi"]
    res = json.loads((out / "jpeg420.json").read_text())["results"]
    for name in NEW:
        low, high = res[name][0], res[name][-1]
        assert (high > low) if R.get(name).higher_is_better else (high < low), (name, res[name])
    fig = tmp_path / "rd.png"
    assert main(["plot", str(out / "jpeg420.json"), str(out / "jpeg444.json"), "-o", str(fig),
                 "--metrics", "psnr", *NEW]) == 0
    table = (tmp_path / "rd.md").read_text()
    assert "BD-rate (SSIMULACRA 2)" in table and "BD-rate (SWD)" in table
    assert Image.open(fig).size[0] > 6 * 600
    run_fails(capsys, ["eval", str(photos), "-c", "jpeg420", "-m", "psnr", "--out", str(out)], "always measured")


# --------------------------------------------------------------------------- no torch

NO_TORCH = r"""
import importlib.abc, importlib.util, json, sys, types
from pathlib import Path

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Block())
import licodec  # the package itself: the codec API (and torch) load only on first use
import licodec.eval.metric_registry as R
from licodec.cli.main import main
a, b = sys.argv[2], sys.argv[3]
codes = [main(["bdrate", a, b, "--metric", name]) for name in R.names()]
codes.append(main(["plot", a, b, "-o", str(Path(a).with_name("rd.png")), "--metrics", "psnr", *R.names()]))
from licodec.eval.report import bd_table
from licodec.eval.results import load_curve
table = bd_table([load_curve(a), load_curve(b)], [s.key for s in R.METRICS.values()])
print(json.dumps({"codes": codes, "rows": table.count("-10.0%"),
                  "torch": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))}))
"""


def test_bdrate_and_tables_import_no_torch(tmp_path):
    """``import licodec``, bdrate, plot and BD tables (CLI included) for every registry metric,
    with torch blocked."""
    from conftest import REPO

    bpp = [0.1, 0.25, 0.5, 1.0]
    values = {spec.key: _monotone(spec, True) for spec in R.METRICS.values()}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_curve("anchor", bpp, values)))
    b.write_text(json.dumps(_curve("better", [0.9 * x for x in bpp], values)))
    res = subprocess.run([sys.executable, "-c", NO_TORCH, str(REPO), str(a), str(b)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"codes": [0] * (len(R.METRICS) + 1), "rows": len(R.METRICS), "torch": []}
    assert (tmp_path / "rd.png").is_file()
