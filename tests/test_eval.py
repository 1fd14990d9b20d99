"""Evaluation suite: datasets, classic anchors, results files, the RD runner (resume included)."""

import csv
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import random_image
from licodec.errors import LicodecError
from licodec.eval import runner
from licodec.eval.anchors import ANCHORS
from licodec.eval.datasets import download_dataset, load_dataset
from licodec.eval.results import curve_from_dict, load_curve


def _folder(tmp_path, rng, n=2, size=(64, 96), name="imgs"):
    d = tmp_path / name
    (d / "sub").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(random_image(rng, *size)).save(d / ("sub" if i % 2 else "") / f"im{i}.png")
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.png").write_bytes(b"")
    return d


# ------------------------------------------------------------------ datasets
def test_any_folder_is_a_dataset(tmp_path, rng):
    ds = load_dataset(_folder(tmp_path, rng, n=3))
    assert [p.name for p in ds.paths] == ["im0.png", "im2.png", "im1.png"]  # sorted by path, recursive
    assert ds.label == "imgs (3)"


def test_named_dataset_is_labelled_by_what_it_holds(shared_data):
    assert load_dataset("kodak", shared_data / "kodak").label == "Kodak (24)"
    assert load_dataset("kodak", shared_data / "kodak", limit=3).label == "Kodak (3 of 24 images)"
    # the shared CLIC images mix splits: evaluated as a plain folder, named by what they are
    assert load_dataset(shared_data / "clic").label == "clic (8)"


@pytest.mark.parametrize("make,match", [
    (lambda p: p / "missing", "neither a known dataset"),
    (lambda p: p, "no images"),
])
def test_bad_folders_are_refused(tmp_path, make, match):
    with pytest.raises(LicodecError, match=match):
        load_dataset(make(tmp_path))


def test_named_dataset_not_present(tmp_path):
    with pytest.raises(LicodecError, match="licodec datasets download kodak"):
        load_dataset("kodak", tmp_path / "nowhere")


def test_download_from_file_urls(tmp_path, rng):
    """The real download path (fetch, unpack, move into place), fed by file:// URLs."""
    src = _folder(tmp_path, rng, n=2)
    archive = tmp_path / "professional_valid_2020.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(src.rglob("*.png")):
            z.write(p, f"valid/{p.name}")
    ds = download_dataset("clic-pro-valid", tmp_path / "clic", urls=(archive.as_uri(),))
    assert ds.label == "CLIC 2020 professional validation (2 of 41 images)"  # .hidden.png is skipped
    with pytest.raises(LicodecError, match="not empty"):
        download_dataset("clic-pro-valid", tmp_path / "clic", urls=(archive.as_uri(),))
    single = download_dataset("kodak", tmp_path / "kodak", urls=((src / "im0.png").as_uri(),))
    assert single.label == "Kodak (1 of 24 images)"
    with pytest.raises(LicodecError, match="download of"):
        download_dataset("kodak", tmp_path / "k2", urls=((tmp_path / "absent.png").as_uri(),))
    assert not (tmp_path / "k2").exists()  # nothing half-written


# ------------------------------------------------------------------ classic anchors
@pytest.mark.parametrize("name", sorted(ANCHORS))
def test_anchor_sweep_trades_bytes_for_quality(name, rng):
    from licodec.eval.metrics import psnr

    anchor = ANCHORS[name]
    if not anchor.available():
        pytest.skip(f"Pillow lacks {anchor.pil_feature}")
    rgb = random_image(rng, 48, 64)
    lo, hi = anchor.qualities[0], anchor.qualities[-1]
    small, big = anchor.encode(rgb, lo), anchor.encode(rgb, hi)
    assert len(small) < len(big)
    a, b = anchor.decode(small), anchor.decode(big)
    assert a.shape == b.shape == rgb.shape
    assert psnr(rgb, a) < psnr(rgb, b)


# ------------------------------------------------------------------ results files
PUBLISHED_KODAK = "reference/compressai-results/kodak/vtm.json"


def test_published_compressai_results_load(shared_data):
    curve = load_curve(shared_data.parent / PUBLISHED_KODAK)
    assert curve.has("psnr-rgb") and len(curve.bpp) == len(curve.results["psnr-rgb"]) > 3


@pytest.mark.parametrize("data,match", [
    ([1, 2], "not a results file"),
    ({"results": {"psnr-rgb": [30.0]}}, "no 'bpp'"),
    ({"results": {"bpp": [0.1, 0.2], "psnr-rgb": [30.0]}}, "has 1 values"),
    ({"results": {"bpp": []}}, "empty"),
    ({"results": {"bpp": [0.1, "x"]}}, "non-numeric"),
    ({"results": {"bpp": [0.1, -0.2]}}, "positive"),
])
def test_malformed_results_are_refused(data, match):
    with pytest.raises(LicodecError, match=match):
        curve_from_dict(data, "f.json")


# ------------------------------------------------------------------ runner
SWEEP = {"hyperprior-vr": (1.0, 8.0), "jpeg420": (10.0, 90.0)}


def _rows(out):
    with open(out / runner.CSV_NAME) as f:
        return list(csv.DictReader(f))


def test_runner_writes_compressai_json_and_csv(tmp_path, rng):
    ds = load_dataset(_folder(tmp_path, rng, n=2))
    written = runner.evaluate(ds, ["hyperprior-vr", "jpeg420"], tmp_path / "out", SWEEP, metrics=(),
                              progress=False)
    rows = _rows(tmp_path / "out")
    assert len(rows) == 2 * 2 * 2
    for name, path in written.items():
        data = json.loads(path.read_text())
        res = data["results"]
        assert data["dataset"] == "imgs (2)" and data["codec"] == name
        assert res["quality"] == list(SWEEP[name])
        for i, q in enumerate(SWEEP[name]):
            mine = [r for r in rows if r["codec"] == name and float(r["quality"]) == q]
            assert res["bpp"][i] == pytest.approx(np.mean([float(r["bpp"]) for r in mine]))
            assert res["psnr-rgb"][i] == pytest.approx(np.mean([float(r["psnr-rgb"]) for r in mine]))
        assert res["bpp"][0] < res["bpp"][1] and res["psnr-rgb"][0] < res["psnr-rgb"][1]
        assert load_curve(path).name in ("licodec hyperprior-vr", "JPEG 4:2:0")
    # bpp is the real file size
    r = rows[0]
    assert float(r["bpp"]) == pytest.approx(8 * int(r["bytes"]) / (int(r["width"]) * int(r["height"])))


def test_runner_resumes_and_drops_a_cut_line(tmp_path, rng, monkeypatch):
    ds = load_dataset(_folder(tmp_path, rng, n=2))
    out = tmp_path / "out"
    runner.evaluate(ds, ["jpeg420"], out, SWEEP, metrics=(), progress=False)
    csv_path = out / runner.CSV_NAME
    complete = csv_path.read_text()
    lines = complete.splitlines(keepends=True)
    csv_path.write_text("".join(lines[:-2]) + lines[-2][:10])  # interrupted mid-row
    calls = []
    real = runner.run_unit
    monkeypatch.setattr(runner, "run_unit", lambda u, m, w: calls.append(u) or real(u, m, w))
    runner.evaluate(ds, ["jpeg420"], out, SWEEP, metrics=(), progress=False)
    assert len(calls) == 1 and len(calls[0].qualities) == 2  # only the unfinished image runs again
    assert len(_rows(out)) == 4
    calls.clear()
    runner.evaluate(ds, ["jpeg420"], out, SWEEP, metrics=(), progress=False)
    assert calls == []  # nothing left to do


def test_runner_refuses_other_columns_and_ignores_other_versions(tmp_path, rng, monkeypatch):
    ds = load_dataset(_folder(tmp_path, rng, n=1))
    out = tmp_path / "out"
    runner.evaluate(ds, ["jpeg420"], out, SWEEP, metrics=(), progress=False)
    with pytest.raises(LicodecError, match="other columns"):
        runner.evaluate(ds, ["jpeg420"], out, SWEEP, metrics=("ms-ssim",), progress=False)
    monkeypatch.setattr(runner.EvalCodec, "version", lambda self: "another encoder")
    runner.evaluate(ds, ["jpeg420"], out, SWEEP, metrics=(), progress=False)
    assert {r["version"] for r in _rows(out)} == {"another encoder", ANCHORS["jpeg420"].version()}


@pytest.mark.parametrize("codecs,qualities,metrics,match", [
    (["nope"], None, (), "unknown codec"),
    (["hyperprior-vr"], {"hyperprior-vr": (0.5,)}, (), "quality must be between"),
    (["jpeg420"], {"jpeg420": (0,)}, (), "quality must be from 1 to 100"),
    (["webp"], {"webp": (-1,)}, (), "quality must be from 0 to 100"),
    (["jpeg420"], None, ("psnr-hvs",), "unknown metric"),
    (["jpeg420", "jpeg420"], None, (), "named twice"),
])
def test_runner_bad_requests(tmp_path, rng, codecs, qualities, metrics, match):
    ds = load_dataset(_folder(tmp_path, rng, n=1))
    with pytest.raises(LicodecError, match=match):
        runner.evaluate(ds, codecs, tmp_path / "out", qualities, metrics=metrics, progress=False)


def test_classic_codecs_reach_their_lowest_setting(rng):
    """Each anchor accepts the setting that gives its smallest files (WebP and AVIF quality 0)."""
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for anchor in ANCHORS.values():
        if not anchor.available():
            continue
        anchor.check_quality(anchor.lowest)
        sizes = [len(anchor.encode(rgb, q)) for q in (anchor.lowest, anchor.qualities[-1])]
        assert sizes[0] < sizes[1], anchor.name


def test_runner_names_a_broken_image(tmp_path, rng):
    d = _folder(tmp_path, rng, n=1)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(LicodecError, match="broken.png"):
        runner.evaluate(load_dataset(d), ["jpeg420"], tmp_path / "out", SWEEP, metrics=(), progress=False)


def test_runner_in_parallel_processes_matches_serial(tmp_path, rng):
    ds = load_dataset(_folder(tmp_path, rng, n=4))
    one = runner.evaluate(ds, ["jpeg420", "hyperprior-vr"], tmp_path / "a", SWEEP, metrics=(), progress=False)
    two = runner.evaluate(ds, ["jpeg420", "hyperprior-vr"], tmp_path / "b", SWEEP, metrics=(), jobs=2,
                          progress=False)
    for name in one:
        a, b = (json.loads(p[name].read_text())["results"] for p in (one, two))
        assert a["bpp"] == b["bpp"]  # the bytes are identical
        # workers run 1 torch thread, the serial run 2: licodec's synthesis output may round
        # a few pixels differently (seen: 1e-5 dB on 64x96 images), JPEG's never
        assert a["psnr-rgb"] == pytest.approx(b["psnr-rgb"], abs=1e-3)
