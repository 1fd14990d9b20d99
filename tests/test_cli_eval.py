"""``licodec eval``, ``bdrate``, ``plot`` and ``datasets`` through main(argv), bad input included."""

import json

import pytest
from PIL import Image

from conftest import random_image
from licodec.cli.main import main
from test_cli import run_fails

A = {"name": "anchor", "results": {"bpp": [0.1, 0.25, 0.5, 1.0], "psnr-rgb": [28.0, 31.0, 34.0, 37.5],
                                   "ms-ssim-rgb": [0.9, 0.95, 0.975, 0.99]}}


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


def _scaled(data, factor, name):
    return {"name": name, "results": {**data["results"], "bpp": [factor * b for b in data["results"]["bpp"]]}}


def test_bdrate_command(tmp_path, capsys):
    a = _write(tmp_path, "a.json", A)
    b = _write(tmp_path, "b.json", _scaled(A, 0.9, "better"))
    assert main(["bdrate", a, b]) == 0
    assert "better vs anchor (psnr-rgb, pchip): BD-rate -10.00 %" in capsys.readouterr().out
    assert main(["bdrate", a, b, "--metric", "ms-ssim", "--method", "akima"]) == 0
    assert "BD-rate -10.00 %" in capsys.readouterr().out


@pytest.mark.parametrize("content,match", [
    ("{not json", "not valid JSON"),
    ({"results": {"bpp": [0.1], "psnr-rgb": [30.0]}}, "at least 2 points"),
    ({"results": {"bpp": [0.1, 0.2, 0.3], "psnr-rgb": [30.0, 29.0, 31.0]}}, "not monotonic"),
    ({"results": {"bpp": [0.1, 0.2], "psnr-rgb": [30.0]}}, "has 1 values"),
    ({"results": {"bpp": [5.0, 6.0], "psnr-rgb": [50.0, 51.0]}}, "do not overlap"),
    ({"results": {"bpp": [0.1, 0.2]}}, "no 'psnr-rgb' values"),
    ({"name": "x"}, "not a results file"),
])
def test_bdrate_bad_input(tmp_path, capsys, content, match):
    a = _write(tmp_path, "a.json", A)
    run_fails(capsys, ["bdrate", a, _write(tmp_path, "b.json", content)], match)


def test_bdrate_unknown_metric_and_missing_file(tmp_path, capsys):
    a = _write(tmp_path, "a.json", A)
    run_fails(capsys, ["bdrate", a, a, "--metric", "vmaf"], "unknown metric")
    run_fails(capsys, ["bdrate", a, str(tmp_path / "none.json")], "no such file")


def test_plot_writes_figure_and_table(tmp_path, capsys, shared_data):
    a = _write(tmp_path, "a.json", A)
    b = _write(tmp_path, "b.json", _scaled(A, 0.8, "ours"))
    vtm = str(shared_data.parent / "reference/compressai-results/kodak/vtm.json")
    out = tmp_path / "rd.png"
    assert main(["plot", a, b, vtm, "-o", str(out), "--test", b]) == 0
    printed = capsys.readouterr().out
    assert Image.open(out).size[0] > 600
    table = (tmp_path / "rd.md").read_text()
    assert "| anchor | -20.0% | -20.0% |" in table and table in printed
    run_fails(capsys, ["plot", a, b, "-o", str(out)], "exists")
    assert main(["plot", a, b, "-o", str(out), "--force", "--metrics", "psnr"]) == 0


def test_plot_bad_input(tmp_path, capsys):
    a = _write(tmp_path, "a.json", A)
    run_fails(capsys, ["plot", a, "-o", str(tmp_path / "rd.gif")], ".png, .pdf or .svg")
    run_fails(capsys, ["plot", a, a, "-o", str(tmp_path / "rd.png"), "--anchor", "other.json"], "not among")
    run_fails(capsys, ["plot", a, "-o", str(tmp_path / "rd.png"), "--metrics", "lpips"], "no curve has")
    assert not (tmp_path / "rd.png").exists()


def test_eval_command_end_to_end(tmp_path, rng, capsys):
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(2):
        Image.fromarray(random_image(rng, 48, 64)).save(d / f"p{i}.png")
    out = tmp_path / "res"
    argv = ["eval", str(d), "-c", "hyperprior-vr", "jpeg420", "-q", "hyperprior-vr=1,4,8",
            "-q", "jpeg420=10,50,90", "-m", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "photos (2)" in printed and "BD-rate of licodec hyperprior-vr against each anchor" in printed
    data = json.loads((out / "hyperprior-vr.json").read_text())
    assert data["results"]["quality"] == [1.0, 4.0, 8.0] and len(data["results"]["bpp"]) == 3
    assert (out / "per_image.csv").read_text().count("\n") == 1 + 2 * 6
    assert main(argv) == 0  # resumes: nothing left to do, same files


@pytest.mark.parametrize("argv,match", [
    (["eval", "{empty}"], "no images"),
    (["eval", "{missing}"], "neither a known dataset"),
    (["eval", "{photos}", "-c", "nope"], "unknown codec"),
    (["eval", "{photos}", "-c", "jpeg420", "-q", "webp=10"], "not among the codecs"),
    (["eval", "{photos}", "-c", "jpeg420", "-m", "vmaf"], "unknown metric"),
    (["eval", "{photos}", "-c", "jpeg420", "-j", "0"], "--jobs"),
    (["eval", "kodak", "--root", "{missing}"], "not found"),
])
def test_eval_bad_input(tmp_path, rng, capsys, argv, match):
    (tmp_path / "empty").mkdir()
    (tmp_path / "photos").mkdir()
    Image.fromarray(random_image(rng, 16, 16)).save(tmp_path / "photos" / "a.png")
    paths = {"empty": tmp_path / "empty", "missing": tmp_path / "missing", "photos": tmp_path / "photos"}
    run_fails(capsys, [a.format(**paths) for a in argv] + ["--out", str(tmp_path / "o"), "--no-progress"], match)


def test_eval_bad_quality_spec_is_a_usage_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "-q", "jpeg420"]) == 2
    assert "CODEC=Q1,Q2" in capsys.readouterr().err


def test_datasets_list(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("kodak", "clic-pro-valid", "clic-pro-test", "tecnick"):
        assert out.count(f"{name}:") == 1
    run_fails(capsys, ["datasets", "download"], "which dataset")
    run_fails(capsys, ["datasets", "download", "imagenet"], "unknown dataset")


def _photos(tmp_path, rng, n=2):
    d = tmp_path / "photos"
    d.mkdir(exist_ok=True)
    for i in range(n):
        Image.fromarray(random_image(rng, 48, 64)).save(d / f"p{i}.png")
    return d


def test_eval_lpips_without_a_backbone_fails_before_any_work(tmp_path, rng, capsys):
    out = tmp_path / "res"
    run_fails(capsys, ["eval", str(_photos(tmp_path, rng)), "-c", "jpeg420", "-m", "lpips", "--out", str(out),
                       "--no-progress"], "alexnet-owt-7be5be79.pth")
    assert not (out / "per_image.csv").exists()


def test_eval_with_lpips_on_a_local_backbone(tmp_path, rng, capsys):
    """LPIPS plumbing through the runner with a random AlexNet saved as torchvision names it."""
    import torch

    from licodec._compat import patch_torchvision

    patch_torchvision()
    import torchvision

    torch.manual_seed(0)
    state = {k: v for k, v in torchvision.models.alexnet(weights=None).state_dict().items()
             if k.startswith("features.")}
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(state, weights / "alexnet-owt-7be5be79.pth")
    out = tmp_path / "res"
    assert main(["eval", str(_photos(tmp_path, rng)), "-c", "jpeg420", "-q", "jpeg420=5,95", "-m", "lpips",
                 "haarpsi", "--weights-dir", str(weights), "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "jpeg420.json").read_text())["results"]
    assert all(v > 0 for v in res["lpips"]) and res["haarpsi"][0] < res["haarpsi"][1] <= 1


def test_eval_takes_a_weights_folder_and_an_effort(tmp_path, capsys, rng):
    """``LABEL=DIR`` evaluates weights in a folder (a training run's export) under LABEL;
    ``NAME:eN`` encodes at effort N; both decode with the weights they were written with."""
    from licodec.zoo import create_model, export_weights

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    weights = export_weights(create_model("hyperprior-vr", pretrained=False), "hyperprior-vr", tmp_path / "w")
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(random_image(rng, 64, 80)).save(folder / "a.png")
    out = tmp_path / "rd"
    assert main(["eval", str(folder), "-c", f"mine={weights}", "hyperprior-vr:e1", "-q", "mine=2,6",
                 "-q", "hyperprior-vr:e1=2,6", "-m", "--out", str(out), "--no-progress"]) == 0
    assert (out / "mine.json").is_file() and (out / "hyperprior-vr:e1.json").is_file()
    curve = json.loads((out / "mine.json").read_text())
    assert "(mine)" in curve["name"] and len(curve["results"]["bpp"]) == 2
    rows = (out / "per_image.csv").read_text()
    assert "effort 1" in rows
    run_fails(capsys, ["eval", str(folder), "-c", "bad/label=" + str(weights), "--out", str(out)], "label")
    run_fails(capsys, ["eval", str(folder), "-c", f"x={tmp_path / 'none'}", "--out", str(out)], "not a weights folder")
    run_fails(capsys, ["eval", str(folder), "-c", "jpeg420:e2", "--out", str(out)], "effort")
