"""The vqgan codec's learned index prior (licodec.codec.vq_prior) and lost-index restoration:
exact coding, CDF quantisation, thread-count identity, the information bound, learning, hostile
streams, restoration, training and decoding through the CLI, the loss benchmark (tiny configs)."""

import dataclasses
import hashlib
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from conftest import REPO, make_untrained, mutation_outcomes, random_image
from licodec import api
from licodec.codec import vq_prior
from licodec.codec.vq import pack_indices
from licodec.entropy.container import Bitstream
from licodec.errors import BitstreamError, LicodecError, WeightsError
from licodec.zoo import create_model, export_weights

TINY = dict(channels=(8, 8, 16, 16), enc_blocks=(0, 0, 1, 1), dec_blocks=(0, 0, 1, 1), code_dim=4,
            codebook_size=32, rungs=(8, 16, 32))
PRIOR = dict(prior_layers=2, prior_width=32, prior_heads=2)


def activate(prior, seed: int = 0, scale: float = 0.3) -> None:
    """Random, non-zero heads: an untrained prior whose distributions are far from uniform (its
    heads start at zero, which would code every index at log2 K bits)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for lin in prior.head.values():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * scale)
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=g) * scale)


def prior_codec(seed: int = 0, scale: float = 0.3, **overrides):
    codec = make_untrained("vqgan", **{**TINY, **PRIOR, **overrides})
    activate(codec.prior, seed, scale)
    return codec.requires_grad_(False)


@pytest.fixture(scope="module")
def codec():
    return prior_codec()


def _image(rng, h, w):
    return torch.from_numpy(random_image(rng, h, w)).permute(2, 0, 1)[None].float() / 255


# -- schedule and tables -----------------------------------------------------------------------
def test_schedule_partitions_the_grid_coarse_to_fine():
    m = vq_prior.pass_map(9, 13)
    assert sorted(np.unique(m)) == list(range(vq_prior.PASSES))
    sched = vq_prior.schedule(9, 13)
    assert np.array_equal(np.sort(np.concatenate([pos for _, pos in sched])), np.arange(9 * 13))
    assert vq_prior.pass_sizes(32, 48).tolist() == [96, 96, 192, 384, 384, 384]  # 1/16, 1/16, 1/8, 1/4 x 3
    # from pass 3 on, every position's 8-neighbours inside the grid were coded in earlier passes or
    # are of the same pass; passes 4 and 5 have all four direct neighbours known
    for i in range(1, 8):
        for j in range(1, 12):
            if m[i, j] >= 4:
                assert max(m[i - 1, j], m[i + 1, j], m[i, j - 1], m[i, j + 1]) < m[i, j]
            if m[i, j] == 3:
                assert max(m[i - 1, j - 1], m[i - 1, j + 1], m[i + 1, j - 1], m[i + 1, j + 1]) < 3
    assert [p for p, _ in vq_prior.schedule(1, 1)] == [0]
    assert [p for p, _ in vq_prior.schedule(1, 3)] == [0, 2, 4]


def test_cdf_quantisation_is_exact():
    rng = np.random.default_rng(0)
    for k in (2, 8, 1024, 8192):
        logits = rng.normal(0, 8, size=(50, k))
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        probs[0] = 0
        probs[1, :] = 0
        probs[1, k - 1] = 1  # one-hot
        probs[2] = np.nan  # garbage: uniform
        probs[3] *= 1 + 1e-12  # rows summing to a bit more than 1
        cdf = vq_prior.quantize_cdfs(probs)
        assert cdf.shape == (50, k + 2) and cdf.dtype == np.int32
        freq = np.diff(cdf.astype(np.int64), axis=1)
        assert (cdf[:, 0] == 0).all() and (cdf[:, -1] == 1 << 16).all()
        assert (freq >= 1).all()  # no symbol of zero frequency
        assert (freq[:, -1] == 1).all()  # the escape symbol
        assert (freq.sum(1) == 1 << 16).all()
        assert np.array_equal(cdf, vq_prior.quantize_cdfs(probs.copy()))  # deterministic
        assert freq[1, k - 1] == (1 << 16) - k  # a one-hot row: all but the minimum (1 each) to its symbol
        assert len(set(freq[0, 1:k].tolist())) == 1  # an all-zero row is uniform (the rest to the first)
        # the tables charge about -log2 p (the minimum frequencies take K / 2**16 of the mass)
        p = np.exp(rng.normal(0, 1, size=(200, k)))
        p /= p.sum(1, keepdims=True)
        s = np.array([rng.choice(k, p=row) for row in p])
        ideal = float(-np.log2(p[np.arange(200), s]).sum())
        charged = vq_prior.table_bits(vq_prior.quantize_cdfs(p), s)
        assert ideal - 0.1 <= charged <= ideal - 200 * np.log2(1 - (k + 1) / 2**16) + 0.2 * 200 * k / 2**16 + 0.1


# -- coding ------------------------------------------------------------------------------------
@pytest.mark.parametrize("h,w", [(1, 1), (16, 48), (17, 33), (80, 112), (50, 3)])
def test_round_trip_with_the_prior_is_exact(codec, rng, h, w):
    x = _image(rng, h, w)
    for q in (1, 3):
        b = Bitstream.from_bytes(codec.compress(x, q).to_bytes())
        grid = codec.grid_shape(h, w)
        idx = codec.encode_indices(x, q)[0].numpy()
        assert np.array_equal(codec.read_indices(b.streams["idx"], q, grid), idx)
        assert len(b.streams["idx"]) % 4 == 0 and len(b.streams["idx"]) >= 8
        x_hat = codec.decompress(b)
        with torch.no_grad():
            out = codec(x, float(q))
        torch.testing.assert_close(x_hat, out.x_hat.clamp(0, 1), atol=1e-5, rtol=0)
        assert torch.equal(x_hat, codec.decompress(b))


def test_tiled_round_trip_with_the_prior(rng):
    codec = prior_codec(tile=32)
    x = _image(rng, 40, 70)
    b = codec.compress(x, 2)
    assert list(b.streams) == [f"t{i}.idx" for i in range(6)]
    x_hat = codec.decompress(Bitstream.from_bytes(b.to_bytes()))
    torch.testing.assert_close(x_hat[..., 32:40, 32:64], codec.decompress(codec.compress(x[..., 32:40, 32:64], 2)))


def test_windows(rng):
    assert vq_prior.windows(13, 10, 8) == [((8, 8), [(0, 0)]), ((8, 2), [(0, 8)]), ((5, 8), [(8, 0)]),
                                           ((5, 2), [(8, 8)])]
    assert vq_prior.windows(32, 48, 48) == [((32, 48), [(0, 0)])]
    codec = prior_codec(prior_window=8)
    x = _image(rng, 200, 150)  # 13 x 10 indices: four window shapes
    for q in (1, 3):
        b = Bitstream.from_bytes(codec.compress(x, q).to_bytes())
        idx = codec.encode_indices(x, q)[0].numpy()
        assert np.array_equal(codec.read_indices(b.streams["idx"], q, (13, 10)), idx)
        estimate = codec.estimate_bits(x, q)
        assert 0.99 * estimate - 32 <= 8 * b.payload_bytes <= 1.01 * estimate + 96
        with torch.no_grad():
            assert float(codec(x, float(q)).bits) == pytest.approx(estimate, rel=0.03)
        # a window is coded on its own: its indices cost what they cost as a grid of their own
        p64 = codec.coding_prior()
        k = codec.rung(q).size
        parts = sum(vq_prior.estimate_bits(p64, k, idx[t : t + 8, c : c + 8]) for t in (0, 8) for c in (0, 8))
        assert parts == pytest.approx(estimate, rel=1e-9)
        lost = vq_prior.loss_mask(13, 10, 0.3, seed=1)
        fixed = codec.restore_indices(idx, lost, q)
        assert np.array_equal(fixed[~lost], idx[~lost])
    with pytest.raises(ValueError, match="multiple of 4"):
        make_untrained("vqgan", **TINY, **PRIOR, prior_window=10)


def test_untrained_prior_codes_at_log2_k_and_forward_reports_its_bits(rng):
    codec = make_untrained("vqgan", **TINY, **PRIOR)  # heads at zero: uniform tables
    x = _image(rng, 64, 96)
    n = 4 * 6
    for q, k in ((1, 8), (3, 32)):
        b = codec.compress(x, q)
        assert 8 * len(b.streams["idx"]) <= n * math.log2(k) * 1.001 + 64
        assert codec.estimate_bits(x, q) == pytest.approx(n * math.log2(k), rel=1e-3)
    active = prior_codec()
    xs = torch.cat([x, _image(rng, 64, 96)])
    with torch.no_grad():
        out = active(xs, torch.tensor([1.0, 3.0]))
        alone = active(xs[1:], 3.0)
    assert torch.allclose(out.bits, -torch.log2(out.likelihoods["idx"]).sum((1, 2)))
    assert not torch.allclose(out.bits[1], torch.tensor(n * 5.0))
    assert torch.allclose(alone.bits, out.bits[1:], rtol=1e-5)


def test_information_bound(codec, rng):
    """Real bytes against the estimate: the tables' code length plus rANS's final state and the
    rounding to 32-bit words; the float32 training forward agrees to about a percent."""
    for q in (1, 2, 3):
        for h, w in ((128, 192), (96, 80)):
            x = _image(rng, h, w)
            estimate = codec.estimate_bits(x, q)
            real = 8 * codec.compress(x, q).payload_bytes
            assert 0.99 * estimate - 32 <= real <= 1.01 * estimate + 96, (q, h, w, real, estimate)
            with torch.no_grad():
                trained = float(codec(x, float(q)).bits)
            assert trained == pytest.approx(estimate, rel=0.03)
    assert abs(estimate - (h // 16) * (w // 16) * 5) > 5  # the random prior is not uniform


_HASH_BYTES = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
sys.path.insert(0, sys.argv[2])
from test_vq_prior import coded_bytes_digest
print(coded_bytes_digest())
"""


def coded_bytes_digest() -> str:
    """SHA-256 of prior-coded bytes: random-noise index grids at K = 8 and 1024 (48 x 32, Kodak's
    grid) and images through a tiny codec."""
    h = hashlib.sha256()
    rng = np.random.default_rng(3)
    for window in (48, 20):  # Kodak's grid in one window; in windows of 4 shapes
        torch.manual_seed(1)
        prior = vq_prior.IndexPrior((8, 1024), width=64, layers=2, heads=4, window=window)
        activate(prior, seed=5, scale=0.5)
        p64 = vq_prior.coding_prior(prior, {})
        for k in (8, 1024):
            grid = rng.integers(0, k, (32, 48))
            data, _ = vq_prior.encode(p64, k, grid)
            h.update(data)
    codec = prior_codec(seed=2, scale=0.5)
    for x in (torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(5)),
              torch.from_numpy(random_image(np.random.default_rng(7), 70, 130)).permute(2, 0, 1)[None] / 255):
        for q in (1, 3):
            h.update(codec.compress(x, q).to_bytes())
    return h.hexdigest()


def test_bytes_do_not_depend_on_the_thread_count():
    here = str(Path(__file__).parent)
    digests = {t: subprocess.run([sys.executable, "-c", _HASH_BYTES, str(t), here], check=True,
                                 capture_output=True, text=True).stdout.strip() for t in (1, 2)}
    assert digests[1] == digests[2] and len(digests[1]) == 64


def test_prior_learns_a_predictable_grid():
    """30 steps of a tiny prior on grids of one random index each (predictable from any known
    neighbour) save far more than 30% of log2 K, in real bytes."""
    from licodec.train.vq_prior_objective import prior_losses

    torch.manual_seed(0)
    k = 32
    prior = vq_prior.IndexPrior((8, 16, 32), width=32, layers=2, heads=2)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)

    def grids(b, h=8, w=8):
        return torch.randint(0, k, (b, 1, 1), generator=g).expand(b, h, w).clone()

    for _ in range(30):
        loss = prior_losses(prior, k, grids(32), g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    p64 = vq_prior.coding_prior(prior, {})
    test = grids(4, 12, 10)
    real = sum(8 * len(vq_prior.encode(p64, k, t.numpy())[0]) for t in test)
    assert real < 0.7 * test.numel() * math.log2(k)
    assert all(np.array_equal(vq_prior.decode(p64, k, vq_prior.encode(p64, k, t.numpy())[0], 12, 10), t.numpy())
               for t in test[:2])


def test_hostile_prior_streams_are_refused(codec, rng):
    x = _image(rng, 64, 80)
    b = codec.compress(x, 3)
    good = b.streams["idx"]

    def refused(match=None, **changes):
        with pytest.raises(BitstreamError, match=match):
            codec.decompress(Bitstream.from_bytes(dataclasses.replace(b, **changes).to_bytes()))

    refused("truncated", streams={"idx": good[:4]})
    refused("whole number of 32-bit words", streams={"idx": good[:-1]})
    refused("more than the encoder writes", streams={"idx": good + bytes(4 * 20 * 8)})
    refused(streams={"idx": good[:-4]})
    refused(streams={"idx": good + b"\0\0\0\0"})
    refused(streams={"idx": bytes([good[0] ^ 0x40]) + good[1:]})
    refused(streams={"idx": good[:-5] + bytes([good[-5] ^ 1]) + good[-4:]})
    refused(streams={"idx": b"\xff" * len(good)})
    refused(streams={"idx": b""})
    refused("invalid quality", quality=2.5)
    refused(quality=1.0)  # other tables: decodes to something else or is caught
    refused("no sub-stream 'idx'", streams={})
    # packed indices are not accepted by weights with a prior
    packed = pack_indices(codec.encode_indices(x, 3)[0].numpy(), 5)
    refused(streams={"idx": packed})
    # tiny grids: a padding that does not decode to zeros
    small = codec.compress(_image(rng, 16, 32), 3)
    assert len(small.streams["idx"]) == 8
    for i in range(8):
        bad = bytearray(small.streams["idx"])
        bad[i] ^= 0x81
        with pytest.raises(BitstreamError):
            codec.decompress(dataclasses.replace(small, streams={"idx": bytes(bad)}))


def test_mutated_prior_streams_only_raise_licodec_errors(codec, rng):
    seeds = [codec.compress(_image(rng, h, w), q).to_bytes() for h, w, q in ((40, 56, 2), (33, 17, 1), (64, 48, 3))]
    outcomes = mutation_outcomes(codec, seeds, 120)
    assert outcomes["rejected"] > 60 and sum(outcomes.values()) == 120


def test_weights_decide_the_coding(tmp_path, rng):
    """Packed weights keep writing and reading the packed format; the prior's spec is checked on
    load; a stream needs the very weights that wrote it."""
    plain = make_untrained("vqgan", **TINY)
    export_weights(plain, "vqgan", tmp_path / "plain")
    with_prior = make_untrained("vqgan", **TINY, **PRIOR)
    activate(with_prior.prior)
    export_weights(with_prior, "vqgan", tmp_path / "prior")
    a = create_model("vqgan", weights_dir=tmp_path / "plain")
    p = create_model("vqgan", weights_dir=tmp_path / "prior")
    assert a.prior is None and p.prior is not None and a.weights_sha256 != p.weights_sha256
    x = _image(rng, 48, 64)
    ba, bp = a.compress(x, 2), p.compress(x, 2)
    assert len(ba.streams["idx"]) == 3 * 4 * 4 // 8  # packed: 12 indices of 4 bits
    assert torch.equal(a.decompress(ba), p.decompress(bp))  # same indices, other coding
    with pytest.raises(BitstreamError):
        a.decompress(dataclasses.replace(ba, streams=bp.streams))
    # a config.json that does not describe the tensors is refused: by the config stored in the
    # weights' header, and for older files without one by the prior's spec and the tensor shapes
    meta = json.loads((tmp_path / "prior" / "config.json").read_text())
    headerless = tmp_path / "headerless.safetensors"
    save_file(load_file(str(tmp_path / "prior" / "model.safetensors")), str(headerless))
    for change, match, weights in (({"prior_heads": 4}, "exported with \\(prior_heads\\)", tmp_path / "prior" / "model.safetensors"),
                                   ({"prior_heads": 4}, "index prior", headerless),
                                   ({"prior_layers": 0}, "do not fit", headerless)):
        bad = tmp_path / f"bad{len(match)}"
        bad.mkdir()
        (bad / "model.safetensors").write_bytes(weights.read_bytes())
        sha = hashlib.sha256(weights.read_bytes()).hexdigest()
        (bad / "config.json").write_text(json.dumps({**meta, "sha256": sha, "config": {**meta["config"], **change}}))
        with pytest.raises(WeightsError, match=match):
            create_model("vqgan", weights_dir=bad)


# -- lost indices ------------------------------------------------------------------------------
@pytest.mark.parametrize("with_prior", [True, False])
def test_restoration_never_fails(with_prior, rng):
    codec = prior_codec() if with_prior else make_untrained("vqgan", **TINY)
    x = _image(rng, 80, 112)
    b = codec.compress(x, 3)
    plain = codec.decompress(b)
    idx = codec.read_indices(b.streams["idx"], 3, (5, 7))
    for fraction in (0.0, 0.2, 1.0):
        for rows in (False, True):
            masks = codec.loss_masks(b, fraction, seed=4, rows=rows)
            assert int(masks[0].sum()) == round(fraction * (5 if rows else 35)) * (7 if rows else 1)
            out = codec.decompress(b, lost_mask=masks)
            assert out.shape == x.shape and torch.isfinite(out).all()
            assert torch.equal(out, codec.decompress(b, lost_mask=masks))  # deterministic
            fixed = codec.restore_indices(idx, masks[0], 3)
            assert np.array_equal(fixed[~masks[0]], idx[~masks[0]]) and fixed.min() >= 0 and fixed.max() < 32
            if fraction == 0:
                assert torch.equal(out, plain)
    assert torch.equal(codec.decompress(b, lost_mask=np.zeros((5, 7), bool)), plain)
    with pytest.raises(LicodecError, match="lost mask"):
        codec.decompress(b, lost_mask=np.zeros((4, 7), bool))


def test_neighbour_restoration():
    grid = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 2, 2]])
    lost = np.zeros_like(grid, dtype=bool)
    lost[0, 0] = lost[1, 2] = lost[2, 0] = True
    fixed = vq_prior.restore_from_neighbours(grid, lost)
    assert fixed.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [1, 3, 2, 2]]  # (2, 0) sees 1, 1 and 3
    assert vq_prior.restore_from_neighbours(grid, np.ones_like(lost), fallback=7).tolist() == [[7] * 4] * 3
    lost = np.ones_like(lost)
    lost[0, 0] = False  # waves from the one known position fill everything
    assert (vq_prior.restore_from_neighbours(grid, lost) == 1).all()
    # ties: the smallest index
    assert vq_prior.restore_from_neighbours(np.array([[5, 0, 4]]), np.array([[False, True, False]]))[0, 1] == 4


def test_prior_restoration_uses_the_context():
    """A prior that learnt constant grids restores a constant grid from a few known indices."""
    from licodec.train.vq_prior_objective import prior_losses

    torch.manual_seed(0)
    prior = vq_prior.IndexPrior((8, 16, 32), width=32, layers=2, heads=2)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for _ in range(40):
        grids = torch.randint(0, 32, (32, 1, 1), generator=g).expand(32, 8, 8)
        loss = prior_losses(prior, 32, grids, g, free_images=16)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    p64 = vq_prior.coding_prior(prior, {})
    grid = np.full((8, 8), 13)
    lost = vq_prior.loss_mask(8, 8, 0.5, seed=2)
    assert (vq_prior.restore(p64, 32, grid, lost) == 13).mean() > 0.9


# -- training and CLI --------------------------------------------------------------------------
def test_train_prior_through_the_cli(images, tmp_path):
    from licodec.cli.main import main

    base = make_untrained("vqgan", **TINY, prior_width=32, prior_heads=2)
    export_weights(base, "vqgan", tmp_path / "base")
    common = ["train", "--model", "vqgan", "--data", str(images), "--crop", "64", "--batch", "4", "--no-bf16",
              "--log-every", "1", "--init", str(tmp_path / "base"), "--prior"]
    run = tmp_path / "run"
    assert main(common + ["--out", str(run), "--steps", "2"]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {"ratio", "bits_k8", "bits_k16", "bits_k32"} <= set(log[0])
    assert 0.9 < log[0]["ratio"] <= 1.01  # heads start at the (uniform) code usage: about log2 K bits
    tuned = create_model("vqgan", weights_dir=run / "export")
    assert tuned.config.prior_layers == 4 and tuned.prior is not None
    meta = json.loads((run / "export" / "config.json").read_text())
    assert meta["training"]["command"].endswith("--prior")
    changed = {k for k, v in tuned.state_dict().items()
               if k not in base.state_dict() or not torch.equal(v, base.state_dict()[k])}
    assert changed and all(k.startswith("prior.") for k in changed)
    x = torch.rand(1, 3, 40, 50)
    assert torch.equal(tuned.decompress(tuned.compress(x, 2)), base.decompress(base.compress(x, 2)))
    assert main(common + ["--out", str(run), "--steps", "3"]) == 0  # resumes
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 3
    # resuming a prior run without --prior, or --prior with --rung, is refused
    assert main(common[:-1] + ["--out", str(run), "--steps", "4"]) != 0
    assert main(common + ["--out", str(tmp_path / "r2"), "--steps", "1", "--rung", "16"]) != 0
    assert main(common[:-3] + ["--prior", "--out", str(tmp_path / "r3"), "--steps", "1"]) != 0  # no --init


def test_decode_lose_through_the_cli(codec, tmp_path, rng, monkeypatch, capsys):
    from licodec.cli.main import main

    monkeypatch.setitem(api._cache, ("vqgan", None), codec)
    rgb = random_image(rng, 64, 96)
    lic = tmp_path / "a.lic"
    lic.write_bytes(api.compress_bitstream(rgb, 3, "vqgan").to_bytes())
    data = lic.read_bytes()
    assert main(["decode", str(lic), "-o", str(tmp_path / "plain.png")]) == 0
    assert main(["decode", str(lic), "-o", str(tmp_path / "l0.png"), "--lose", "0"]) == 0
    assert main(["decode", str(lic), "-o", str(tmp_path / "l20.png"), "--lose", "0.2", "--lose-seed", "3", "-v"]) == 0
    assert "20% of the indices lost (seed 3)" in capsys.readouterr().out
    assert main(["decode", str(lic), "-o", str(tmp_path / "all.png"), "--lose", "1", "--lose-rows"]) == 0

    def png(name):
        return np.asarray(Image.open(tmp_path / name))

    assert np.array_equal(png("l0.png"), png("plain.png"))
    assert np.array_equal(png("l20.png"), np.asarray(api.decompress(data, lost=0.2, lost_seed=3)))
    assert np.array_equal(np.asarray(api.decompress(data, lost=0.0)), png("plain.png"))
    assert png("all.png").shape == (64, 96, 3)
    assert main(["decode", str(lic), "-o", str(tmp_path / "x.png"), "--lose", "1.5"]) != 0
    assert main(["decode", str(lic), "-o", str(tmp_path / "y.png"), "--lose-seed", "2"]) != 0
    assert "go with --lose" in capsys.readouterr().err
    with pytest.raises(LicodecError, match="lost fraction"):
        api.decompress(data, lost=-0.1)


def test_loss_benchmark_runs(tmp_path, images):
    with_prior = make_untrained("vqgan", **TINY, **PRIOR)
    activate(with_prior.prior)
    export_weights(with_prior, "vqgan", tmp_path / "w")
    spec = importlib.util.spec_from_file_location("licodec_benchmark_vq_loss", REPO / "benchmarks" / "vq_loss.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "vq_loss.json"
    assert bench.main(["--weights", str(tmp_path / "w"), "--data", str(images), "--images", "2", "--crop", "64",
                       "--quality", "2", "--metrics", "psnr,ms-ssim,ssimulacra2,swd", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["prior"] and len(result["images"]) == 2
    assert "ms-ssim-rgb" in result["skipped_metrics"]  # 64 px crops are too small for MS-SSIM
    table = result["results"]["2"]
    assert set(table) == {"prior", "neighbour"} and set(table["prior"]) == {"0.0", "0.05", "0.1", "0.2", "0.3"}
    assert table["prior"]["0.0"]["psnr-rgb"] == table["neighbour"]["0.0"]["psnr-rgb"]
    assert table["prior"]["0.0"]["index_accuracy"] is None and 0 <= table["prior"]["0.3"]["index_accuracy"] <= 1
    assert {"ssimulacra2", "swd"} <= set(table["prior"]["0.2"])
