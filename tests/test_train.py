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


def test_export_records_the_training_threads_not_the_exporters(tmp_path, rng):
    """A run exported later by another process (licodec export) records the threads it trained
    with: CPU-hours in TRAINING.md come from them."""
    data = _photos(tmp_path / "data", rng, 2)
    run = tmp_path / "run"
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main(["train", "--data", str(data), "--out", str(run), "--crop", "64", "--batch", "2", "--steps", "1"]) == 0
        torch.set_num_threads(2)
        assert main(["export", str(run), "-o", str(tmp_path / "later")]) == 0
    finally:
        torch.set_num_threads(before)
    assert json.loads((tmp_path / "later" / "config.json").read_text())["training"]["threads"] == 1


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


def test_ema_exports_the_weight_average_and_keep_every_keeps_checkpoints(tmp_path, rng, capsys):
    """--ema exports the moving average (the recurrence, checked here by hand from kept
    checkpoints), --raw the trained weights; --keep-every keeps every N-th step's checkpoint for
    export --step; a resumed run keeps its average; a missing step is a clear error."""
    from safetensors.torch import load_file

    data = _photos(tmp_path / "data", rng, 2)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--crop", "64", "--batch", "2", "--no-bf16",
            "--checkpoint-every", "1", "--keep-every", "1", "--ema", "0.5", "--lr", "0.01", "--seed", "3"]
    assert main(args + ["--steps", "2"]) == 0
    assert main(args + ["--steps", "3"]) == 0  # resumes at step 2 with its average
    kept = {s: torch.load(run / f"checkpoint_step{s}.pt", weights_only=False) for s in (1, 2, 3)}
    name = next(n for n in kept[3]["ema"]["average"] if n.endswith(".weight"))
    # step k (from 0) keeps min(0.5, (1 + k) / (10 + k)) of the average: 0.1, 0.18, 0.25 (the third step), ... 0.5
    before, weights = kept[2]["ema"]["average"][name], kept[3]["model"][name].float()
    assert (weights - before).abs().max() > 1e-5  # the step moved the weights (lr still warming up)
    assert torch.allclose(kept[3]["ema"]["average"][name], 0.25 * before + 0.75 * weights, rtol=0, atol=1e-7)
    assert main(["export", str(run), "-o", str(tmp_path / "avg")]) == 0
    assert main(["export", str(run), "-o", str(tmp_path / "raw"), "--raw"]) == 0
    assert main(["export", str(run), "-o", str(tmp_path / "s1"), "--step", "1", "--raw"]) == 0
    assert torch.equal(load_file(tmp_path / "avg" / "model.safetensors")[name], kept[3]["ema"]["average"][name])
    assert torch.equal(load_file(tmp_path / "raw" / "model.safetensors")[name], kept[3]["model"][name])
    assert torch.equal(load_file(tmp_path / "s1" / "model.safetensors")[name], kept[1]["model"][name])
    meta = json.loads((tmp_path / "avg" / "config.json").read_text())["training"]
    assert meta["weights"] == "moving average (decay 0.5)" and "--ema 0.5 --keep-every 1" in meta["command"]
    codec = create_model("hyperprior-vr", weights_dir=tmp_path / "avg")
    x = torch.rand(1, 3, 20, 30)
    assert codec.decompress(codec.compress(x, 2.0)).shape == x.shape
    capsys.readouterr()
    assert main(["export", str(run), "--step", "7"]) != 0
    assert "keeps no checkpoint of step 7 (it keeps steps 1, 2, 3)" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "plain"), "--crop", "64", "--batch", "2",
                 "--steps", "1", "--no-bf16"]) == 0
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "plain"), "--crop", "64", "--batch", "2",
                 "--steps", "2", "--no-bf16", "--ema", "0.9"]) != 0
    assert "no weight average" in capsys.readouterr().err
    # argument checks run before any model or data loads (--sprites also has the objective's own check)
    for bad in (["--ema", "1"], ["--keep-every", "3", "--checkpoint-every", "2"], ["--sprites", "1.5"]):
        assert main(["train", "--data", str(data), "--out", str(tmp_path / "x"), *bad]) != 0
        assert "--" + bad[0].strip("-") in capsys.readouterr().err


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


def test_average_writes_the_mean_of_weights_and_refuses_other_codecs_or_configs(tmp_path, capsys):
    """licodec average: the element-wise mean (or given coefficients) of the trained parameters,
    entropy tables frozen anew (a working codec), tensors the ingredients share kept exactly;
    weights of another codec or config, or bad coefficients, are one-line errors."""
    from dataclasses import replace

    from safetensors.torch import load_file

    from licodec.zoo import export_weights, get_entry

    dirs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = create_model("hyperprior-vr", pretrained=False)
        dirs.append(export_weights(model, "hyperprior-vr", tmp_path / f"w{seed}", training={"seed": seed}))
    a, b = (load_file(d / "model.safetensors") for d in dirs)
    name = next(n for n in a if n.endswith(".weight") and not torch.equal(a[n], b[n]))
    assert main(["average", str(dirs[0]), str(dirs[1]), "-o", str(tmp_path / "mean")]) == 0
    assert main(["average", str(dirs[0]), str(dirs[1]), "-o", str(tmp_path / "mix"), "--coefficients", "0.25", "0.75"]) == 0
    mean, mix = load_file(tmp_path / "mean" / "model.safetensors"), load_file(tmp_path / "mix" / "model.safetensors")
    assert torch.allclose(mean[name], (a[name] + b[name]) / 2, atol=1e-7)
    assert torch.allclose(mix[name], 0.25 * a[name] + 0.75 * b[name], atol=1e-7)
    shared = next(n for n in a if torch.equal(a[n], b[n]) and a[n].is_floating_point())
    assert torch.equal(mean[shared], a[shared])
    record = json.loads((tmp_path / "mix" / "config.json").read_text())["training"]["average"]
    assert [r["coefficient"] for r in record] == [0.25, 0.75] and record[1]["training"] == {"seed": 1}
    command = json.loads((tmp_path / "mix" / "config.json").read_text())["training"]["command"]
    assert command.startswith("licodec average ") and command.endswith("--coefficients 0.25 0.75")
    codec = create_model("hyperprior-vr", weights_dir=tmp_path / "mean")  # hash verified, tables fresh
    x = torch.rand(1, 3, 20, 30)
    assert codec.decompress(codec.compress(x, 2.0)).shape == x.shape
    other = export_weights(create_model("hyperprior-ctx", pretrained=False), "hyperprior-ctx", tmp_path / "ctx")
    config = replace(get_entry("hyperprior-vr").config_cls(), N=64)
    narrow = export_weights(create_model("hyperprior-vr", pretrained=False, config=config), "hyperprior-vr", tmp_path / "n")
    capsys.readouterr()
    for argv, message in [([str(dirs[0]), str(other)], "only one codec's weights average"),
                          ([str(dirs[0]), str(narrow)], "another config"),
                          ([str(dirs[0]), str(dirs[1]), "--coefficients", "0.5", "0.6"], "sum to 1"),
                          ([str(dirs[0])], "at least two"),
                          ([str(dirs[0]), str(tmp_path)], "not a weights folder")]:
        assert main(["average", *argv, "-o", str(tmp_path / "bad")]) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()
