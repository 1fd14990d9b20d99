"""Training: a few real steps, resume from the checkpoint, export loadable weights."""

import json

import torch
from PIL import Image

from conftest import random_image
from licodec.cli.main import main
from licodec.train.trainer import TrainConfig, learning_rate
from licodec.zoo import create_model


def test_train_resume_export(tmp_path, rng):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray(random_image(rng, 80, 96)).save(data / f"{i}.png")
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


def test_train_rejects_a_folder_without_images(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run"), "--steps", "1"])
    assert code != 0 and "no images" in capsys.readouterr().err


def test_learning_rate_schedule():
    cfg = TrainConfig(data="", out="", steps=1000, lr=1e-4, warmup=100)
    assert learning_rate(cfg, 0) < learning_rate(cfg, 99) == 1e-4
    assert learning_rate(cfg, 500) == 1e-4
    assert learning_rate(cfg, 999) < 2e-5
