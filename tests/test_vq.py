"""The VQGAN codebook codec: exact coding, geometry, hostile bitstreams, codebook upkeep, the
k-means ladder, the VQ objective and training through the CLI (fast: tiny configs)."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from conftest import make_untrained, mutation_outcomes, random_image
from licodec.codec.vq import EMACodebook, code_usage, pack_indices, packed_length, unpack_indices
from licodec.codec.vq_ladder import spherical_kmeans
from licodec.entropy.container import Bitstream
from licodec.errors import BitstreamError, LicodecError
from licodec.zoo import create_model, get_entry

TINY = dict(channels=(8, 8, 16, 16), enc_blocks=(0, 0, 1, 1), dec_blocks=(0, 0, 1, 1), code_dim=4,
            codebook_size=32, rungs=(8, 16, 32))


@pytest.fixture(scope="module")
def tiny():
    return make_untrained("vqgan", **TINY)


def _image(rng, h, w):
    return torch.from_numpy(random_image(rng, h, w)).permute(2, 0, 1)[None].float() / 255


def test_default_config_is_the_paper_ladder():
    codec = create_model("vqgan", pretrained=False)
    assert codec.config.rungs == tuple(2 ** (q + 2) for q in range(1, 9)) and codec.config.codebook_size == 1024
    assert codec.quality_range == (1.0, 8.0)
    for q in range(1, 9):
        assert codec.bits_per_index(q) == q + 2
    x = torch.rand(1, 3, 64, 96)
    assert codec.estimate_bits(x, 8) == 4 * 6 * 10  # log2(1024) / 256 bpp


def test_round_trip_is_exact(tiny, rng):
    x = _image(rng, 48, 80)
    for q in (1, 2, 3):
        b = Bitstream.from_bytes(tiny.compress(x, q).to_bytes())
        out = tiny(x, float(q))  # eval mode: no codebook update
        rung = tiny.rung(q)
        decoded = unpack_indices(b.streams["idx"], 3 * 5, rung.bits).reshape(1, 3, 5)
        assert np.array_equal(decoded, out.features["indices"].numpy())
        assert torch.equal(torch.from_numpy(decoded), tiny.encode_indices(x, q))
        x_hat = tiny.decompress(b)
        torch.testing.assert_close(x_hat, out.x_hat.clamp(0, 1), atol=1e-5, rtol=0)
        assert torch.equal(x_hat, tiny.decompress(b))  # a pure function of the bits


@pytest.mark.parametrize("h,w", [(1, 1), (17, 33), (31, 15), (16, 16), (50, 3)])
def test_file_size_is_the_information_bound(tiny, h, w):
    x = torch.rand(1, 3, h, w)
    for q in (1, 2, 3):
        b = tiny.compress(x, q)
        n = math.ceil(h / 16) * math.ceil(w / 16)
        bits = tiny.bits_per_index(q)
        header = len(b.to_bytes()) - b.payload_bytes
        assert len(b.to_bytes()) == header + math.ceil(n * bits / 8)
        assert tiny.estimate_bits(x, q) == n * bits
        assert 0 <= 8 * b.payload_bytes - tiny.estimate_bits(x, q) < 8
        assert tiny.decompress(Bitstream.from_bytes(b.to_bytes())).shape == x.shape


def test_forward_output_and_geometry(tiny):
    x = torch.rand(3, 3, 17, 33)
    out = tiny(x, torch.tensor([1.0, 3.0, 2.0]))
    assert out.x_hat.shape == x.shape
    assert out.likelihoods["idx"].shape == (3, 2, 3)
    assert torch.allclose(out.likelihoods["idx"][:, 0, 0], torch.tensor([1 / 8, 1 / 32, 1 / 16]))
    assert torch.equal(out.bits, torch.tensor([3.0, 5.0, 4.0]) * 6)
    assert out.features["z_e"].shape == out.features["z_q"].shape == (3, 4, 2, 3)
    assert torch.allclose(out.features["z_e"].norm(dim=1), torch.ones(3, 2, 3), atol=1e-5)
    # mixed rungs: each image is coded as it would be alone
    alone = tiny(x[1:2], 3.0)
    assert torch.equal(alone.features["indices"], out.features["indices"][1:2])
    torch.testing.assert_close(alone.x_hat, out.x_hat[1:2], atol=1e-5, rtol=1e-4)


def test_tiled_round_trip(rng):
    codec = make_untrained("vqgan", **TINY, tile=32)
    x = _image(rng, 40, 70)
    b = codec.compress(x, 2)
    assert b.tile == 32 and list(b.streams) == [f"t{i}.idx" for i in range(6)]
    x_hat = codec.decompress(Bitstream.from_bytes(b.to_bytes()))
    assert x_hat.shape == x.shape
    # each tile is coded independently: tile 4 (rows 32..40, columns 32..64)
    torch.testing.assert_close(x_hat[..., 32:40, 32:64], codec.decompress(codec.compress(x[..., 32:40, 32:64], 2)))


@pytest.mark.parametrize("quality", [0, 0.5, 2.5, 3.0001, 4, -1, float("nan"), float("inf"), "x"])
def test_bad_qualities_are_refused(tiny, quality):
    with pytest.raises(LicodecError, match="quality must be an integer from 1 to 3"):
        tiny.compress(torch.rand(1, 3, 16, 16), quality)
    if not isinstance(quality, str):
        with pytest.raises(LicodecError, match="quality must be an integer"):
            tiny(torch.rand(2, 3, 16, 16), torch.tensor([1.0, quality]))


def test_hostile_bitstreams_are_refused(tiny, rng):
    x = _image(rng, 40, 56)  # 3 x 4 indices of 4 bits at quality 2: 6 bytes
    b = tiny.compress(x, 2)
    idx = b.streams["idx"]
    assert len(idx) == 6

    def refused(match, **changes):
        with pytest.raises(BitstreamError, match=match):
            tiny.decompress(Bitstream.from_bytes(dataclasses.replace(b, **changes).to_bytes()))

    refused("is 5 bytes; vqgan writes 6", streams={"idx": idx[:-1]})
    refused("is 7 bytes; vqgan writes 6", streams={"idx": idx + b"\0"})
    refused("is 0 bytes", streams={"idx": b""})
    refused("is 6 bytes; vqgan writes 8", height=64)  # forged geometry: more indices than coded
    refused("is 6 bytes; vqgan writes 5 at quality 1", quality=1.0)  # 12 indices of 3 bits: 36 bits
    refused("invalid quality", quality=2.5)
    refused("invalid quality", quality=9.0)
    refused("no sub-stream 'idx'", streams={})
    refused("sub-stream 'y' that vqgan does not write", streams={"idx": idx, "y": b"\0"})
    refused("declares tiles of 4096 for a 56x40 image", tile=4096)
    refused("declares tiles of 16 for a 56x40 image", tile=16)
    refused("declares a 3000x3000 image in one tile", height=3000, width=3000)
    refused("declares tiles of 1024; vqgan codes in tiles of 2048", height=3000, width=3000, tile=1024)
    refused("no sub-stream 't0.idx' \\(and 3 more missing\\)", height=3000, width=3000, tile=2048)
    # 3 x 5 indices of 3 bits at quality 1 = 45 bits: the last 3 padding bits must be zero
    b1 = tiny.compress(_image(rng, 40, 80), 1)
    s = b1.streams["idx"]
    assert len(s) == 6 and s[-1] & 0b111 == 0
    with pytest.raises(BitstreamError, match="padding bits"):
        tiny.decompress(dataclasses.replace(b1, streams={"idx": s[:-1] + bytes([s[-1] | 1])}))
    # bytes on the wire: truncation and corruption are caught by the container
    data = b.to_bytes()
    for bad in (data[:-1], data[:10], data[:-6] + bytes([data[-6] ^ 0x10]) + data[-5:]):
        with pytest.raises(BitstreamError):
            tiny.decompress(Bitstream.from_bytes(bad))


def test_bit_packing():
    rng = np.random.default_rng(0)
    for bits in (1, 3, 5, 8, 10, 16):
        for n in (0, 1, 7, 8, 33):
            idx = rng.integers(0, 1 << bits, n)
            data = pack_indices(idx, bits)
            assert len(data) == packed_length(n, bits) == math.ceil(n * bits / 8)
            assert np.array_equal(unpack_indices(data, n, bits), idx)
    assert pack_indices([5, 1], 3) == bytes([0b10100100])  # MSB first, zero padding
    with pytest.raises(ValueError):
        pack_indices([8], 3)


def test_code_usage_statistics():
    counts, perplexity, used = code_usage(torch.tensor([[0, 0], [1, 1]]), 4)
    assert counts.tolist() == [2, 2, 0, 0] and float(perplexity) == pytest.approx(2.0) and float(used) == 0.5
    _, perplexity, used = code_usage(torch.arange(16).repeat(3), 16)
    assert float(perplexity) == pytest.approx(16.0) and float(used) == 1.0
    _, perplexity, used = code_usage(torch.zeros(10, dtype=torch.long), 8)
    assert float(perplexity) == pytest.approx(1.0) and float(used) == 1 / 8
    p = torch.tensor([0.5, 0.25, 0.25])
    _, perplexity, _ = code_usage(torch.tensor([0, 0, 1, 2]), 3)
    assert float(perplexity) == pytest.approx(math.exp(-(p * p.log()).sum().item()))


def test_training_forward_reports_usage_and_initialises_from_data():
    codec = make_untrained("vqgan", **TINY).train()
    x = torch.rand(2, 3, 64, 64)
    out = codec(x, 3.0)
    _, perplexity, used = code_usage(out.features["indices"], 32)
    assert float(out.features["perplexity"]) == pytest.approx(float(perplexity))
    assert float(out.features["usage"]) == pytest.approx(float(used))
    book = codec.rung(3).codebook
    assert int(book.updates) == 1
    # the first batch seeded the codebook: every code lies near an encoder output
    z = out.features["z_e"].detach().permute(0, 2, 3, 1).reshape(-1, 4)
    assert float((book.embed @ z.T).amax(1).min()) > 0.95
    assert int(codec.rung(1).codebook.updates) == 0  # rungs not trained are untouched


def test_dead_codes_are_restarted_from_encoder_outputs():
    torch.manual_seed(0)
    pole = torch.tensor([1.0, 0, 0, 0])
    centres = F.normalize(pole + 0.5 * torch.randn(8, 4), dim=1)  # 8 clusters around the pole
    book = EMACodebook(8, 4, decay=0.9, restart_after=3, seed=1)
    book.reset(torch.cat([pole[None], -pole[None].repeat(7, 1)]) + 1e-3 * torch.randn(8, 4), torch.ones(8))
    data = F.normalize(centres.repeat_interleave(16, 0) + 0.01 * torch.randn(128, 4), dim=1)
    idx = book.nearest(data)
    assert set(idx.tolist()) == {0}  # one code takes everything, seven are dead
    restarted = []
    for _ in range(3):
        restarted.append(book.update(data, book.nearest(data)))
    assert not restarted[0].any() and not restarted[1].any()
    assert restarted[2].sum() == 7 and not restarted[2][0]  # after restart_after updates without use
    revived = book.embed[1:]
    assert float((revived @ data.T).amax(1).min()) > 0.99  # re-seeded on encoder outputs
    for _ in range(5):
        book.update(data, book.nearest(data))
    _, perplexity, used = code_usage(book.nearest(data), 8)
    assert float(used) >= 0.75 and float(perplexity) > 4
    assert int((book.last_used > int(book.updates) - 2).sum()) >= 6  # chosen in the last update


def test_spherical_kmeans_is_deterministic_and_weighted():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(64, 6))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    w = np.ones(64)
    w[17] = 1e4
    a, assign_a = spherical_kmeans(pts, w, 4, seed=3)
    b, assign_b = spherical_kmeans(pts, w, 4, seed=3)
    assert np.array_equal(a, b) and np.array_equal(assign_a, assign_b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1)
    assert (a @ pts[17]).max() > 0.999  # the heavy code pulls a centroid onto itself
    uniform, _ = spherical_kmeans(pts, np.ones(64), 4, seed=3)
    assert (uniform @ pts[17]).max() < 0.99
    other, _ = spherical_kmeans(pts, np.ones(64), 4, seed=4)
    assert not np.array_equal(uniform, other)
    # fewer used codes than centroids: the unused fill the rest
    few = np.zeros(64)
    few[:3] = 1
    c, _ = spherical_kmeans(pts, few, 8)
    assert len({tuple(np.round(v, 6)) for v in c}) == 8


def test_build_ladder(tiny):
    codec = make_untrained("vqgan", **TINY)
    base = codec.rungs["k32"]
    usage = torch.ones(32)
    usage[5] = 1000.0
    codec.build_ladder(usage)
    assert int(codec.ladder_built) == 1
    first = {k: v.clone() for k, v in codec.state_dict().items()}
    for size in (8, 16):
        rung = codec.rungs[f"k{size}"]
        assert torch.equal(rung.proj_in.weight, base.proj_in.weight)
        assert torch.equal(rung.proj_out.bias, base.proj_out.bias)
        assert torch.allclose(rung.codebook.embed.norm(dim=1), torch.ones(size))
        assert float((rung.codebook.embed @ base.codebook.embed[5]).max()) > 0.999
        assert int(rung.codebook.updates) == 1  # no data re-initialisation when fine-tuning starts
    codec.build_ladder(usage)
    assert all(torch.equal(first[k], v) for k, v in codec.state_dict().items())
    # the ladder is stored with the weights
    assert "rungs.k8.codebook.embed" in first and "rungs.k8.proj_in.weight" in first


def test_objective_losses():
    from licodec.train.discriminator import PatchDiscriminator, hinge_d_loss, hinge_g_loss
    from licodec.train.vq_objective import focal_frequency_loss, ms_ssim

    x = torch.rand(2, 3, 64, 64)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2))
    assert float(focal_frequency_loss(x, x)) == 0
    for crop in (16, 64, 128):
        a, b = torch.rand(1, 3, crop, crop, requires_grad=True), torch.rand(1, 3, crop, crop)
        value = ms_ssim(a, b)
        value.sum().backward()
        assert 0 <= float(value.detach()) < 1 and torch.isfinite(a.grad).all()
    assert float(ms_ssim(y, x).mean()) > float(ms_ssim(torch.rand_like(x), x).mean())
    assert float(focal_frequency_loss(y, x)) > 0
    d = PatchDiscriminator(8)
    logits = d(torch.rand(2, 3, 128, 128))
    assert logits.shape == (2, 1, 14, 14)
    assert float(hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0
    assert float(hinge_g_loss(torch.ones(3))) == -1


def test_models_lists_vqgan_with_its_weights(capsys):
    from licodec.cli.main import main
    from licodec.zoo.registry import read_weights_config

    entry = get_entry("vqgan")
    assert entry.has_weights
    meta = read_weights_config(entry.weights_dir)
    assert meta["config"]["prior_layers"] > 0  # shipped with its learned index prior
    assert main(["models"]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("vqgan:"))
    assert "VQGAN codebook codec" in line and f"weights {meta['sha256'][:16]}" in line


# -- training ----------------------------------------------------------------------------------
def test_train_resume_export_and_rung_fine_tuning(images, tmp_path):
    from licodec.cli.main import main

    common = ["train", "--model", "vqgan", "--data", str(images), "--crop", "64", "--batch", "2", "--no-bf16",
              "--adv-start", "1", "--log-every", "1"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(common + ["--out", str(one), "--steps", "3"]) == 0
    ckpt = torch.load(one / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 3 and ckpt["aux_opt"] is None
    disc = ckpt["objective"]["disc"]
    assert ckpt["objective"]["rung"] == 1024 and ckpt["objective"]["d_opt"]["state"]  # it trained (steps 1, 2)
    assert not any(k.startswith("disc") for k in ckpt["model"])  # not part of the codec
    log = [json.loads(line) for line in (one / "log.jsonl").read_text().splitlines()]
    assert "d_loss" not in log[0] and "d_loss" in log[1] and {"perplexity", "usage", "alive", "commit"} <= set(log[0])

    codec = create_model("vqgan", weights_dir=one / "export")
    assert int(codec.rungs["k1024"].codebook.updates) == 3
    x = torch.rand(1, 3, 40, 50)
    assert codec.decompress(codec.compress(x, 8)).shape == x.shape
    meta = json.loads((one / "export" / "config.json").read_text())
    assert "--adv-start 1" in meta["training"]["command"]
    assert not any("disc" in k for k in load_file(one / "export" / "model.safetensors"))

    # resume: 3 + 1 steps take the 4 uninterrupted ones, discriminator included
    assert main(common + ["--out", str(one), "--steps", "4"]) == 0
    assert main(common + ["--out", str(two), "--steps", "4"]) == 0
    resumed = torch.load(one / "checkpoint.pt", weights_only=False)
    straight = torch.load(two / "checkpoint.pt", weights_only=False)
    assert resumed["step"] == 4
    assert any(not torch.equal(disc[k], resumed["objective"]["disc"][k]) for k in disc)
    for k, v in straight["objective"]["disc"].items():  # bit for bit (the warm-up steps are tiny)
        assert torch.equal(resumed["objective"]["disc"][k], v), k
    for k, v in straight["model"].items():
        assert torch.equal(resumed["model"][k], v), k
    assert resumed["objective"]["d_opt"]["state"][0]["step"] == straight["objective"]["d_opt"]["state"][0]["step"] == 3

    # rung fine-tuning from the base export: the ladder is built, only rung 16's convs and codebook move
    rung = tmp_path / "r16"
    assert main(common[:-4] + ["--out", str(rung), "--steps", "2", "--init", str(one / "export"), "--rung", "16"]) == 0
    base = create_model("vqgan", weights_dir=one / "export").state_dict()
    tuned = create_model("vqgan", weights_dir=rung / "export")
    assert int(tuned.ladder_built) == 1
    changed = {k for k, v in tuned.state_dict().items() if not torch.equal(v, base[k])}
    assert {"rungs.k16.proj_in.weight", "rungs.k16.proj_out.weight", "rungs.k16.codebook.embed"} <= changed
    assert all(k.startswith("rungs.") or k == "ladder_built" for k in changed)
    assert not any(k.startswith("rungs.k1024.") for k in changed)
    assert tuned.decompress(tuned.compress(x, 2)).shape == x.shape
    # resuming with another rung is refused
    assert main(common[:-4] + ["--out", str(rung), "--steps", "3", "--init", str(one / "export"), "--rung", "32"]) != 0


def test_vq_options_are_checked(images, tmp_path, capsys):
    from licodec.cli.main import main
    from licodec.train.objectives import objective_for
    from licodec.train.trainer import TrainConfig, _train

    with pytest.raises(LicodecError, match="has rungs 8, 16, 32, 64"):
        objective_for(create_model("vqgan", pretrained=False), TrainConfig(data="", out="", rung=100, init="w"))
    args = ["train", "--data", str(images), "--out", str(tmp_path / "x"), "--steps", "1", "--crop", "64"]
    assert main(args + ["--model", "vqgan", "--rung", "64"]) != 0
    assert "--init" in capsys.readouterr().err
    assert main(args + ["--model", "hyperprior-vr", "--adv-start", "5"]) != 0
    assert "codebook codecs" in capsys.readouterr().err
    cfg = TrainConfig(data=str(images), out=str(tmp_path / "y"), model="vqgan", steps=1, crop=64)
    with pytest.raises(LicodecError, match="cannot train under torchrun"):
        _train(cfg, True, rank=0, world_size=2, device=torch.device("cpu"))


def test_mutated_bitstreams_only_raise_licodec_errors(tiny, rng):
    """The fuzzer's mutations (benchmarks/fuzz.py) of vqgan bitstreams, decoded in process: garbage
    may decode, anything else is a LicodecError (the fuzzer proper runs the shipped models)."""
    seeds = [tiny.compress(_image(rng, h, w), q).to_bytes() for h, w, q in ((40, 56, 2), (33, 17, 1), (64, 48, 3))]
    outcomes = mutation_outcomes(tiny, seeds, 300)
    assert outcomes["rejected"] > 150 and sum(outcomes.values()) == 300
