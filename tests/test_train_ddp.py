"""Multi-process training (torchrun + DDP): N processes with batch b take the step of one with N * b."""

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from conftest import REPO, random_image
from licodec.cli.main import main
from licodec.train.data import RandomCrops
from licodec.train.trainer import StepNoise, TrainConfig, command_line, initial_model
from licodec.zoo import create_model


@pytest.fixture
def images(tmp_path, rng):
    data = tmp_path / "data"
    data.mkdir()
    for i, (h, w) in enumerate([(80, 96), (64, 64), (96, 72), (70, 110)]):
        Image.fromarray(random_image(rng, h, w)).save(data / f"{i}.png")
    return data


def test_rank_slices_of_a_step_make_up_the_single_process_batch(images):
    crops = RandomCrops(images, 32, seed=3)
    x, q = crops.step_batch(7, 8, (1.0, 8.0))
    parts = [crops.step_batch(7, 4, (1.0, 8.0), rank=r, world_size=2) for r in range(2)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), q)
    assert x.shape == (8, 3, 32, 32) and 0 <= x.min() and x.max() <= 1 and (1 <= q).all() and (q <= 8).all()
    assert not torch.equal(parts[0][0], parts[1][0])  # the ranks train on different crops
    assert not torch.equal(crops.step_batch(8, 8, (1.0, 8.0))[0], x)  # and each step on new ones
    assert torch.equal(RandomCrops(images, 32, seed=3).step_batch(7, 8, (1.0, 8.0))[0], x)  # resume redraws them
    assert crops.batch(5).shape == (5, 3, 32, 32)


@pytest.mark.parametrize("name", ["hyperprior-vr", "hyperprior-ctx"])
def test_rate_noise_of_a_rank_is_its_slice_of_the_global_batch(name):
    x, q = torch.rand(4, 3, 64, 64), torch.tensor([1.0, 2.5, 4.0, 7.0])
    bits = {}
    for world_size, rank in [(1, 0), (2, 0), (2, 1)]:
        torch.manual_seed(0)
        model = create_model(name, pretrained=False).train()
        batch = 4 // world_size
        noise = StepNoise(model, seed=5, batch=batch, rank=rank, world_size=world_size)
        noise.start(11)
        mine = slice(rank * batch, (rank + 1) * batch)
        with torch.no_grad():
            bits[world_size, rank] = model(x[mine], q[mine]).bits
    assert torch.allclose(torch.cat([bits[2, 0], bits[2, 1]]), bits[1, 0], rtol=1e-5)
    noise.start(12)  # another step, other noise
    with torch.no_grad():
        assert not torch.allclose(model(x[2:], q[2:]).bits, bits[2, 1], rtol=1e-5)


def test_command_line_of_a_multi_process_run():
    cfg = {**TrainConfig(data="d", out="o").__dict__, "world_size": 2}
    assert command_line(cfg).startswith("torchrun --nproc_per_node 2 -m licodec train --data d --out o")
    assert command_line({**cfg, "world_size": 1}).startswith("licodec train")


def _state(run):
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    grads = [s["exp_avg"] for _, s in sorted(ckpt["opt"]["state"].items())]  # 0.1 x the first step's gradient
    return ckpt, grads


def _max_diff(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())


@pytest.mark.slow
def test_two_processes_take_the_step_of_one_with_the_global_batch(images, tmp_path):
    common = ["--model", "hyperprior-vr", "--data", str(images), "--no-bf16", "--crop", "64", "--log-every", "1"]
    ddp = ["train", "--out", str(tmp_path / "ddp"), "--batch", "4", *common]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(steps):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "licodec", *ddp, "--steps", str(steps)]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    assert "exported weights" in torchrun(1).stdout
    single = ["train", "--out", str(tmp_path / "one"), "--batch", "8", *common]
    assert main(single + ["--steps", "1"]) == 0
    assert main(["train", "--out", str(tmp_path / "half"), "--batch", "4", *common, "--steps", "1"]) == 0

    two, g_two = _state(tmp_path / "ddp")
    one, g_one = _state(tmp_path / "one")
    _, g_half = _state(tmp_path / "half")  # one process on rank 0's images only
    assert two["train_config"]["world_size"] == 2 and one["train_config"]["world_size"] == 1
    torch.manual_seed(0)
    initial = initial_model(TrainConfig(data="", out="")).state_dict()
    assert _max_diff(two["model"], initial) > 0  # the step changed the weights ...
    weight_diff = _max_diff(two["model"], one["model"])
    print(f"max |w(2x4) - w(1x8)| = {weight_diff:.3g}")
    torch.testing.assert_close(two["model"], one["model"], atol=1e-5, rtol=1e-4)
    # ... but Adam's first step is about lr * sign(gradient), so compare the gradients too
    for a, b, c in zip(g_two, g_one, g_half):
        scale = float(b.abs().max())
        torch.testing.assert_close(a, b, atol=1e-4 * scale, rtol=1e-3)
    grad_diff = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(g_two, g_one))
    half_diff = max(float((c - b).abs().max() / b.abs().max()) for b, c in zip(g_one, g_half))
    print(f"max relative gradient difference: 2x4 vs 1x8 {grad_diff:.3g}, 1x4 vs 1x8 {half_diff:.3g}")
    assert half_diff > 100 * grad_diff and half_diff > 0.05  # rank 1's images count

    # resume: both continue from step 1 and stay together
    torchrun(2)
    assert main(single + ["--steps", "2"]) == 0
    two, g_two = _state(tmp_path / "ddp")
    one, g_one = _state(tmp_path / "one")
    assert two["step"] == one["step"] == 2
    torch.testing.assert_close(two["model"], one["model"], atol=1e-5, rtol=1e-4)
    for a, b in zip(g_two, g_one):
        torch.testing.assert_close(a, b, atol=1e-4 * float(b.abs().max()), rtol=1e-3)
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]  # rank 0 alone writes
    meta = json.loads((tmp_path / "ddp" / "export" / "config.json").read_text())
    assert meta["training"]["world_size"] == 2 and meta["training"]["command"].startswith("torchrun --nproc_per_node 2")
    codec = create_model("hyperprior-vr", weights_dir=tmp_path / "ddp" / "export")
    assert codec.decompress(codec.compress(torch.rand(1, 3, 32, 48), 3.0)).shape == (1, 3, 32, 48)
