"""Training: a few real steps, resume from the checkpoint, export loadable weights."""

import json

import pytest
import torch
from PIL import Image

from conftest import random_image
from licodec.cli.main import main
from licodec.train.trainer import TrainConfig, learning_rate
from licodec.zoo import create_model


def _photos(folder, rng, n: int):
    """``n`` random 96x80 PNGs in ``folder`` (created)."""
    folder.mkdir()
    for i in range(n):
        Image.fromarray(random_image(rng, 80, 96)).save(folder / f"{i}.png")
    return folder


def test_train_resume_export(tmp_path, rng):
    data = _photos(tmp_path / "data", rng, 3)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--crop", "64", "--batch", "2", "--checkpoint-every", "2"]
    assert main(args + ["--steps", "2"]) == 0
    first = torch.load(run / "checkpoint.pt", weights_only=False)
    assert first["step"] == 2
    assert main(args + ["--steps", "4"]) == 0  # resumes at step 2
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 4
    meta = json.loads((run / "export" / "config.json").read_text())
    assert meta["training"]["steps"] == 4 and meta["training"]["command"].startswith("licodec train")
    codec = create_model("hyperprior-vr", weights_dir=run / "export")
    x = torch.rand(1, 3, 20, 30)
    assert codec.decompress(codec.compress(x, 2.0)).shape == x.shape


def test_entropy_lr_mult_trains_the_hyper_densities_faster(tmp_path, rng):
    """With --entropy-lr-mult 10 the z densities form their own Adam group at 10x the lr; the
    optimizer state resumes, and the recorded command repeats the option."""
    data = _photos(tmp_path / "data", rng, 2)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--crop", "64", "--batch", "2", "--entropy-lr-mult", "10"]
    assert main(args + ["--steps", "1"]) == 0
    assert main(args + ["--steps", "2"]) == 0
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    groups = ckpt["opt"]["param_groups"]
    assert [g["lr_mult"] for g in groups] == [1.0, 10.0] and groups[1]["lr"] == pytest.approx(10 * groups[0]["lr"])
    names = [n for n, p in create_model("hyperprior-vr", pretrained=False).named_parameters()
             if ".z_model." in n and not n.endswith("quantiles")]
    assert len(groups[1]["params"]) == len(names) > 0
    assert "--entropy-lr-mult 10.0" in json.loads((run / "export" / "config.json").read_text())["training"]["command"]


def test_train_rejects_a_folder_without_images(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run"), "--steps", "1"])
    assert code != 0 and "no images" in capsys.readouterr().err


def test_learning_rate_schedule():
    cfg = TrainConfig(data="", out="", steps=1000, lr=1e-4, warmup=100)
    assert learning_rate(cfg, 0) < learning_rate(cfg, 99) == 1e-4
    assert learning_rate(cfg, 500) == 1e-4
    assert learning_rate(cfg, 999) < 2e-5


def test_learning_rate_decays_over_a_time_budget():
    """With --max-minutes the cosine decay runs over the last 30% of the budget's wall time."""
    cfg = TrainConfig(data="", out="", steps=10**6, lr=2e-4, warmup=10, max_minutes=10)
    assert learning_rate(cfg, 500, wall=6.9 * 60) == 2e-4
    assert learning_rate(cfg, 500, wall=8.5 * 60) < 2e-4
    assert learning_rate(cfg, 500, wall=10 * 60) == 2e-4 * 0.05


def test_time_budget_stops_checkpoints_and_exports_a_context_model(tmp_path, rng):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(random_image(rng, 80, 96)).save(data / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "--model", "hyperprior-ctx", "--data", str(data), "--out", str(run), "--crop", "64",
                 "--batch", "2", "--steps", "1000", "--max-minutes", "0.0001", "--no-bf16"]) == 0
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    assert 0 <= ckpt["step"] < 1000
    meta = json.loads((run / "export" / "config.json").read_text())
    assert "--max-minutes 0.0001" in meta["training"]["command"]
    codec = create_model("hyperprior-ctx", weights_dir=run / "export")
    x = torch.rand(1, 3, 40, 70)
    assert codec.decompress(codec.compress(x, 5.0)).shape == x.shape


@pytest.mark.parametrize("native, flags, expected", [(False, [], False), (True, [], True),
                                                     (False, ["--bf16"], True), (True, ["--no-bf16"], False)])
def test_bf16_follows_the_cpu_unless_asked(tmp_path, rng, monkeypatch, native, flags, expected):
    """Without a flag, bf16 autocast is on only where the CPU computes bf16 natively."""
    import licodec.cpu
    import licodec.train.trainer as trainer

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(random_image(rng, 64, 64)).save(data / "0.png")
    monkeypatch.setattr(licodec.cpu, "native_bf16", lambda: native)
    seen = {}
    monkeypatch.setattr(trainer, "train", lambda cfg, resume=True: seen.setdefault("bf16", cfg.bf16))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *flags]) == 0
    assert seen["bf16"] is expected
