"""Registry-driven smoke tests: every registered image codec, untrained, through the whole protocol
(video codecs code frame sequences: tests/test_video_codec.py)."""

import pytest
import torch

from conftest import make_untrained
from licodec.codec.base import CodecOutput
from licodec.entropy.container import Bitstream
from licodec.zoo import get_entry, list_models

MODELS = [n for n in list_models() if get_entry(n).family != "video"]


@pytest.fixture(scope="module", params=MODELS)
def untrained(request):
    return make_untrained(request.param)


def _mid_quality(codec) -> float:
    """A quality between the integers where the codec has them (codebook codecs have none)."""
    return 3.0 if getattr(codec, "integer_qualities", False) else 3.5


def _needs_gains(codec) -> None:
    if not hasattr(codec, "_gains"):
        pytest.skip(f"{codec.codec_id} has no gain vectors or entropy-coded latent of its own (its own test file covers it)")


def test_registry_lists_the_default():
    from licodec.zoo import DEFAULT_MODEL

    assert DEFAULT_MODEL in MODELS


def test_forward_returns_typed_output(untrained):
    untrained.train()
    try:
        x = torch.rand(2, 3, 64, 128)
        out = untrained(x, torch.tensor([1.0, untrained.quality_range[1]]))
    finally:
        untrained.eval()
    assert isinstance(out, CodecOutput)
    assert out.x_hat.shape == x.shape
    assert out.bits.shape == (2,) and bool((out.bits > 0).all())
    for lik in out.likelihoods.values():
        assert lik.shape[0] == 2 and bool(((lik > 0) & (lik <= 1)).all())


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (13, 1), (63, 65), (77, 130)])
def test_round_trip_any_size(untrained, h, w):
    x = torch.rand(1, 3, h, w)
    bitstream = untrained.compress(x, _mid_quality(untrained))
    assert (bitstream.height, bitstream.width) == (h, w)
    parsed = Bitstream.from_bytes(bitstream.to_bytes())
    x_hat = untrained.decompress(parsed)
    assert x_hat.shape == x.shape
    assert float(x_hat.min()) >= 0 and float(x_hat.max()) <= 1


def test_decoder_matches_encoder_reconstruction(untrained):
    """The decoder's y_hat equals the encoder's: decoding is exact, not approximate."""
    _needs_gains(untrained)
    x = torch.rand(1, 3, 64, 64)
    gain, _ = untrained._gains(torch.tensor([2.0]))
    y = untrained.g_a(x) * gain
    streams, y_hat_enc = untrained.latent.compress(y)
    y_hat_dec = untrained.latent.decompress(streams, untrained._latent_shape(64, 64))
    assert torch.equal(y_hat_enc, y_hat_dec)


def test_tiled_round_trip():
    codec = make_untrained(tile=64)
    x = torch.rand(1, 3, 100, 150)
    bitstream = codec.compress(x, 2.0)
    assert bitstream.tile == 64 and len(bitstream.streams) == 2 * 2 * 3
    assert codec.decompress(Bitstream.from_bytes(bitstream.to_bytes())).shape == x.shape


def test_quality_out_of_range_is_refused(untrained):
    from licodec.errors import LicodecError

    for q in (0.5, untrained.quality_range[1] + 0.1, float("nan")):
        with pytest.raises(LicodecError, match="quality"):
            untrained.compress(torch.rand(1, 3, 8, 8), q)


def test_gain_interpolation_is_continuous(untrained):
    _needs_gains(untrained)
    g3, _ = untrained._gains(torch.tensor([3.0]))
    g3e, _ = untrained._gains(torch.tensor([3.0 + 1e-4]))
    g8, _ = untrained._gains(torch.tensor([untrained.quality_range[1]]))
    assert torch.allclose(g3, g3e, rtol=1e-3)
    assert not torch.allclose(g3, g8)


def test_bitstream_names_the_codec(untrained):
    b = untrained.compress(torch.rand(1, 3, 16, 16), 1.0)
    assert b.codec_id in MODELS


def test_decoding_is_deterministic_across_runs(untrained, rng):
    from conftest import random_image

    x = torch.from_numpy(random_image(rng, 96, 80)).permute(2, 0, 1)[None].float() / 255
    q = min(5.0, untrained.quality_range[1])
    b = Bitstream.from_bytes(untrained.compress(x, q).to_bytes())
    assert torch.equal(untrained.decompress(b), untrained.decompress(b))
    assert untrained.compress(x, q).to_bytes() == b.to_bytes()


def test_exported_weights_carry_their_config(tmp_path):
    """The config is stored in the weights file's header as well as in config.json, so the weights'
    hash covers it: a config.json edited after export is refused, with the fields named."""
    import json

    from licodec.errors import WeightsError
    from licodec.zoo import create_model, export_weights

    out = export_weights(create_model("hyperprior-vr", pretrained=False), "hyperprior-vr", tmp_path / "w")
    assert create_model("hyperprior-vr", weights_dir=out).config.lambda_max == 0.18
    meta = json.loads((out / "config.json").read_text())
    meta["config"]["lambda_max"] = 0.2
    (out / "config.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match=r"does not match the config its weights were exported with \(lambda_max\)"):
        create_model("hyperprior-vr", weights_dir=out)
