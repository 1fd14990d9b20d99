"""The generative decoder (licodec.codec.flow): realism 0 is the base decode, seeded decodes
repeat, the file is the base codec's, training through the CLI, decoding through the CLI and eval."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import licodec
from conftest import random_image
from licodec import api
from licodec.codec.flow import (ENCODER_SWD_SEED, TEXTURE_STREAM, FlowDecoderConfig, file_noise_seed, grain_seed, low_band,
                                 noise_seed, search_window)
from licodec.entropy.container import Bitstream
from licodec.errors import BitstreamError, LicodecError, WeightsError
from licodec.zoo import create_model

SMALL = dict(channels=(16, 24), blocks=(1, 1), embed=32)


@pytest.fixture(scope="module")
def flow():
    torch.manual_seed(0)
    model = create_model("hyperprior-vr-flow", pretrained=False, config=FlowDecoderConfig(**SMALL))
    with torch.no_grad():  # a generator that changes its input (a new one starts at zero output)
        torch.nn.init.normal_(model.unet.head.weight, std=0.05)
    return model


@pytest.fixture(scope="module")
def photo():
    rgb = random_image(np.random.default_rng(3), 72, 100)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def test_the_file_is_the_base_codecs_and_realism_zero_is_its_decode(flow, photo):
    b = Bitstream.from_bytes(flow.compress(photo, 2.0).to_bytes())
    base = licodec.load("hyperprior-vr")
    assert b.codec_id == "hyperprior-vr" and b.weights_sha256 == base.weights_sha256
    assert b.to_bytes() == base.compress(photo, 2.0).to_bytes()
    assert torch.equal(flow.decompress(b, realism=0.0), base.decompress(b))
    full = flow.decompress(b, realism=1.0)
    assert full.shape == photo.shape and float(full.min()) >= 0 and float(full.max()) <= 1
    assert not torch.equal(full, base.decompress(b))


def test_seeded_decodes_repeat_and_follow_the_file(flow, photo):
    b1 = flow.compress(photo, 2.0)
    b2 = flow.compress(photo.flip(-1), 2.0)
    assert noise_seed(b1.to_bytes()) != noise_seed(b2.to_bytes())
    first = flow.decompress(Bitstream.from_bytes(b1.to_bytes()), realism=0.7, steps=3)
    torch.manual_seed(123)  # the global generator plays no part
    assert torch.equal(first, flow.decompress(Bitstream.from_bytes(b1.to_bytes()), realism=0.7, steps=3))
    assert not torch.equal(first, flow.decompress(b1, realism=0.7, steps=2))


def test_realism_moves_the_decode_away_from_the_base(flow, photo):
    b = flow.compress(photo, 1.0)
    base = flow.decompress(b, realism=0.0)
    moved = [float((flow.decompress(b, realism=r) - base).abs().mean()) for r in (0.25, 0.5, 1.0)]
    assert 0 < moved[0] < moved[1] < moved[2]


@pytest.mark.parametrize("realism,steps,match", [(1.5, None, "realism"), (-0.1, None, "realism"),
                                                  (float("nan"), None, "realism"), (0.5, 0, "steps"),
                                                  (0.5, 2.5, "steps")])
def test_bad_realism_or_steps_are_refused(flow, photo, realism, steps, match):
    b = flow.compress(photo, 1.0)
    with pytest.raises(LicodecError, match=match):
        flow.decompress(b, realism=realism, steps=steps)


def test_quality_outside_the_trained_range_is_refused(flow, photo):
    with pytest.raises(LicodecError, match="quality must be between 1 and 4"):
        flow.compress(photo, 6.0)


def test_other_base_weights_are_refused(photo):
    model = create_model("hyperprior-vr-flow", pretrained=False,
                         config=FlowDecoderConfig(**SMALL, base_weights="0123456789abcdef"))
    with pytest.raises(WeightsError, match="trained on hyperprior-vr weights 0123456789abcdef"):
        model.compress(photo, 1.0)


def test_decoding_another_codecs_file_is_refused(flow):
    b = licodec.load("hyperprior-ctx").compress(torch.rand(1, 3, 32, 32), 1.0)
    with pytest.raises(LicodecError, match="cannot decode a hyperprior-ctx file"):
        flow.decompress(b)


def test_forged_geometry_is_refused_before_generation(flow):
    from licodec.errors import BitstreamError

    base = licodec.load("hyperprior-vr")
    forged = Bitstream(codec_id="hyperprior-vr", weights_sha256=base.weights_sha256, quality=2.0, height=16384,
                       width=16384, tile=0, streams={"z": bytes(8), "y": bytes(8)})
    with pytest.raises(BitstreamError, match="declares a 16384x16384 image in one tile"):
        flow.decompress(forged, realism=1.0)


def test_on_the_vq_codec_realism_zero_is_its_decode_and_qualities_are_integers(photo):
    from licodec.zoo.models import VQFlowDecoderConfig

    torch.manual_seed(1)
    model = create_model("vqgan-flow", pretrained=False, config=VQFlowDecoderConfig(**SMALL))
    with torch.no_grad():
        torch.nn.init.normal_(model.unet.head.weight, std=0.05)
    base = licodec.load("vqgan")
    b = Bitstream.from_bytes(model.compress(photo, 3).to_bytes())
    assert b.codec_id == "vqgan" and b.to_bytes() == base.compress(photo, 3).to_bytes()
    assert torch.equal(model.decompress(b, realism=0.0), base.decompress(b))
    full = model.decompress(b, realism=1.0, steps=2)
    assert full.shape == photo.shape and not torch.equal(full, base.decompress(b))
    assert torch.equal(full, model.decompress(Bitstream.from_bytes(b.to_bytes()), realism=1.0, steps=2))
    with pytest.raises(LicodecError, match="integer"):
        model.compress(photo, 2.5)


def test_training_draws_each_integer_quality_of_a_codebook_base_equally_often():
    from licodec.train.flow_objective import FlowObjective
    from licodec.train.trainer import TrainConfig
    from licodec.zoo.models import VQFlowDecoderConfig

    model = create_model("vqgan-flow", pretrained=False, config=VQFlowDecoderConfig(**SMALL))
    objective = FlowObjective(model, TrainConfig(data="", out="", model="vqgan-flow", crop=64), torch.device("cpu"))
    drawn = objective.qualities(torch.from_numpy(np.random.default_rng(0).uniform(1, 8, 80000)))
    assert torch.equal(drawn, drawn.round())
    counts = np.bincount(drawn.long().numpy(), minlength=9)[1:]
    assert counts.min() > 0.95 * 10000 and counts.max() < 1.05 * 10000
    continuous = create_model("hyperprior-vr-flow", pretrained=False, config=FlowDecoderConfig(**SMALL))
    q = torch.tensor([1.3, 3.7])
    assert torch.equal(FlowObjective(continuous, TrainConfig(data="", out="", model="hyperprior-vr-flow", crop=64),
                                     torch.device("cpu")).qualities(q), q)


def test_no_generator_for_a_codec_is_a_clear_error(tmp_path):
    from licodec.cli.main import main

    data = licodec.compress(np.zeros((16, 16, 3), np.uint8), 1.0, model="hyperprior-ctx")
    (tmp_path / "a.lic").write_bytes(data)
    with pytest.raises(LicodecError, match="no generative decoder exists for hyperprior-ctx"):
        api.decompress(data, realism=0.5)
    assert main(["decode", str(tmp_path / "a.lic"), "--realism", "0.5"]) != 0
    assert not (tmp_path / "a.png").exists()
    assert main(["decode", str(tmp_path / "a.lic"), "--realism", "2"]) != 0
    assert main(["decode", str(tmp_path / "a.lic"), "--steps", "2"]) != 0
    assert not (tmp_path / "a.png").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A flow decoder trained for 3 steps through the CLI (then resumed to 4), and a weights
    root holding it and the shipped hyperprior-vr as if both shipped."""
    from licodec.cli.main import main

    root = tmp_path_factory.mktemp("flow")
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        Image.fromarray(random_image(rng, 160, 200)).save(data / f"{i}.png")
    run = root / "run"
    common = ["train", "--model", "hyperprior-vr-flow", "--data", str(data), "--crop", "64", "--batch", "2",
              "--no-bf16", "--log-every", "1", "--out", str(run)]
    assert main(common + ["--steps", "3"]) == 0
    assert main(common + ["--steps", "4"]) == 0
    weights = root / "weights"
    weights.mkdir()
    shutil.copytree(licodec.zoo.get_entry("hyperprior-vr").weights_dir, weights / "hyperprior-vr")
    shutil.copytree(run / "export", weights / "hyperprior-vr-flow")
    return {"run": run, "weights": weights, "data": data}


def test_training_logs_resumes_and_exports(trained):
    log = [json.loads(line) for line in (trained["run"] / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) and r["base_psnr"] > 10 for r in log)
    meta = json.loads((trained["run"] / "export" / "config.json").read_text())
    assert meta["codec"] == "hyperprior-vr-flow" and meta["training"]["steps"] == 4
    assert meta["config"]["base_weights"] == licodec.load("hyperprior-vr").weights_sha256
    codec = create_model("hyperprior-vr-flow", weights_dir=trained["run"] / "export")
    assert not any(k.startswith("_base") for k in codec.state_dict())  # the base's weights are not its own


def test_flow_training_refuses_codebook_options(trained):
    from licodec.cli.main import main

    assert main(["train", "--model", "hyperprior-vr-flow", "--data", str(trained["data"]), "--out",
                 str(trained["run"].parent / "bad"), "--steps", "1", "--adv-start", "0"]) != 0


def test_adversarial_fine_tuning_trains_the_discriminator_and_resumes(trained):
    from licodec.cli.main import main

    run = trained["run"].parent / "adv"
    common = ["train", "--model", "hyperprior-vr-flow", "--data", str(trained["data"]), "--crop", "64", "--batch", "2",
              "--no-bf16", "--log-every", "1", "--out", str(run), "--init", str(trained["run"] / "export"),
              "--adv-start", "1", "--adv-weight", "0.5"]
    assert main(common + ["--steps", "2"]) == 0
    assert main(common + ["--steps", "3"]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert "d_loss" not in log[0] and all(np.isfinite(r[k]) for r in log[1:] for k in ("d_loss", "g_adv", "adv_lambda"))
    d_opt = torch.load(run / "checkpoint.pt", weights_only=False)["objective"]["d_opt"]
    assert {int(s["step"]) for s in d_opt["state"].values()} == {2}  # steps 1 and 2: resumed, not restarted
    export = create_model("hyperprior-vr-flow", weights_dir=run / "export")
    assert not any("disc" in k for k in export.state_dict())  # training state only
    plain = torch.load(trained["run"] / "checkpoint.pt", weights_only=False)["objective"]
    assert "disc" not in plain  # no discriminator in a run without --adv-start


def _fine_tune(trained, name: str, *options: str) -> tuple:
    """An adversarial fine-tune (from step 0) of the tiny trained flow with ``options``: its run
    folder and log records."""
    from licodec.cli.main import main

    run = trained["run"].parent / name
    assert main(["train", "--model", "hyperprior-vr-flow", "--data", str(trained["data"]), "--crop", "64", "--batch",
                 "2", "--no-bf16", "--log-every", "1", "--out", str(run), "--init", str(trained["run"] / "export"),
                 "--adv-start", "0", *options]) == 0
    return run, [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_adversarial_loss_on_the_decoders_own_sample(trained):
    run, log = _fine_tune(trained, "adv-sample", "--adv-on-sample", "--steps", "2")
    assert all(np.isfinite(r[k]) for r in log for k in ("sample_psnr", "d_loss", "g_adv"))
    assert "--adv-on-sample" in json.loads((run / "export" / "config.json").read_text())["training"]["command"]


def test_discriminator_warmup_keeps_the_flow_on_flow_matching(trained):
    from licodec.cli.main import main

    run, log = _fine_tune(trained, "adv-warm", "--disc-warmup", "2", "--steps", "3")
    assert [("g_adv" in r) for r in log] == [False, False, True]
    assert all(np.isfinite(r["d_loss"]) for r in log)  # the discriminator trains from the start
    assert all(r["loss"] == r["fm"] for r in log[:2])
    assert "--disc-warmup 2" in json.loads((run / "export" / "config.json").read_text())["training"]["command"]
    assert main(["train", "--model", "hyperprior-vr", "--data", str(trained["data"]), "--out",
                 str(run.parent / "no"), "--disc-warmup", "2", "--steps", "1"]) != 0
    assert not (run.parent / "no").exists()


def test_integrate_with_grad_last_matches_the_sampler_and_differentiates_only_the_last_step(trained):
    model = create_model("hyperprior-vr-flow", weights_dir=trained["run"] / "export")
    x_b = torch.rand(1, 3, 32, 32)
    q = torch.full((1,), 2.0)
    x1 = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = model.integrate(x1, x_b, q, 3)
    calls = []
    handle = model.unet.register_forward_hook(lambda m, i, o: calls.append(o.requires_grad))
    try:
        last = model.integrate(x1, x_b, q, 3, grad_last=True)
    finally:
        handle.remove()
    assert calls == [False, False, True]
    assert torch.allclose(last, plain, atol=1e-6)


def test_cli_decodes_a_file_with_realism(trained, tmp_path, monkeypatch):
    from licodec.cli.main import main
    from licodec.zoo import registry

    monkeypatch.setattr(registry, "WEIGHTS_ROOT", trained["weights"])
    monkeypatch.setattr(api, "_cache", {})
    src = tmp_path / "p.png"
    Image.fromarray(random_image(np.random.default_rng(9), 48, 64)).save(src)
    assert main(["encode", str(src), "-m", "hyperprior-vr", "-q", "2", "-o", str(tmp_path / "p.lic")]) == 0
    outs = {}
    for name, extra in {"plain": [], "r0": ["--realism", "0"], "r1a": ["--realism", "1", "--steps", "2"],
                        "r1b": ["--realism", "1", "--steps", "2"]}.items():
        assert main(["decode", str(tmp_path / "p.lic"), "-o", str(tmp_path / f"{name}.png"), *extra]) == 0
        outs[name] = np.asarray(Image.open(tmp_path / f"{name}.png"))
    assert np.array_equal(outs["plain"], outs["r0"])
    assert np.array_equal(outs["r1a"], outs["r1b"])
    image = licodec.decompress((tmp_path / "p.lic").read_bytes(), realism=1.0, steps=2)
    assert np.array_equal(np.asarray(image), outs["r1a"])


def test_eval_runs_a_realism_sweep(trained, tmp_path, monkeypatch):
    """The realism settings of one generator decode one file: each image is encoded once for
    them (and once for the base codec)."""
    from licodec.cli.main import main
    from licodec.eval.codecs import EvalCodec

    encodes = []
    real_encode = EvalCodec.encode
    monkeypatch.setattr(EvalCodec, "encode", lambda self, rgb, q: encodes.append(self.name) or real_encode(self, rgb, q))
    flow = f"flow={trained['run'] / 'export'}"
    out = tmp_path / "eval"
    assert main(["eval", str(trained["data"]), "--limit", "1", "-c", "hyperprior-vr", flow, f"{flow}:r0",
                 "-q", "hyperprior-vr=2", "-q", "flow=2", "-q", "flow:r0=2", "--out", str(out), "-m",
                 "--no-progress"]) == 0
    curves = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    base, r0, r1 = (curves[k]["results"] for k in ("hyperprior-vr", "flow:r0", "flow"))
    assert r0["bpp"] == base["bpp"] == r1["bpp"]
    assert r0["psnr-rgb"] == pytest.approx(base["psnr-rgb"])
    assert r1["psnr-rgb"] != pytest.approx(base["psnr-rgb"])
    assert sorted(encodes) == ["flow", "hyperprior-vr"]


def test_realism_scales_one_generated_residual(flow, photo):
    """Realism R adds R times the full sample's residual to the base decode (same noise, same path)."""
    b = flow.compress(photo, 1.0)
    base = flow.decompress(b, realism=0.0)
    full = flow.decompress(b, realism=1.0, steps=2)
    half = flow.decompress(b, realism=0.5, steps=2)
    inside = (full > 0) & (full < 1)  # where clamping did not cut the full sample's residual
    assert inside.float().mean() > 0.5
    assert torch.allclose(half[inside], (base + 0.5 * (full - base))[inside], atol=1e-5)


def test_low_band_keeps_constants_and_drops_the_finest_checkerboard():
    """The pyramid's low band of a constant is the constant; of a Nyquist checkerboard, zero
    (the binomial filter's response there is 0); so the detail is 0 and the checkerboard."""
    const = torch.full((1, 3, 32, 48), 0.3)
    assert torch.allclose(low_band(const, 3), const, atol=1e-6)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(48), indexing="ij")
    checker = ((-1.0) ** (yy + xx)).expand(1, 3, 32, 48)
    assert torch.allclose(low_band(checker, 2), torch.zeros_like(checker), atol=1e-6)
    assert torch.equal(low_band(checker, 0), checker)


def test_low_band_octaves_remove_the_generated_residuals_coarse_content(photo):
    """With ``low_band_octaves = k`` the decode is the base plus the full sample's residual minus
    its low band (same noise); the setting is validated."""
    torch.manual_seed(0)
    model = create_model("hyperprior-vr-flow", pretrained=False, config=FlowDecoderConfig(**SMALL))
    with torch.no_grad():
        torch.nn.init.normal_(model.unet.head.weight, std=0.05)
        torch.nn.init.constant_(model.unet.head.bias, 0.2)  # a coarse offset the low-band removal takes away
    b = model.compress(photo, 1.0)
    base = model.decompress(b, realism=0.0)
    whole = model.decompress(b, realism=0.5)
    model.config = dataclasses.replace(model.config, low_band_octaves=1)
    detail = model.decompress(b, realism=0.5)
    offset = abs(float((whole - base).mean()))
    assert offset > 0.005  # the bias moved the whole decode
    assert abs(float((detail - base).mean())) < 0.2 * offset
    assert not torch.equal(detail, whole)
    with pytest.raises(ValueError, match="low_band_octaves"):
        FlowDecoderConfig(**SMALL, low_band_octaves=2)  # two levels: a stride of 4, one octave at most
    tiny = torch.randn(1, 3, 16, 16)  # one stride of the shipped 4-level U-Net, at its 3 octaves
    assert low_band(tiny, 3).shape == tiny.shape


def test_sampler_settings_may_be_chosen_after_export(tmp_path):
    """Temperature, steps and low_band_octaves are written into config.json after export (the
    weights' own fields stay checked against the config stored in the weights file)."""
    from licodec.zoo import export_weights

    out = export_weights(create_model("hyperprior-vr-flow", pretrained=False, config=FlowDecoderConfig(**SMALL)),
                         "hyperprior-vr-flow", tmp_path / "w")
    meta = json.loads((out / "config.json").read_text())
    meta["config"].update(temperature=0.8, steps=2, low_band_octaves=1)
    (out / "config.json").write_text(json.dumps(meta))
    config = create_model("hyperprior-vr-flow", weights_dir=out).config
    assert (config.temperature, config.steps, config.low_band_octaves) == (0.8, 2, 1)
    meta["config"]["embed"] = 48
    (out / "config.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match=r"exported with \(embed\)"):
        create_model("hyperprior-vr-flow", weights_dir=out)


@pytest.fixture(scope="module")
def textured():
    """A generator whose config lets the encoder choose the temperature per image."""
    torch.manual_seed(0)
    config = FlowDecoderConfig(**SMALL, texture_temperatures=(0.3, 0.65, 1.0), texture_psnr_budget=100.0)
    model = create_model("hyperprior-vr-flow", pretrained=False, config=config)
    with torch.no_grad():
        torch.nn.init.normal_(model.unet.head.weight, std=0.05)
    return model


def _with_texture(bitstream, value: bytes):
    return dataclasses.replace(bitstream, streams={**{k: v for k, v in bitstream.streams.items()
                                                       if k != TEXTURE_STREAM}, TEXTURE_STREAM: value})


def test_texture_side_information_is_one_byte_the_decoder_follows(textured, photo):
    """The encoder writes the chosen temperature as one byte (units of 1/200); the base codec
    decodes the file as before; the generative decode samples at that temperature with the noise
    of the file without the byte, which is the encoder's own trial: the choice is the candidate
    with the lowest SWD (encoder seed) as the decoder really decodes it."""
    from licodec.eval.pyramid_metrics import swd

    b = Bitstream.from_bytes(textured.compress(photo, 2.0).to_bytes())
    base = licodec.load("hyperprior-vr")
    plain = base.compress(photo, 2.0)
    assert set(b.streams) == set(plain.streams) | {TEXTURE_STREAM} and len(b.streams[TEXTURE_STREAM]) == 1
    assert file_noise_seed(b) == noise_seed(plain.to_bytes())
    assert torch.equal(base.decompress(b), base.decompress(plain))
    assert torch.equal(textured.decompress(b, realism=0.0), base.decompress(plain))
    ref = (photo[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    scores = {}
    for t in textured.config.texture_temperatures:
        dec = textured.decompress(_with_texture(b, bytes([round(200 * t)])), realism=1.0)
        scores[t] = swd(ref, (dec[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), seed=ENCODER_SWD_SEED)
    assert len(set(scores.values())) == 3  # the temperature changes the decode
    assert b.streams[TEXTURE_STREAM][0] == round(200 * min(scores, key=scores.get))
    # a file without the byte decodes at the config's temperature, with the same noise
    at_default = textured.decompress(plain, realism=1.0)
    assert torch.equal(at_default, textured.decompress(_with_texture(b, bytes([round(200 * textured.config.temperature)])),
                                                       realism=1.0))


def test_the_psnr_budget_limits_the_choice(textured, photo):
    """With a budget of 0 dB no sample qualifies (each loses PSNR against the base decode here),
    so the encoder keeps the candidate that loses least."""
    model = create_model("hyperprior-vr-flow", pretrained=False,
                         config=dataclasses.replace(textured.config, texture_psnr_budget=0.0))
    model.load_state_dict(textured.state_dict())
    b = model.compress(photo, 2.0)
    from licodec.eval.metrics import psnr

    ref = (photo[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    losses = {}
    for t in model.config.texture_temperatures:
        dec = model.decompress(_with_texture(b, bytes([round(200 * t)])), realism=1.0)
        losses[t] = -psnr((dec[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), ref)
    assert b.streams[TEXTURE_STREAM][0] == round(200 * min(losses, key=losses.get))


@pytest.mark.parametrize("value", [b"", b"\x00", b"\xc9", b"\x80\x00", b"\x80\x00\x01", b"\x80\x64\x00\x00\x00"])
def test_a_malformed_texture_byte_is_refused_before_decoding(textured, photo, value):
    b = _with_texture(textured.compress(photo, 2.0), value)
    with pytest.raises(BitstreamError, match="texture sub-stream"):
        textured.decompress(Bitstream.from_bytes(b.to_bytes()), realism=1.0)


@pytest.fixture(scope="module")
def gained(textured):
    """``textured`` with the residual's gain chosen too (side information of two bytes)."""
    model = create_model("hyperprior-vr-flow", pretrained=False,
                         config=dataclasses.replace(textured.config, texture_temperatures=(0.3, 1.0),
                                                    texture_gains=(0.5, 1.0, 1.5)))
    model.load_state_dict(textured.state_dict())
    return model


def test_texture_gain_is_a_second_byte_the_decoder_follows(gained, photo):
    """With ``texture_gains`` the encoder writes (temperature, gain) as two bytes and picks the pair
    with the lowest SWD (encoder seed) as the decoder decodes it; the gain scales the generated
    residual, realism scales it again, and a gain of 1 decodes as the one-byte stream does."""
    from licodec.eval.pyramid_metrics import swd

    b = Bitstream.from_bytes(gained.compress(photo, 2.0).to_bytes())
    assert len(b.streams[TEXTURE_STREAM]) == 2
    ref = (photo[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    scores = {}
    for t in gained.config.texture_temperatures:
        for g in gained.config.texture_gains:
            dec = gained.decompress(_with_texture(b, bytes([round(200 * t), round(100 * g)])), realism=1.0)
            scores[t, g] = swd(ref, (dec[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), seed=ENCODER_SWD_SEED)
    assert len(set(scores.values())) == 6  # both settings change the decode
    t, g = min(scores, key=scores.get)
    assert tuple(b.streams[TEXTURE_STREAM]) == (round(200 * t), round(100 * g))
    one_byte = gained.decompress(_with_texture(b, bytes([60])), realism=1.0)
    assert torch.equal(one_byte, gained.decompress(_with_texture(b, bytes([60, 100])), realism=1.0))
    assert torch.equal(gained.decompress(_with_texture(b, bytes([60, 200])), realism=0.5), one_byte)
    assert torch.equal(gained.decompress(_with_texture(b, bytes([60, 150])), realism=0.0),
                       licodec.load("hyperprior-vr").decompress(b))


def test_texture_draw_is_a_third_byte_the_decoder_follows(textured, photo):
    """With ``texture_draws`` the encoder picks the temperature on the file's own noise, then tries
    the other draws at it, and writes (temperature, gain 1, draw); the decoder samples the chosen
    draw, and the choice is the candidate with the lowest SWD (encoder seed) as decoded."""
    from licodec.eval.pyramid_metrics import swd

    model = create_model("hyperprior-vr-flow", pretrained=False,
                         config=dataclasses.replace(textured.config, texture_draws=3))
    model.load_state_dict(textured.state_dict())
    b = Bitstream.from_bytes(model.compress(photo, 2.0).to_bytes())
    ref = (photo[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    def score(t, k):
        dec = model.decompress(_with_texture(b, bytes([round(200 * t), 100, k])), realism=1.0)
        return swd(ref, (dec[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), seed=ENCODER_SWD_SEED)

    first = {(t, 0): score(t, 0) for t in model.config.texture_temperatures}
    best_t = min(first, key=first.get)[0]
    scores = {**first, **{(best_t, k): score(best_t, k) for k in (1, 2)}}
    assert len(set(scores.values())) == 5  # each draw changes the decode
    t, k = min(scores, key=scores.get)
    assert tuple(b.streams[TEXTURE_STREAM]) == (round(200 * t), 100, k)
    # draw 0 is the file's own noise: a one-byte stream decodes the same
    assert torch.equal(model.decompress(_with_texture(b, bytes([60, 100, 0])), realism=1.0),
                       model.decompress(_with_texture(b, bytes([60])), realism=1.0))
    with pytest.raises(ValueError, match="texture_draws must lie"):
        FlowDecoderConfig(**SMALL, texture_temperatures=(0.9,), texture_draws=0)
    with pytest.raises(ValueError, match="texture_draws need"):
        FlowDecoderConfig(**SMALL, texture_draws=2)
    assert "texture draws 3" in model.decode_settings and "draws" not in textured.decode_settings


def test_texture_grain_is_a_fourth_byte_the_decoder_follows(textured, photo):
    """With ``texture_grains`` the encoder writes (temperature, gain 1, draw 0, grain): the
    temperature with the lowest SWD (encoder seed) without grain, then the grain with the lowest
    SWD at that temperature, each as the decoder decodes it; the
    grain is white Gaussian noise of that deviation (8-bit code values) seeded by the file, times
    the realism, the same whatever the draw; grain 0 decodes as the one-byte stream does."""
    from licodec.eval.pyramid_metrics import swd

    model = create_model("hyperprior-vr-flow", pretrained=False,
                         config=dataclasses.replace(textured.config, texture_grains=(0.0, 4.0, 12.5)))
    model.load_state_dict(textured.state_dict())
    b = Bitstream.from_bytes(model.compress(photo, 2.0).to_bytes())
    assert len(b.streams[TEXTURE_STREAM]) == 4
    ref = (photo[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    def decode(t, s, draw=0, realism=1.0):
        return model.decompress(_with_texture(b, bytes([round(200 * t), 100, draw, round(16 * s)])), realism=realism)

    scores = {(t, s): swd(ref, (decode(t, s)[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), seed=ENCODER_SWD_SEED)
              for t in model.config.texture_temperatures for s in model.config.texture_grains}
    assert len(set(scores.values())) == 9  # both settings change the decode
    t = min(model.config.texture_temperatures, key=lambda t: scores[t, 0.0])  # first the temperature, without grain
    s = min(model.config.texture_grains, key=lambda s: scores[t, s])  # then the grain at it
    assert tuple(b.streams[TEXTURE_STREAM]) == (round(200 * t), 100, 0, round(16 * s))
    assert torch.equal(decode(0.3, 0.0), model.decompress(_with_texture(b, bytes([60])), realism=1.0))
    assert torch.equal(decode(0.3, 12.5, realism=0.0), licodec.load("hyperprior-vr").decompress(b))
    # the grain is the file's seeded noise times the deviation and the realism (clamping aside)
    st = model.stride
    generator = torch.Generator().manual_seed(grain_seed(file_noise_seed(b)))
    noise = torch.randn((1, 3, -(-72 // st) * st, -(-100 // st) * st), generator=generator)[..., :72, :100]
    for realism, draw in ((0.5, 0), (1.0, 0), (1.0, 1)):
        grained = decode(0.3, 12.5, draw, realism)
        added = grained - decode(0.3, 0.0, draw, realism)
        inside = ((decode(0.3, 0.0, draw, realism) - 0.5).abs() < 0.3) & (grained > 0) & (grained < 1)  # not clamped
        assert inside.float().mean() > 0.5
        assert torch.allclose(added[inside], (realism * 12.5 / 255 * noise)[inside], atol=1e-5)
    with pytest.raises(ValueError, match="multiples of 1/16"):
        FlowDecoderConfig(**SMALL, texture_temperatures=(0.9,), texture_grains=(0.03,))
    with pytest.raises(ValueError, match="multiples of 1/16"):
        FlowDecoderConfig(**SMALL, texture_temperatures=(0.9,), texture_grains=(16.0,))
    with pytest.raises(ValueError, match="texture_grains need texture"):
        FlowDecoderConfig(**SMALL, texture_grains=(1.0,))
    with pytest.raises(ValueError, match="a deviation above 0"):
        FlowDecoderConfig(**SMALL, texture_temperatures=(0.9,), texture_grains=(0.0,))
    assert "texture grains 0,4,12.5" in model.decode_settings and "grains" not in textured.decode_settings


@pytest.mark.parametrize("window", [0, 1600])
def test_the_encoder_scores_exactly_the_grain_the_decoder_adds(textured, photo, monkeypatch, window):
    """Each candidate the encoder scores is, pixel for pixel, the decoder's output for that choice:
    the temperature on the search window's part of the image, then each grain on the whole image
    (same grain noise, same crop, same rounding), also when the temperature was chosen on a window.
    The generated residual is set to zero so that a window's sample equals the full decode's there."""
    from licodec.eval import pyramid_metrics

    model = create_model("hyperprior-vr-flow", pretrained=False,
                         config=dataclasses.replace(textured.config, texture_temperatures=(0.5,),
                                                    texture_grains=(0.0, 2.0, 7.5), texture_window=window))
    model.load_state_dict(textured.state_dict())
    monkeypatch.setattr(model, "_residual", lambda padded, *a: torch.zeros_like(padded))
    scored = []
    real = pyramid_metrics.SWDReference.__call__
    monkeypatch.setattr(pyramid_metrics.SWDReference, "__call__", lambda self, dist: scored.append(dist) or real(self, dist))
    b = Bitstream.from_bytes(model.compress(photo, 2.0).to_bytes())
    top, left, h, w = search_window((72, 100), model.stride, window)
    assert (h, w) != (72, 100) if window else (h, w) == (72, 100)
    assert len(scored) == 4 and scored[0].shape == (h, w, 3)

    def pixels(s):
        dec = model.decompress(_with_texture(b, bytes([100, 100, 0, round(16 * s)])), realism=1.0)
        return (dec[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    assert np.array_equal(scored[0], pixels(0.0)[top : top + h, left : left + w])
    for s, dist in zip(model.config.texture_grains, scored[1:]):
        assert np.array_equal(dist, pixels(s))
    assert not np.array_equal(scored[1], scored[2])


def test_texture_gains_are_validated_and_named_in_the_decode_settings(gained, textured):
    with pytest.raises(ValueError, match="multiples of 1/100"):
        FlowDecoderConfig(**SMALL, texture_temperatures=(0.9,), texture_gains=(1.005,))
    with pytest.raises(ValueError, match="multiples of 1/100"):
        FlowDecoderConfig(**SMALL, texture_temperatures=(0.9,), texture_gains=(2.6,))
    with pytest.raises(ValueError, match="need texture_temperatures"):
        FlowDecoderConfig(**SMALL, texture_gains=(1.0,))
    assert "texture 0.3,1 texture gains 0.5,1,1.5 texture budget 100" in gained.decode_settings
    assert "gains" not in textured.decode_settings  # versions of results without gains are unchanged


def test_texture_temperatures_are_validated_and_named_in_the_decode_settings(textured, flow):
    with pytest.raises(ValueError, match="multiples of 1/200"):
        FlowDecoderConfig(**SMALL, texture_temperatures=(0.9, 0.9001))
    with pytest.raises(ValueError, match="texture_psnr_budget"):
        FlowDecoderConfig(**SMALL, texture_psnr_budget=-1.0)
    assert "texture 0.3,0.65,1 texture budget 100" in textured.decode_settings
    assert "texture" not in flow.decode_settings  # versions of results without side information are unchanged


@pytest.mark.parametrize("size,pixels", [((72, 100), 1600), ((512, 768), 393216), ((2048, 1365), 393216),
                                         ((70, 30), 64), ((64, 64), 0)])
def test_the_texture_search_window_is_central_aligned_and_bounded(size, pixels):
    h, w = size
    top, left, wh, ww = search_window(size, 16, pixels)
    if not pixels or h * w <= pixels:
        assert (top, left, wh, ww) == (0, 0, h, w)
        return
    assert wh * ww <= max(pixels, 256) and 0 < wh <= h and 0 < ww <= w
    assert top % 16 == left % 16 == wh % 16 == ww % 16 == 0
    assert top + wh <= h and left + ww <= w
    assert abs((top + wh / 2) - h / 2) <= 16 and abs((left + ww / 2) - w / 2) <= 16


def test_on_a_large_image_the_encoder_samples_only_its_window(textured, photo, monkeypatch):
    """With ``texture_window`` below the image's size, the candidates are sampled on the window
    (the generator sees nothing else); the file still carries one of them and decodes whole."""
    model = create_model("hyperprior-vr-flow", pretrained=False,
                         config=dataclasses.replace(textured.config, texture_window=1600))
    model.load_state_dict(textured.state_dict())
    shapes = []
    real = model.unet.forward
    monkeypatch.setattr(model.unet, "forward", lambda x_t, *a: shapes.append(tuple(x_t.shape[-2:])) or real(x_t, *a))
    b = Bitstream.from_bytes(model.compress(photo, 2.0).to_bytes())
    _, _, wh, ww = search_window((72, 100), model.stride, 1600)
    assert set(shapes) == {(wh, ww)} and len(shapes) == 3 * model.config.steps
    assert b.streams[TEXTURE_STREAM][0] in {round(200 * t) for t in model.config.texture_temperatures}
    shapes.clear()
    assert model.decompress(b, realism=1.0).shape == photo.shape
    assert set(shapes) == {(72, 100)}
    assert "texture window 1600" in model.decode_settings
    with pytest.raises(ValueError, match="texture_window"):
        FlowDecoderConfig(**SMALL, texture_window=-1)


def test_detail_and_conditional_discriminator(trained):
    from licodec.cli.main import main

    run, log = _fine_tune(trained, "adv-detail", "--adv-detail", "--adv-conditional", "--steps", "2")
    assert all(np.isfinite(r[k]) for r in log for k in ("d_loss", "g_adv", "adv_lambda"))
    disc = torch.load(run / "checkpoint.pt", weights_only=False)["objective"]["disc"]
    assert disc["net.0.parametrizations.weight.original"].shape[1] == 6  # the image beside the base decode
    command = json.loads((run / "export" / "config.json").read_text())["training"]["command"]
    assert "--adv-detail" in command and "--adv-conditional" in command
    assert main(["train", "--model", "hyperprior-vr-flow", "--data", str(trained["data"]), "--out",
                 str(run.parent / "no-detail"), "--adv-detail", "--steps", "1"]) != 0  # needs --adv-start


def test_detail_discriminator_sees_the_base_decodes_low_band(trained):
    from licodec.train.flow_objective import FlowObjective
    from licodec.train.trainer import TrainConfig

    model = create_model("hyperprior-vr-flow", weights_dir=trained["run"] / "export")
    model.config = dataclasses.replace(model.config, low_band_octaves=1)
    cfg = TrainConfig(data="", out="", model="hyperprior-vr-flow", crop=64, init="x", adv_start=0,
                      adv_detail=True, bf16=False)
    objective = FlowObjective(model, cfg, torch.device("cpu"))
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    q = torch.full((2,), 2.0)
    out = objective.forward(x, q)
    objective.loss(model, out, x, q, step=0)
    x_b = out.features["x_b"]
    real, fake = objective._real, objective._fake
    # the original with its residual's low band taken out: the base decode's coarse content, the true detail
    assert torch.allclose(real, (x - low_band(x - x_b, 1)).clamp(0, 1), atol=1e-6) and not torch.equal(real, x)
    gap = [float(low_band(image - x_b, 1).abs().mean()) for image in (real, x)]
    assert gap[0] < 0.5 * gap[1]
    assert fake.shape == x.shape and objective._cond is None  # unconditional without --adv-conditional
