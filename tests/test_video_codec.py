"""The video codec (licodec.codec.video, licodec.video.coding): closed-loop references that the
decoder rebuilds exactly, at any thread count; seeking; damage; errors; training through the CLI."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from conftest import random_image
from licodec.codec.motion import estimate_flow, warp
from licodec.entropy import video_container as vc
from licodec.errors import LicodecError, WeightsError
from licodec.video import coding

SMALL = {"video-dcvc": dict(N=16, M=16, context=8, motion_N=16, motion_M=16),
         "video-dvc": dict(motion_N=16, motion_M=16, residual_prior=8)}
VIDEO_MODELS = list(SMALL)

_BUILD = """
import torch
from licodec.zoo import create_model, get_entry
def build(name, **small):
    torch.manual_seed(0)
    model = create_model(name, pretrained=False, config=get_entry(name).config_cls(**small))
    if name == "video-dcvc":
        with torch.no_grad():  # an untrained codec outputs its prediction; make the latent matter
            torch.nn.init.normal_(model.decoder.reconstruct[-1].weight, std=0.05)
    if getattr(model, "residual_prior", None) is not None:  # a new prior is the identity: make it act
        with torch.no_grad():
            torch.nn.init.normal_(model.residual_prior.net[-1].weight, std=0.05)
    model.freeze()
    return model.eval()
"""
exec(_BUILD)


@pytest.fixture(scope="module", params=VIDEO_MODELS)
def codec(request):
    # build: defined by exec above, shared with the subprocesses
    return build(request.param, **SMALL[request.param])  # noqa: F821


def clip(n=7, h=72, w=100, seed=0):
    """A moving noise-and-photo-like clip: a random image panned one pixel per frame, plus noise."""
    rng = np.random.default_rng(seed)
    base = random_image(rng, h + 16, w + 16)
    frames = []
    for i in range(n):
        f = base[i % 8 : i % 8 + h, 2 * (i % 4) : 2 * (i % 4) + w].astype(int) + rng.integers(-8, 9, (h, w, 3))
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def encode(codec, frames, quality=3.0, i_period=3, effort=0):
    return b"".join(coding.compress(frames, quality, fps=25, i_period=i_period, codec=codec, effort=effort))


def test_flow_and_warp_follow_a_known_shift():
    rng = np.random.default_rng(2)
    ref = np.asarray(Image.fromarray(random_image(rng, 96, 128)).filter(ImageFilter.GaussianBlur(2)))
    cur = np.roll(ref, 3, axis=1)  # cur[y, x] = ref[y, x - 3]
    flow = estimate_flow(cur, ref)
    assert np.median(flow[0, 16:-16, 16:-16]) == pytest.approx(-3, abs=0.3)
    assert abs(np.median(flow[1, 16:-16, 16:-16])) < 0.3
    x = torch.from_numpy(ref.copy()).permute(2, 0, 1)[None].double()
    shifted = warp(x, torch.full((1, 2, 96, 128), 0.0, dtype=torch.float64).index_fill_(1, torch.tensor([0]), -3.0))
    assert torch.allclose(shifted[..., 3:], x[..., :-3], atol=1e-9)


def test_decoding_rebuilds_the_encoders_frames_and_seeks_to_i_frames(codec):
    frames = clip()
    stats = []
    data = b"".join(coding.compress(frames, 3.0, fps=25, i_period=3, codec=codec, stats=stats))
    assert [s["type"] for s in stats] == list("IPPIPPI")
    decoded = list(coding.decompress(data, codec=codec))
    assert [d.number for d in decoded] == list(range(7)) and all(d.damage is None for d in decoded)
    reference = None
    for i, frame in enumerate(frames):  # the encoder's closed loop, by hand
        previous = None if i % 3 == 0 else reference
        streams, reference = codec.encode_frame(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255, 3.0,
                                                previous)
        kept, shown = codec.decode_frame_and_show(streams, 3.0, previous, frame.shape[:2])
        assert torch.equal(kept, reference), i  # the decoder's reference is the encoder's
        assert np.array_equal(decoded[i].rgb, shown[0].permute(1, 2, 0).numpy()), i
    psnr = [10 * np.log10(255**2 / np.mean((d.rgb.astype(float) - f) ** 2)) for d, f in zip(decoded, frames)]
    assert min(psnr) > 10
    part = list(coding.decompress(data, start=4, stop=6, codec=codec))
    assert [d.number for d in part] == [4, 5]
    assert all(np.array_equal(p.rgb, decoded[p.number].rgb) for p in part)
    described = vc.describe(vc.VideoReader(data))
    assert [d["type"] for d in described] == list("IPPIPPI") and all(d["bits"] > 0 for d in described)


def test_a_damaged_frame_is_reported_and_decoding_resumes_at_the_next_i_frame(codec):
    frames = clip()
    data = bytearray(encode(codec, frames))
    clean = list(coding.decompress(bytes(data), codec=codec))
    offset = vc.VideoReader(bytes(data)).index.entry(1).offset
    data[offset + 12] ^= 0x55
    got = list(coding.decompress(bytes(data), codec=codec))
    assert np.array_equal(got[0].rgb, clean[0].rgb)
    assert got[1].rgb is None and got[2].rgb is None and got[1].damage and "frame 1" in got[2].damage
    assert all(np.array_equal(got[i].rgb, clean[i].rgb) for i in (3, 4, 5, 6))


@pytest.mark.parametrize("name", VIDEO_MODELS)
def test_encoded_with_two_threads_decodes_with_one_to_identical_frames(name, tmp_path):
    """Over a whole I-period of noise frames, the decoder at 1 thread rebuilds exactly the
    references the encoder built at 2 threads (float64 decoder side, 8-bit references), and shows
    exactly the frames a decoder at 2 threads shows (video-dvc's post-filter, residual adapters
    and flow refiner act here)."""
    code = _BUILD + f"""
import sys, numpy as np, torch
sys.path.insert(0, {str(tmp_path)!r})
torch.set_num_threads(int(sys.argv[1]))
from licodec.video import coding
codec = build({name!r}, **{SMALL[name]!r})
if {name!r} == "video-dvc":  # a post-filter, residual adapters and a flow refiner that act
    codec.add_post_filter(4)
    codec.add_residual_adapter(2)
    codec.add_flow_refiner(4)
    with torch.no_grad():
        torch.nn.init.normal_(codec.post_filter.net[-1].weight, std=0.05)
        torch.nn.init.normal_(codec.flow_refiner.net[-1].weight, std=0.05)
        for branch in [*codec.residual_adapter.analysis, *codec.residual_adapter.synthesis]:
            torch.nn.init.normal_(branch[-1].weight, std=0.05)
    codec.refresh()
rng = np.random.default_rng(7)
frames = [rng.integers(0, 256, (72, 100, 3), dtype=np.uint8) for _ in range(6)]
if sys.argv[2] == "encode":
    data = b"".join(coding.compress(frames, 5.0, i_period=6, codec=codec))
    open(sys.argv[3], "wb").write(data)
    refs, reference = [], None
    for i, f in enumerate(frames):
        _, reference = codec.encode_frame(torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255, 5.0,
                                          None if i == 0 else reference)
        refs.append(reference[0].permute(1, 2, 0).numpy())
    shown = [d.rgb for d in coding.decompress(data, codec=codec)]
else:
    data = open(sys.argv[3], "rb").read()
    shown = [d.rgb for d in coding.decompress(data, codec=codec)]
    if hasattr(codec, "post_filter"):  # the references: the frames unfiltered
        codec.post_filter = None
    refs = [d.rgb for d in coding.decompress(data, codec=codec)]
np.save(sys.argv[4], np.stack([np.stack(refs), np.stack(shown)]))
"""
    lic, enc, dec = tmp_path / "v.lic", tmp_path / "enc.npy", tmp_path / "dec.npy"
    subprocess.run([sys.executable, "-c", code, "2", "encode", str(lic), str(enc)], check=True)
    subprocess.run([sys.executable, "-c", code, "1", "decode", str(lic), str(dec)], check=True)
    encoded, decoded = np.load(enc), np.load(dec)
    assert encoded.shape == (2, 6, 72, 100, 3)
    assert np.array_equal(encoded, decoded)
    if name == "video-dvc":  # the filter acts: P-frames are shown otherwise than kept
        assert not np.array_equal(encoded[0, 1:], encoded[1, 1:])


def test_bad_inputs_give_clear_errors(codec):
    frames = clip(3)
    with pytest.raises(LicodecError, match="no frames"):
        encode(codec, [])
    with pytest.raises(LicodecError, match="frame 1 is 50x40"):
        encode(codec, [frames[0], np.zeros((40, 50, 3), np.uint8)])
    with pytest.raises(LicodecError, match="quality must be between 1 and 8"):
        encode(codec, frames, quality=9)
    with pytest.raises(LicodecError, match="uint8 RGB"):
        encode(codec, [np.zeros((8, 8), np.uint8)])
    with pytest.raises(LicodecError, match="bad frame range"):
        list(coding.decompress(encode(codec, frames), start=2, stop=1, codec=codec))
    other = build(codec.codec_id, **{**SMALL[codec.codec_id], "motion_N": 24})  # noqa: F821
    other.weights_sha256 = "0123456789abcdef"
    with pytest.raises(WeightsError, match="weights 0000000000000000"):
        list(coding.decompress(encode(codec, frames), codec=other))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The video codec trained for 2 steps through the CLI (then resumed to 3) on photos and a clip."""
    from licodec.cli.main import main

    root = tmp_path_factory.mktemp("video")
    data, clips = root / "data", root / "clips" / "a"
    data.mkdir()
    clips.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(3):
        Image.fromarray(random_image(rng, 160, 200)).save(data / f"{i}.png")
    for i, f in enumerate(clip(3, 96, 112)):
        Image.fromarray(f).save(clips / f"im{i}.png")
    run = root / "run"
    common = ["train", "--model", "video-dcvc", "--data", str(data), "--video-data", str(root / "clips"),
              "--crop", "128", "--batch", "2", "--no-bf16", "--log-every", "1", "--out", str(run)]
    assert main(common + ["--steps", "2"]) == 0
    assert main(common + ["--steps", "3"]) == 0
    return run


def test_training_logs_resumes_and_exports(trained):
    import json

    lines = [json.loads(l) for l in (trained / "log.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3]
    assert all(np.isfinite(l["loss"]) and l["motion_bpp"] > 0 and l["pred_psnr"] > 5 for l in lines)
    meta = json.loads((trained / "export" / "config.json").read_text())
    assert meta["codec"] == "video-dcvc" and meta["training"]["steps"] == 3
    assert "--video-data" in meta["training"]["command"]


def test_chain_fine_tuning_codes_its_own_references(trained, tmp_path):
    """--p-chain 2 from --init: each sample is 4 frames, the middle two P-coded by the model;
    the motion warm-up is off for a run that starts from weights."""
    import json

    from licodec.cli.main import main
    from licodec.train.trainer import TrainConfig
    from licodec.train.video_objective import VideoObjective
    from licodec.zoo import create_model

    run = tmp_path / "chain"
    data = trained.parent / "data"
    assert main(["train", "--model", "video-dcvc", "--init", str(trained / "export"), "--data", str(data),
                 "--p-chain", "2", "--crop", "128", "--batch", "2", "--no-bf16", "--log-every", "1", "--steps", "1",
                 "--out", str(run)]) == 0
    meta = json.loads((run / "export" / "config.json").read_text())
    assert "--p-chain 2" in meta["training"]["command"]
    model = create_model("video-dcvc", pretrained=True, weights_dir=trained / "export")
    objective = VideoObjective(model, TrainConfig(data=str(data), out="", model="video-dcvc", crop=128, p_chain=2,
                                                  init=str(trained / "export")), torch.device("cpu"))
    x = torch.rand(2, 3, 128, 128)
    frames = objective.sequences(x, 3)
    assert len(frames) == 4 and all(f.shape == (2, 3, 64, 64) for f in frames)
    assert torch.equal(frames[-1], x[..., 32:96, 32:96]) and objective.warmup_steps == 0
    assert all(torch.equal(f, f.mul(255).round().div(255)) for f in frames[:-1])
    with pytest.raises(LicodecError, match="--p-chain 2 needs clips of 4 frames"):
        objective.clips = [[Path("c/1.png"), Path("c/2.png"), Path("c/3.png")]]
        objective._real_run(torch.Generator().manual_seed(0), 4)


def test_sprites_move_an_object_over_the_scene(trained):
    """--sprites 1: every synthetic pair carries a blob cut from another crop that moves by its own
    motion: the current frame is the crop with the blob pasted over it, the older frame is the
    scene and the blob each warped by its own motion (none of the blob in the cut margin), and
    --sprites 0 draws exactly the plain pairs."""
    from licodec.codec.motion import warp
    from licodec.train.trainer import TrainConfig
    from licodec.train.video_objective import MARGIN, VideoObjective, sprite_masks, synthetic_flow
    from licodec.zoo import create_model

    masks = sprite_masks(8, 64, 64, torch.Generator().manual_seed(1))
    assert masks.shape == (8, 1, 64, 64) and masks.min() >= 0 and masks.max() <= 1
    assert ((masks > 0.5).float().mean((1, 2, 3)) > 0.01).all()  # every blob is there
    model = create_model("video-dcvc", pretrained=True, weights_dir=trained / "export")

    def objective(share, chain=0):
        cfg = TrainConfig(data="", out="", model="video-dcvc", crop=128, sprites=share, p_chain=chain, init="x")
        return VideoObjective(model, cfg, torch.device("cpu"))

    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    centre = (..., slice(MARGIN, 128 - MARGIN), slice(MARGIN, 128 - MARGIN))
    g = objective(0.0)._generator(4)
    plain = objective(0.0).sequences(x, 4)
    expected = warp(x, synthetic_flow(2, 128, 128, g)).clamp(0, 1)[centre].mul(255).round().div(255)
    assert torch.equal(plain[0], expected) and torch.equal(plain[1], x[centre])

    g = objective(1.0)._generator(4)
    alpha = sprite_masks(2, 128, 128, g)
    torch.rand(2, generator=g)  # the share's draw
    for band in (slice(0, MARGIN), slice(128 - MARGIN, 128)):
        alpha[..., band, :] = 0
        alpha[..., band] = 0
    sprite = x.roll(1, 0).flip(-1, -2)
    scene_flow, sprite_flow = synthetic_flow(2, 128, 128, g), synthetic_flow(2, 128, 128, g) * 2
    moved = warp(alpha, sprite_flow)
    older = moved * warp(sprite, sprite_flow) + (1 - moved) * warp(x, scene_flow)
    some = objective(1.0).sequences(x, 4)
    assert alpha[centre].mean() > 0.01
    assert torch.allclose(some[1], (alpha * sprite + (1 - alpha) * x)[centre], atol=1e-6)
    assert (some[0] - older.clamp(0, 1)[centre].mul(255).round().div(255)).abs().max() < 1.5 / 255
    assert not torch.allclose(some[0], plain[0], atol=0.05)  # the object moved over the scene
    chained = objective(1.0, chain=2).sequences(x[:1], 4)  # a batch of 1: the crop itself, mirrored
    assert len(chained) == 4 and all(f.shape == (1, 3, 64, 64) for f in chained)
    with pytest.raises(LicodecError, match="--sprites is a share"):
        objective(1.5)


def test_resample_current_makes_the_pair_equally_sharp(trained):
    """--resample-current: the current frame of a synthetic pair is the crop resampled (bilinear)
    at a sub-pixel offset drawn after the older frame's motion, so it is as blurred as the warped
    older frame; the older frame is the same as without the flag."""
    from licodec.codec.motion import warp
    from licodec.train.trainer import TrainConfig
    from licodec.train.video_objective import MARGIN, VideoObjective, synthetic_flow
    from licodec.zoo import create_model

    model = create_model("video-dcvc", pretrained=True, weights_dir=trained / "export")

    def objective(resample):
        cfg = TrainConfig(data="", out="", model="video-dcvc", crop=128, resample_current=resample, init="x")
        return VideoObjective(model, cfg, torch.device("cpu"))

    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    centre = (..., slice(MARGIN, 128 - MARGIN), slice(MARGIN, 128 - MARGIN))
    plain, matched = objective(False).sequences(x, 4), objective(True).sequences(x, 4)
    assert torch.equal(plain[0], matched[0]) and torch.equal(plain[1], x[centre])
    g = objective(True)._generator(4)
    synthetic_flow(2, 128, 128, g)  # the older frame's motion
    shift = torch.rand(2, 2, 1, 1, generator=g)
    assert ((shift > 0.05) & (shift < 0.95)).any()
    assert torch.allclose(matched[1], warp(x, shift.expand(2, 2, 128, 128).contiguous())[centre], atol=1e-6)

    def detail(f):  # energy of the horizontal differences: lower is blurrier
        return float((f[..., 1:] - f[..., :-1]).square().mean())

    assert detail(matched[1]) < 0.9 * detail(plain[1])
    assert abs(detail(matched[1]) / detail(matched[0]) - 1) < abs(detail(plain[1]) / detail(plain[0]) - 1)


def test_a_new_residual_prior_changes_nothing_and_a_trained_one_changes_only_the_residual_bytes():
    """A residual prior starts as the identity: the same bytes as without one. One that acts
    changes the residual's ``y`` stream only (motion, ``z`` and I-frames are as before), the
    decoder, which needs it to read ``y``, rebuilds the encoder's frames, and those are the very
    frames of the codec without a prior: the prior rescales the scales, never the means."""
    frames = clip(3)
    plain, fresh = _twins(residual_prior=0)
    fresh.add_residual_prior(8)
    assert fresh.config.residual_prior == 8 and fresh.residual_prior is not None
    assert encode(plain, frames) == encode(fresh, frames)
    with torch.no_grad():
        torch.nn.init.normal_(fresh.residual_prior.net[-1].weight, std=0.05)
    fresh.refresh()
    x = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames]
    i_streams, reference = plain.encode_frame(x[0], 3.0, None)
    assert fresh.encode_frame(x[0], 3.0, None)[0] == i_streams
    p_plain, p_prior = plain.encode_frame(x[1], 3.0, reference)[0], fresh.encode_frame(x[1], 3.0, reference)[0]
    assert [p_plain[k] == p_prior[k] for k in ("motion_z", "motion_y", "z", "y")] == [True, True, True, False]
    reference = None
    for i, (frame, decoded) in enumerate(zip(x, coding.decompress(encode(fresh, frames), codec=fresh))):
        _, reference = fresh.encode_frame(frame, 3.0, None if i % 3 == 0 else reference)
        assert np.array_equal(decoded.rgb, reference[0].permute(1, 2, 0).numpy()), i
    files = {m: encode(m, frames) for m in (plain, fresh)}
    assert files[plain] != files[fresh]
    decoded = {m: [d.rgb for d in coding.decompress(files[m], codec=m)] for m in (plain, fresh)}
    assert all(np.array_equal(a, b) for a, b in zip(decoded[plain], decoded[fresh], strict=True))
    with pytest.raises(LicodecError, match="already has a residual prior"):
        fresh.add_residual_prior(8)


def _twins(**changes):
    """Two small video-dvc codecs (``SMALL``'s config with ``changes``) with the same weights, the
    second to be given a new part."""
    small = {**SMALL["video-dvc"], **changes}
    plain = build("video-dvc", **small)  # noqa: F821
    fresh = build("video-dvc", **small)  # noqa: F821
    fresh.load_state_dict(plain.state_dict())  # the first build also drew the intra codec's initialisation
    fresh.refresh()
    return plain, fresh


def test_a_post_filter_changes_only_the_shown_p_frames():
    """A post-filter starts as the identity. One that acts changes no byte of the file and no
    reference (encoder and decoder keep the unfiltered frames), shows every P-frame filtered (the
    prediction it sees is the decoder's) and every I-frame as decoded."""
    frames = clip(4)
    plain, fresh = _twins()
    fresh.add_post_filter(6)
    assert fresh.config.post_filter == 6 and fresh.post_filter is not None
    data = encode(plain, frames, i_period=4)

    def shown(model):
        return [d.rgb for d in coding.decompress(data, codec=model)]

    assert all(np.array_equal(a, b) for a, b in zip(shown(plain), shown(fresh), strict=True))
    with torch.no_grad():
        torch.nn.init.normal_(fresh.post_filter.net[-1].weight, std=0.05)
    fresh.refresh()
    assert encode(fresh, frames, i_period=4) == data
    x = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames]
    references, reference = [], None
    for i, frame in enumerate(x):
        _, reference = plain.encode_frame(frame, 3.0, None if i == 0 else reference)
        references.append(reference[0].permute(1, 2, 0).numpy())
    filtered, unfiltered = shown(fresh), shown(plain)
    assert all(np.array_equal(a, b) for a, b in zip(unfiltered, references, strict=True))
    assert [np.array_equal(a, b) for a, b in zip(filtered, references)] == [True, False, False, False]
    with pytest.raises(LicodecError, match="already has a post-filter"):
        fresh.add_post_filter(6)


def test_residual_adapters_start_as_the_identity_and_the_decoder_follows_them():
    """New residual adapters leave every byte as it was. Adapters that act change the P-frames'
    residual streams only (motion and I-frames as before), and the decoder, which synthesises the
    residual with them, rebuilds the encoder's frames, at effort 0 and at effort 2 (which refines
    the latents through the adapted transforms and leaves the adapters without gradients)."""
    frames = clip(3)
    plain, fresh = _twins()
    fresh.add_residual_adapter(2)
    assert fresh.config.residual_adapter == 2 and len(fresh.residual_adapter.analysis) == 4
    assert encode(plain, frames) == encode(fresh, frames)
    with torch.no_grad():
        for branch in [*fresh.residual_adapter.analysis, *fresh.residual_adapter.synthesis]:
            torch.nn.init.normal_(branch[-1].weight, std=0.05)
    fresh.refresh()
    x = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames]
    i_streams, reference = plain.encode_frame(x[0], 3.0, None)
    assert fresh.encode_frame(x[0], 3.0, None)[0] == i_streams
    p_plain, p_adapted = plain.encode_frame(x[1], 3.0, reference)[0], fresh.encode_frame(x[1], 3.0, reference)[0]
    assert [p_plain[k] == p_adapted[k] for k in ("motion_z", "motion_y", "y")] == [True, True, False]
    for effort in (0, 2):
        data = encode(fresh, frames, effort=effort)
        reference = None
        for i, (frame, decoded) in enumerate(zip(x, coding.decompress(data, codec=fresh), strict=True)):
            _, reference = fresh.encode_frame(frame, 3.0, None if i % 3 == 0 else reference, effort=effort)
            assert np.array_equal(decoded.rgb, reference[0].permute(1, 2, 0).numpy()), (effort, i)
    assert all(p.grad is None for p in fresh.residual_adapter.parameters())
    with pytest.raises(LicodecError, match="already has residual adapters"):
        fresh.add_residual_adapter(2)
    # grown to a higher rank, they code the same bytes; they do not shrink
    before = encode(fresh, frames)
    fresh.grow_residual_adapter(5)
    assert fresh.config.residual_adapter == 5 and fresh.residual_adapter.rank == 5
    assert encode(fresh, frames) == before
    with pytest.raises(LicodecError, match="below their rank"):
        fresh.grow_residual_adapter(3)


def test_flow_refiner_starts_as_the_identity_and_the_decoder_follows_it():
    """A new flow refiner leaves every byte as it was. One that acts moves the flow the frame is
    predicted with (its motion streams are as before, its residual's differ), and the decoder,
    which refines the decoded flow as the encoder did, rebuilds the encoder's frames."""
    frames = clip(3)
    plain, fresh = _twins()
    fresh.add_flow_refiner(4)
    assert fresh.config.flow_refiner == 4
    assert encode(plain, frames) == encode(fresh, frames)
    with torch.no_grad():
        torch.nn.init.normal_(fresh.flow_refiner.net[-1].weight, std=0.05)
    fresh.refresh()
    x = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames]
    _, reference = plain.encode_frame(x[0], 3.0, None)
    (p_plain, _), (p_refined, _) = plain.encode_frame(x[1], 3.0, reference), fresh.encode_frame(x[1], 3.0, reference)
    assert [p_plain[k] == p_refined[k] for k in ("motion_z", "motion_y", "y")] == [True, True, False]
    data, reference = encode(fresh, frames), None
    for i, (frame, decoded) in enumerate(zip(x, coding.decompress(data, codec=fresh), strict=True)):
        _, reference = fresh.encode_frame(frame, 3.0, None if i % 3 == 0 else reference)
        assert np.array_equal(decoded.rgb, reference[0].permute(1, 2, 0).numpy()), i
    with pytest.raises(LicodecError, match="already has a flow refiner"):
        fresh.add_flow_refiner(4)


def test_refinement_weighs_the_residual_at_the_prior_tables():
    """At effort > 0 the encoder refines the residual's latents for the tables it will code them
    with: with a prior the refined latents, and so the decoded P-frame, differ from the prior-free
    codec's (at effort 0 they are the same frame), and refining leaves the prior without gradients."""
    small = {**SMALL["video-dvc"], "residual_prior": 0}
    plain = build("video-dvc", **small)  # noqa: F821
    prior = build("video-dvc", **small)  # noqa: F821
    prior.load_state_dict(plain.state_dict())
    prior.add_residual_prior(8)
    with torch.no_grad():
        torch.nn.init.normal_(prior.residual_prior.net[-1].weight, std=0.2)
        torch.nn.init.constant_(prior.residual_prior.net[-1].bias, 0.6)
    prior.refresh()
    x = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in clip(2)]
    _, reference = plain.encode_frame(x[0], 4.0, None)
    decoded = {(m, e): m.encode_frame(x[1], 4.0, reference, effort=e)[1] for m in (plain, prior) for e in (0, 2)}
    assert torch.equal(decoded[plain, 0], decoded[prior, 0])
    assert not torch.equal(decoded[plain, 2], decoded[prior, 2])
    assert all(p.grad is None for p in prior.residual_prior.parameters())


def test_the_residual_streams_cost_what_the_residual_prior_estimates():
    """Information bound: the bytes of a P-frame's residual ``y`` match ``-log2`` of the prior's
    likelihoods of the rounded latents (table scales), and not the intra codec's own, so the coder
    uses the corrected tables (a prior far from the identity here, to tell them apart; it widens
    the scales, since under much too narrow ones the coder's escape codes beat the Gaussian's tail
    and the estimate no longer bounds the bytes)."""
    from licodec.codec.base import pad_to_multiple

    codec = build("video-dvc", **SMALL["video-dvc"])  # noqa: F821
    with torch.no_grad():
        torch.nn.init.normal_(codec.residual_prior.net[-1].weight, std=0.2)
        torch.nn.init.constant_(codec.residual_prior.net[-1].bias, 0.6)
    codec.refresh()
    x = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in clip(2, 144, 200)]
    intra = codec.intra
    for quality in (2.0, 6.0):
        _, reference = codec.encode_frame(x[0], quality, None)
        streams, _ = codec.encode_frame(x[1], quality, reference)
        qt = torch.tensor([quality])
        flow_hat = codec._decompress_motion(streams, qt, (144, 200), codec._float64()[0].flow_synthesis)
        ref = pad_to_multiple(reference.float() / 255, 64)[0]
        prediction = warp(ref.double(), flow_hat).float()
        residual = (pad_to_multiple(x[1], 64)[0] - prediction + 0.5).clamp(0, 1)
        gain, _ = intra._gains(qt)
        with torch.no_grad():
            y = intra.g_a(residual) * gain
            features = codec.residual_prior.features(prediction.clamp(0, 1), ref, flow_hat.float())
            bits = {}
            for name, extra in (("prior", {"correction": lambda h: codec.residual_prior(h, features)}), ("own", {})):
                _, lik = intra.latent(y, coded_scales=True, quantize=torch.round, **extra)
                bits[name] = float(-torch.log2(lik["y"]).sum())
        real = 8 * len(streams["y"])
        assert real == pytest.approx(bits["prior"], rel=0.005, abs=64), quality
        assert abs(real - bits["own"]) > 0.03 * real, quality


def _part_training_args(tmp_path, seed: int) -> list[str]:
    """``licodec train`` arguments for a short video-dvc run on two random photos in ``tmp_path``."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(2):
        Image.fromarray(random_image(rng, 160, 200)).save(data / f"{i}.png")
    return ["train", "--model", "video-dvc", "--data", str(data), "--crop", "128", "--batch", "2", "--no-bf16",
            "--lr", "1e-3", "--log-every", "1"]


def _shipped_video_dvc():
    from licodec.zoo import create_model

    return create_model("video-dvc", pretrained=True)


def _train_a_new_part(tmp_path, seed: int, part: str, flag: str, width: int):
    """The shipped video-dvc weights without ``part`` (exported to ``tmp_path/plain``), then
    ``licodec train ... --init plain FLAG`` for 2 steps into ``tmp_path/run``; checks that the export
    records the new part's ``width`` and the flag, differs from the plain weights by the part
    alone, and codes. Returns the run's arguments (without ``--steps``/``--out``), the exported
    tensors and the plain weights' state."""
    import dataclasses
    import json

    from safetensors.torch import load_file

    from licodec.cli.main import main
    from licodec.zoo import create_model
    from licodec.zoo.registry import export_weights

    shipped = _shipped_video_dvc()
    if getattr(shipped, part) is not None:
        setattr(shipped, part, None)
        shipped.config = dataclasses.replace(shipped.config, **{part: 0})
    export_weights(shipped, "video-dvc", tmp_path / "plain", half=True)
    common = _part_training_args(tmp_path, seed) + ["--init", str(tmp_path / "plain"), flag]
    assert main(common + ["--steps", "2", "--out", str(tmp_path / "run")]) == 0
    export = tmp_path / "run" / "export"
    meta = json.loads((export / "config.json").read_text())
    assert meta["config"][part] == width and flag in meta["training"]["command"]
    trained, before = load_file(export / "model.safetensors"), shipped.state_dict()
    assert {k for k in trained if k not in before} == {k for k in trained if k.startswith(part + ".")}
    assert all(torch.equal(trained[k], before[k].to(trained[k].dtype)) for k in before)
    codec = create_model("video-dvc", pretrained=True, weights_dir=export).eval()
    decoded = list(coding.decompress(encode(codec, clip(3)), codec=codec))
    assert len(decoded) == 3 and all(d.damage is None for d in decoded)
    return common, trained, before


def test_prior_training_trains_the_residual_prior_alone(tmp_path, capsys):
    """``licodec train --model video-dvc --init W --prior`` trains the shipped weights' residual prior
    on, alone, and adds one to weights without one and trains it alone on the rounded rate: the export differs from ``W`` in the prior only,
    records its width, and codes; a resumed run trains the same prior on; ``--prior`` without
    ``--init``, or for video-dcvc, is refused."""
    import dataclasses
    import json

    from safetensors.torch import load_file

    from licodec.cli.main import main
    from licodec.zoo import create_model
    from licodec.zoo.registry import export_weights

    common = _part_training_args(tmp_path, 3) + ["--prior"]
    shipped = create_model("video-dvc", pretrained=True)
    # the shipped weights have a prior: --prior trains it on (nothing added, nothing else moves)
    assert shipped.residual_prior is not None
    assert main(common + ["--steps", "1", "--out", str(tmp_path / "on"), "--init", "video-dvc"]) == 0
    on, own = load_file(tmp_path / "on" / "export" / "model.safetensors"), shipped.state_dict()
    assert set(on) == set(own)
    assert all(torch.equal(on[k], own[k].to(on[k].dtype)) == (not k.startswith("residual_prior.net.4"))
               for k in own if k.startswith(("residual_prior.net.4", "motion_", "flow_synthesis.")))
    # weights without one get a new prior
    plain = create_model("video-dvc", pretrained=True)
    plain.residual_prior, plain.config = None, dataclasses.replace(plain.config, residual_prior=0)
    export_weights(plain, "video-dvc", tmp_path / "plain", half=True)
    assert main(common + ["--steps", "2", "--out", str(tmp_path / "run"), "--init", str(tmp_path / "plain")]) == 0
    export = tmp_path / "run" / "export"
    meta = json.loads((export / "config.json").read_text())
    assert meta["config"]["residual_prior"] == 96 and "--prior" in meta["training"]["command"]
    trained = load_file(export / "model.safetensors")
    before = plain.state_dict()
    assert {k for k in trained if k not in before} == {k for k in trained if k.startswith("residual_prior.")}
    assert all(torch.equal(trained[k], before[k].to(trained[k].dtype)) for k in before if k in trained)
    assert trained["residual_prior.net.4.weight"].abs().max() > 0  # the zero-initialised layer moved
    codec = create_model("video-dvc", pretrained=True, weights_dir=export).eval()
    decoded = list(coding.decompress(encode(codec, clip(2)), codec=codec))
    assert len(decoded) == 2 and all(d.damage is None for d in decoded)
    # resuming the run goes on training the prior it added (the checkpoint holds it)
    assert main(common + ["--steps", "3", "--out", str(tmp_path / "run"), "--init", str(tmp_path / "plain")]) == 0
    resumed = load_file(export / "model.safetensors")
    assert json.loads((export / "config.json").read_text())["training"]["steps"] == 3
    assert not torch.equal(resumed["residual_prior.net.4.weight"], trained["residual_prior.net.4.weight"])
    assert all(torch.equal(resumed[k], trained[k]) for k in trained if not k.startswith("residual_prior."))
    capsys.readouterr()
    assert main(common + ["--steps", "1", "--out", str(tmp_path / "bare")]) != 0
    assert "give them with --init" in capsys.readouterr().err
    from licodec.train.trainer import TrainConfig
    from licodec.train.video_objective import VideoObjective

    cfg = TrainConfig(data="", out="", model="video-dcvc", crop=128, prior=True, init="x")
    with pytest.raises(LicodecError, match="residual prior of residual P-frames"):
        VideoObjective(build("video-dcvc", **SMALL["video-dcvc"]), cfg, torch.device("cpu"))  # noqa: F821


def test_post_filter_training_trains_the_filter_alone(tmp_path, capsys):
    """``licodec train --model video-dvc --init W --post-filter`` adds a post-filter to weights
    without one (the shipped weights' own, removed) and trains it alone on the distortion: the export differs from ``W`` by the filter
    only, records its width, and codes; with ``--prior`` too, both train; a resumed run refuses a
    change of ``--post-filter``; the flag without ``--init``, or for video-dcvc, is refused."""
    from safetensors.torch import load_file

    from licodec.cli.main import main

    assert _shipped_video_dvc().post_filter is not None  # the shipped weights have one: it is removed
    common, trained, before = _train_a_new_part(tmp_path, 4, "post_filter", "--post-filter", 24)
    assert trained["post_filter.net.4.weight"].abs().max() > 0  # the zero-initialised layer moved
    # both parts at once: each moves
    assert main(common + ["--steps", "1", "--out", str(tmp_path / "both"), "--prior"]) == 0
    both = load_file(tmp_path / "both" / "export" / "model.safetensors")
    assert both["post_filter.net.4.weight"].abs().max() > 0
    assert not torch.equal(both["residual_prior.net.4.weight"], before["residual_prior.net.4.weight"].to(torch.float16))
    assert all(torch.equal(both[k], before[k].to(both[k].dtype)) for k in before if not k.startswith("residual_prior."))
    capsys.readouterr()
    assert main([a for a in common if a != "--post-filter"] + ["--steps", "3", "--out", str(tmp_path / "run")]) != 0
    assert "post-filter" in capsys.readouterr().err
    bare = common[: common.index("--init")] + ["--post-filter"]
    assert main(bare + ["--steps", "1", "--out", str(tmp_path / "bare")]) != 0
    assert "give them with --init" in capsys.readouterr().err
    from licodec.train.trainer import TrainConfig
    from licodec.train.video_objective import VideoObjective

    cfg = TrainConfig(data="", out="", model="video-dcvc", crop=128, post_filter=True, init="x")
    with pytest.raises(LicodecError, match="post-filter of residual P-frames"):
        VideoObjective(build("video-dcvc", **SMALL["video-dcvc"]), cfg, torch.device("cpu"))  # noqa: F821


def test_residual_adapter_training_trains_the_adapters_alone(tmp_path, capsys):
    """``licodec train --model video-dvc --init W --residual-adapter`` adds residual adapters to
    weights without them and trains them alone: the export differs from ``W`` by the adapters only,
    records their rank, and codes; with ``--prior`` too, both train; ``--residual-adapter`` with
    ``--post-filter`` is refused, and so is a resumed run that changes the flag."""
    from safetensors.torch import load_file

    from licodec.cli.main import main

    common, trained, before = _train_a_new_part(tmp_path, 5, "residual_adapter", "--residual-adapter", 8)
    assert trained["residual_adapter.synthesis.3.1.weight"].abs().max() > 0  # a zero-initialised layer moved
    assert main(common + ["--steps", "1", "--out", str(tmp_path / "both"), "--prior"]) == 0
    both = load_file(tmp_path / "both" / "export" / "model.safetensors")
    assert both["residual_adapter.analysis.0.1.weight"].abs().max() > 0
    assert not torch.equal(both["residual_prior.net.4.weight"], before["residual_prior.net.4.weight"].to(torch.float16))
    capsys.readouterr()
    assert main(common + ["--steps", "1", "--out", str(tmp_path / "mixed"), "--post-filter"]) != 0
    assert "one after the other" in capsys.readouterr().err
    assert main([a for a in common if a != "--residual-adapter"] + ["--steps", "3", "--out", str(tmp_path / "run")]) != 0
    assert "residual adapters" in capsys.readouterr().err


def test_motion_and_flow_refiner_train_with_the_adapters(tmp_path, capsys):
    """``--residual-adapter --prior --with-motion --flow-refiner`` trains the motion coder, the
    adapters, the prior and a new flow refiner together (the post-filter stays as it was) and the
    export codes; ``--with-motion``, ``--flow-refiner`` or ``--adapter-rank`` without
    ``--residual-adapter`` is refused; ``--adapter-rank`` grows the weights' adapters, and a resumed
    run refuses another rank."""
    import json

    from safetensors.torch import load_file

    import licodec
    from licodec.cli.main import main
    from licodec.zoo import create_model

    shipped = Path(licodec.__file__).parent / "zoo" / "weights" / "video-dvc"
    common = _part_training_args(tmp_path, 6) + ["--init", str(shipped), "--prior"]
    assert main(common + ["--residual-adapter", "--with-motion", "--flow-refiner", "--steps", "2",
                          "--out", str(tmp_path / "run")]) == 0
    export = tmp_path / "run" / "export"
    meta = json.loads((export / "config.json").read_text())
    assert meta["config"]["flow_refiner"] == 32 and "--with-motion --flow-refiner" in meta["training"]["command"]
    trained, before = load_file(export / "model.safetensors"), _shipped_video_dvc().state_dict()
    assert {k for k in trained if k not in before} == {k for k in trained if k.startswith("flow_refiner.")}
    moved = {k.split(".")[0] for k in before if not torch.equal(trained[k], before[k].to(trained[k].dtype))}
    assert {"motion_analysis", "flow_synthesis", "residual_adapter", "residual_prior"} <= moved
    assert "post_filter" not in moved
    assert trained["flow_refiner.net.6.weight"].abs().max() > 0  # the zero-initialised layer moved
    codec = create_model("video-dvc", pretrained=True, weights_dir=export).eval()
    decoded = list(coding.decompress(encode(codec, clip(3)), codec=codec))
    assert len(decoded) == 3 and all(d.damage is None for d in decoded)
    for flags in (["--with-motion"], ["--flow-refiner"], ["--adapter-rank", "12"]):
        capsys.readouterr()
        assert main(common + flags + ["--steps", "1", "--out", str(tmp_path / flags[0])]) != 0
        assert "give --residual-adapter too" in capsys.readouterr().err
    # --adapter-rank grows the shipped rank-8 adapters; the run records it
    assert main(common + ["--residual-adapter", "--adapter-rank", "12", "--steps", "1", "--out", str(tmp_path / "grown")]) == 0
    meta = json.loads((tmp_path / "grown" / "export" / "config.json").read_text())
    assert meta["config"]["residual_adapter"] == 12 and "--adapter-rank 12" in meta["training"]["command"]
    capsys.readouterr()  # a resumed run refuses another rank
    assert main(common + ["--residual-adapter", "--adapter-rank", "16", "--steps", "2", "--out", str(tmp_path / "grown")]) != 0
    assert "--adapter-rank 12, not 16" in capsys.readouterr().err


def test_training_refuses_a_crop_without_its_margin(tmp_path, capsys):
    from licodec.cli.main import main

    assert main(["train", "--model", "video-dcvc", "--data", str(tmp_path), "--crop", "100", "--out",
                 str(tmp_path / "r"), "--steps", "1"]) != 0
    assert "--crop must be 64 plus a multiple of 64" in capsys.readouterr().err


def test_cli_encodes_a_y4m_and_decodes_frames_and_reports(trained, tmp_path, monkeypatch, capsys):
    import shutil
    from fractions import Fraction

    import licodec
    from licodec import api
    from licodec.cli.main import main
    from licodec.video.io import Frame, VideoInfo, open_video, open_writer
    from licodec.zoo import registry

    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copytree(licodec.zoo.get_entry("hyperprior-ctx").weights_dir, weights / "hyperprior-ctx")
    shutil.copytree(trained / "export", weights / "video-dcvc")
    monkeypatch.setattr(registry, "WEIGHTS_ROOT", weights)
    monkeypatch.setattr(api, "_cache", {})
    frames = clip(5, 48, 64)
    src = tmp_path / "clip.y4m"
    with open_writer(src, VideoInfo(64, 48, Fraction(25), None, "rgb24")) as w:
        for f in frames:
            w.write(Frame(rgb=f))
    assert main(["encode", str(src), "-m", "video-dcvc", "-q", "3", "--i-period", "2", "--effort", "1", "-v"]) == 0
    lic = tmp_path / "clip.lic"
    assert "5 frames 64x48" in capsys.readouterr().out
    assert main(["info", str(lic)]) == 0
    out = capsys.readouterr().out
    assert "I-period 2" in out and out.count("  I  ") == 3 and out.count("  P  ") == 2
    assert main(["decode", str(lic), "-o", str(tmp_path / "all.y4m")]) == 0
    assert main(["decode", str(lic), "-o", str(tmp_path / "part"), "--frames", "3:5"]) == 0
    full = [f.rgb() for f in open_video(tmp_path / "all.y4m")]
    part = sorted((tmp_path / "part").glob("*.png"))
    assert len(full) == 5 and len(part) == 2
    decoded = [d.rgb for d in coding.decompress(lic.read_bytes())]
    assert np.array_equal(np.asarray(Image.open(part[0])), decoded[3])
    capsys.readouterr()
    for argv, match in [(["decode", str(lic), "-o", str(tmp_path / "all.y4m")], "exists"),
                        (["decode", str(lic), "-o", str(tmp_path / "x.y4m"), "--frames", "4:2"], "empty"),
                        (["decode", str(lic), "-o", str(tmp_path / "x.y4m"), "--frames", "9:"], "has 5 frames"),
                        (["encode", str(src), "-o", str(tmp_path / "b.lic"), "-m", "hyperprior-ctx"], "image codec"),
                        (["encode", str(src), "-o", str(tmp_path / "b.lic"), "--bpp", "0.5"], "--bpp is for images"),
                        (["encode", str(tmp_path / "raw.yuv"), "--size", "64x48"], "no such file")]:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.y4m").exists() and not (tmp_path / "b.lic").exists()
    damaged = bytearray(lic.read_bytes())
    damaged[vc.VideoReader(bytes(damaged)).index.entry(1).offset + 10] ^= 0xFF
    (tmp_path / "bad.lic").write_bytes(bytes(damaged))
    assert main(["decode", str(tmp_path / "bad.lic"), "-o", str(tmp_path / "bad.y4m")]) == 1
    err = capsys.readouterr().err
    assert "frame 1 damaged" in err and "1 damaged frame(s) (1) concealed" in err
    assert len(list(open_video(tmp_path / "bad.y4m"))) == 5


def test_motion_quality_offset_codes_motion_finer_and_decodes(codec):
    """``motion_quality_offset`` runs the motion coder at a higher quality (at most 8) on both
    sides: the decoder still rebuilds the encoder's frames."""
    frames = clip(3)
    finer = build(codec.codec_id, **{**SMALL[codec.codec_id], "motion_quality_offset": 3.0})  # noqa: F821
    assert finer._motion_quality(torch.tensor([2.0, 7.0])).tolist() == [5.0, 8.0]
    for model in (codec, finer):
        data = encode(model, frames, quality=2.0, i_period=3)
        reference = None
        for i, (frame, decoded) in enumerate(zip(frames, coding.decompress(data, codec=model))):
            _, reference = model.encode_frame(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255, 2.0,
                                              None if i == 0 else reference)
            assert np.array_equal(decoded.rgb, reference[0].permute(1, 2, 0).numpy())


def test_effort_refines_the_intra_coded_latents_and_decodes_unchanged(codec):
    """At effort > 0 the encoder refines the latents the intra codec codes (I-frames; residuals in
    ``video-dvc``): other bytes, the same decoder, which still rebuilds the encoder's frames."""
    frames = clip(3)
    plain, refined = encode(codec, frames, quality=4.0), encode(codec, frames, quality=4.0, effort=2)
    plain_y, refined_y = ([r.stream("y") for r in vc.VideoReader(d).records()] for d in (plain, refined))
    assert plain_y[0] != refined_y[0]
    x = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames]
    _, reference = codec.encode_frame(x[0], 4.0, None)
    p_plain, p_refined = (codec.encode_frame(x[1], 4.0, reference, effort=e)[0] for e in (0, 2))
    assert p_plain["motion_y"] == p_refined["motion_y"]  # motion is not refined
    assert (p_plain["y"] != p_refined["y"]) == (codec.codec_id == "video-dvc")  # a residual is
    reference = None
    for i, (frame, decoded) in enumerate(zip(frames, coding.decompress(refined, codec=codec))):
        _, reference = codec.encode_frame(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255, 4.0,
                                          None if i % 3 == 0 else reference, effort=2)
        assert np.array_equal(decoded.rgb, reference[0].permute(1, 2, 0).numpy()), i
    with pytest.raises(LicodecError, match="effort must be an integer from 0 to 9"):
        encode(codec, frames, effort=10)


def test_intra_quality_offset_codes_i_frames_finer_and_decodes(codec):
    """``intra_quality_offset`` codes I-frames at a higher quality (at most 8) on both sides."""
    frames = clip(3)
    finer = build(codec.codec_id, **{**SMALL[codec.codec_id], "intra_quality_offset": 2.0})  # noqa: F821
    assert finer._intra_quality(torch.tensor([3.0, 7.0])).tolist() == [5.0, 8.0]
    sizes = []
    for model in (codec, finer):
        data = encode(model, frames, quality=3.0, i_period=3)
        sizes.append(next(vc.VideoReader(data).records()).payload_bytes)
        reference = None
        for i, (frame, decoded) in enumerate(zip(frames, coding.decompress(data, codec=model))):
            _, reference = model.encode_frame(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255, 3.0,
                                              None if i == 0 else reference)
            assert np.array_equal(decoded.rgb, reference[0].permute(1, 2, 0).numpy())
    assert sizes[1] > sizes[0]


def test_p_quality_offsets_schedule_the_p_frames_and_decode(codec):
    """``p_quality_offsets`` codes the k-th P-frame after each I-frame at the quality plus the k-th
    offset (within 1..Q, unchanged past the tuple): fewer bytes for lowered P-frames, and the
    decoder, which applies the same schedule from each frame's number, rebuilds every frame,
    also when it starts at a later I-frame."""
    frames = clip(7)
    lowered = build(codec.codec_id, **{**SMALL[codec.codec_id], "p_quality_offsets": (-2.0, -1.5)})  # noqa: F821
    assert lowered.config.p_quality_offsets == (-2.0, -1.5)
    assert [lowered.frame_quality(3.0, k) for k in range(5)] == [3.0, 1.0, 1.5, 3.0, 3.0]
    assert lowered.frame_quality(1.0, 1) == 1.0 and codec.frame_quality(3.0, 1) == 3.0
    assert build(codec.codec_id, **{**SMALL[codec.codec_id], "p_quality_offsets": (9.0,)}).frame_quality(3.0, 1) == 8.0  # noqa: F821
    plain, scheduled = encode(codec, frames, quality=3.0, i_period=4), encode(lowered, frames, quality=3.0, i_period=4)
    plain_sizes, scheduled_sizes = ([r.payload_bytes for r in vc.VideoReader(d).records()] for d in (plain, scheduled))
    assert scheduled_sizes[0] == plain_sizes[0] and scheduled_sizes[4] == plain_sizes[4]  # I-frames unchanged
    assert scheduled_sizes[1] < plain_sizes[1] or codec.codec_id == "video-dcvc"  # untrained dcvc: equal gains per quality
    reference, rebuilt = None, []
    for i, frame in enumerate(frames):
        _, reference = lowered.encode_frame(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255,
                                            lowered.frame_quality(3.0, i % 4), None if i % 4 == 0 else reference)
        rebuilt.append(reference[0].permute(1, 2, 0).numpy())
    for start in (0, 5):
        for decoded in coding.decompress(scheduled, start=start, codec=lowered):
            assert np.array_equal(decoded.rgb, rebuilt[decoded.number]), decoded.number
