"""The space-channel context latent codec: exact coding, growth from the hyperprior, thread-count identity."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import SAMPLE, make_untrained, random_image
from licodec.codec.base import pad_to_multiple
from licodec.codec.context import SpaceChannelContextLatentCodec, anchor_mask
from licodec.entropy import rans
from licodec.entropy.container import Bitstream
from licodec.errors import BitstreamError
from licodec.image_io import read_image

SMALL = dict(N=32, M=48, context_groups=(8, 8, 16, 16), context_hidden=24)


def active_context(seed: int = 0, **overrides):
    """A small hyperprior-ctx with random weights whose context networks are switched on
    (their last layers start at zero, which would leave the context unused)."""
    model = make_untrained("hyperprior-ctx", **{**SMALL, **overrides})
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for net in model.latent.param_nets:
            net[-1].weight.copy_(torch.randn(net[-1].weight.shape, generator=g) * 0.3)
            net[-1].bias.copy_(torch.randn(net[-1].bias.shape, generator=g) * 0.3)
    model.freeze()
    return model


def test_anchor_mask_is_a_checkerboard():
    m = anchor_mask(3, 4)
    assert m.tolist() == [[True, False, True, False], [False, True, False, True], [True, False, True, False]]


def test_groups_must_sum_to_the_latent_channels():
    from licodec.zoo.models import ContextHyperpriorConfig

    with pytest.raises(ValueError, match="sum to M"):
        ContextHyperpriorConfig(M=64, context_groups=(16, 16))


def test_context_changes_the_entropy_parameters():
    """Switching the context on changes the rate: the parameter networks are really used."""
    model = active_context()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        on = model(x, 8.0).bits
        for net in model.latent.param_nets:
            net[-1].weight.zero_()
            net[-1].bias.zero_()
        off = model(x, 8.0).bits
    assert not torch.allclose(on, off)


@pytest.mark.parametrize("quality", [1.0, 8.0])
def test_decoder_reproduces_the_encoders_latent_exactly(quality, rng):
    model = active_context()
    for x in (torch.rand(1, 3, 64, 128), torch.from_numpy(random_image(rng, 96, 80)).permute(2, 0, 1)[None] / 255):
        gain, _ = model._gains(torch.tensor([quality]))
        y = model.g_a(pad_to_multiple(x, model.stride)[0]) * gain
        streams, y_hat_enc = model.latent.compress(y)
        z_shape = (1, model.config.N, y.shape[2] // 4, y.shape[3] // 4)
        y_hat_dec = model.latent.decompress(streams, z_shape)
        assert torch.equal(y_hat_enc, y_hat_dec)


def test_training_forward_matches_coding():
    """The training graph (straight-through rounding) computes the coder's y_hat and, with the
    table scales, an estimate close to the real bytes."""
    model = active_context()
    x = torch.rand(1, 3, 128, 128)
    gain, _ = model._gains(torch.tensor([3.0]))
    y = model.g_a(x) * gain
    with torch.no_grad():
        y_hat_train, _ = model.latent(y)
        streams, y_hat_code = model.latent.compress(y)
    assert torch.allclose(y_hat_train, y_hat_code, atol=1e-4)
    estimate = model.estimate_bits(x, 3.0)
    real = 8 * sum(len(v) for v in streams.values())
    # random weights make improbable symbols common; the coder's 16-bit tables charge them at
    # most ~16 bits where the estimate charges their full -log2 p, so real bytes may be lower
    assert 0.85 * estimate <= real <= 1.01 * estimate + 8 * 16


def test_stream_decoder_rejects_damage():
    model = active_context()
    x = torch.rand(1, 3, 64, 64)
    b = model.compress(x, 5.0)
    good = b.streams["y"]
    for bad in (good[:-3], good + b"\x00\x01", bytes([good[0] ^ 0xFF]) + good[1:]):
        b.streams["y"] = bad
        with pytest.raises(BitstreamError):
            model.decompress(Bitstream.from_bytes(b.to_bytes()))


def test_stream_decoder_counts_symbols():
    tables = make_untrained("hyperprior-ctx", **SMALL).latent.y_model.rans_tables()
    symbols = np.arange(-3, 4, dtype=np.int32).repeat(10)
    indexes = np.full_like(symbols, 5)
    data = rans.encode(symbols, indexes, tables)
    dec = rans.StreamDecoder(data, tables, total=symbols.size)
    assert (dec.decode(indexes[:30]) == symbols[:30]).all()
    with pytest.raises(BitstreamError, match="of 70 symbols"):
        dec.finish()
    with pytest.raises(BitstreamError, match="more symbols"):
        dec.decode(np.full(41, 5, dtype=np.int32))


def test_grown_from_the_shipped_hyperprior_codes_identically():
    """Grown into more latent channels and a context model, the codec starts out computing
    what the hyperprior computes: same reconstruction, same size (the symbols are the same,
    coded in another order, plus the added channels' zeros). Same up to float rounding: the
    synthesis sums over the added (zero) channels too, and on an AVX2 CPU oneDNN's kernels for
    the wider convolution accumulate in another order (bit-exact on AVX-512/AMX)."""
    import licodec
    from licodec.zoo import create_model

    core = licodec.load("hyperprior-vr")
    grown = create_model("hyperprior-ctx", pretrained=False)
    assert grown.config.M > core.config.M
    grown.grow_from(core)
    grown.freeze()
    x = read_image(SAMPLE).tensor()[..., :128, :192]
    with torch.no_grad():
        a, b = core(x, 5.0), grown(x, 5.0)
    torch.testing.assert_close(b.x_hat, a.x_hat, rtol=0, atol=1e-5)
    assert float(b.bits) == pytest.approx(float(a.bits), rel=1e-5)
    ca, cb = core.compress(x, 5.0), grown.compress(x, 5.0)
    assert ca.streams["z"] == cb.streams["z"]
    assert abs(len(cb.streams["y"]) - len(ca.streams["y"])) <= 4
    torch.testing.assert_close(grown.decompress(cb), core.decompress(ca), rtol=0, atol=1e-5)


_HASH_BYTES = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
sys.path.insert(0, sys.argv[2])
from test_context import coded_bytes_digest
print(coded_bytes_digest())
"""


def coded_bytes_digest() -> str:
    """SHA-256 of the bytes of a context model with random weights, on noise and a photo, q1 and q8."""
    model = active_context(seed=3)
    rng = np.random.default_rng(7)
    images = [torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(5)),
              torch.from_numpy(rng.integers(0, 256, (3, 70, 130), dtype=np.uint8))[None].float() / 255,
              read_image(SAMPLE).tensor()[..., 100:228, 200:392]]
    h = hashlib.sha256()
    for x in images:
        for q in (1.0, 8.0):
            h.update(model.compress(x, q).to_bytes())
    return h.hexdigest()


def test_bytes_do_not_depend_on_the_thread_count():
    """Tables are chosen by float64 networks: 1 and 2 threads write the same bytes, noise included."""
    here = str(__import__("pathlib").Path(__file__).parent)
    digests = {t: subprocess.run([sys.executable, "-c", _HASH_BYTES, str(t), here], check=True,
                                 capture_output=True, text=True).stdout.strip() for t in (1, 2)}
    assert digests[1] == digests[2] and len(digests[1]) == 64


def test_latent_codec_is_composed_not_inherited():
    model = make_untrained("hyperprior-ctx", **SMALL)
    assert isinstance(model.latent, SpaceChannelContextLatentCodec)
    assert type(model).__name__ == "VariableRateHyperprior"
