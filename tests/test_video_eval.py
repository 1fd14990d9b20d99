"""Video evaluation (licodec.eval.video_*, ``licodec eval --video``): the x264/x265 anchors through
ffmpeg pipes, per-frame rows of every kind of codec, JSON curves ``licodec bdrate`` reads, resuming,
and one-line errors. Tiny synthetic clips (64x48, 6 frames, I-period 3); no shared data."""

import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import random_image
from licodec.cli.main import main
from licodec.eval import video_runner
from licodec.eval.video_anchors import VIDEO_ANCHORS, packet_sizes
from licodec.video.color import rgb_to_yuv420, yuv420_psnr
from licodec.video.io import Frame, VideoInfo, open_writer

W, H, N, PERIOD = 64, 48, 6, 3
SMALL = dict(N=16, M=16, context=8, motion_N=16, motion_M=16)


def moving_clip(n=N, h=H, w=W, seed=0):
    """A smooth random image panned by a pixel or two per frame, with a little noise."""
    rng = np.random.default_rng(seed)
    base = random_image(rng, h + 16, w + 16)
    frames = []
    for i in range(n):
        f = base[i : i + h, 2 * i : 2 * i + w].astype(int) + rng.integers(-3, 4, (h, w, 3))
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def save_png_clip(folder, frames):
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"im{i + 1}.png")
    return folder


def run_fails(capsys, argv, match):
    assert main(argv) == 1, argv
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in err, err


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory):
    """A small untrained video-dcvc (as tests/test_video_codec.py builds it), exported to a folder."""
    from licodec.zoo import create_model, get_entry
    from licodec.zoo.registry import export_weights

    torch.manual_seed(0)
    model = create_model("video-dcvc", pretrained=False, config=get_entry("video-dcvc").config_cls(**SMALL))
    with torch.no_grad():  # an untrained codec outputs its prediction; make the latent matter
        torch.nn.init.normal_(model.decoder.reconstruct[-1].weight, std=0.05)
    return export_weights(model, "video-dcvc", tmp_path_factory.mktemp("weights") / "small")


@pytest.mark.parametrize("name", ["x264", "x265"])
def test_anchor_streams_decode_to_the_right_frames_and_honour_the_gop(name):
    anchor = VIDEO_ANCHORS[name]
    source = [rgb_to_yuv420(f) for f in moving_clip()]
    psnrs, sizes = [], []
    for qp in (44, 32, 20):
        stream = anchor.encode(source, qp, PERIOD, Fraction(25))
        assert sum(stream.frame_bytes) == len(stream.data) and len(stream.frame_bytes) == N
        assert stream.frame_bytes == packet_sizes(stream.data, anchor.stream_format)
        decoded, types = anchor.decode(stream.data, W, H)
        assert len(decoded) == N and all(d.y.shape == (H, W) and d.u.shape == (H // 2, W // 2) for d in decoded)
        assert "".join(types) == "IPPIPP"
        psnrs.append(np.mean([yuv420_psnr(s, d)["psnr_yuv"] for s, d in zip(source, decoded)]))
        sizes.append(len(stream.data))
    assert psnrs[0] < psnrs[1] < psnrs[2] and psnrs[2] > 40
    assert sizes[0] < sizes[1] < sizes[2]
    _, types = anchor.decode(anchor.encode(source, 32, 4).data, W, H)
    assert "".join(types) == "IPPPIP"


def test_on_a_static_clip_i_frames_cost_more_than_p_frames():
    still = [rgb_to_yuv420(moving_clip(1)[0])] * N
    for name in ("x264", "x265-zl"):
        sizes = VIDEO_ANCHORS[name].encode(still, 27, PERIOD).frame_bytes
        intra, inter = sizes[0::PERIOD], [s for i, s in enumerate(sizes) if i % PERIOD]
        assert min(intra) > 4 * max(inter), (name, sizes)


def test_command_lines_are_the_documented_ones():
    line = VIDEO_ANCHORS["x264"].describe(qp=27, i_period=32)
    assert "-c:v libx264 -preset medium -bf 0 -g 32 -keyint_min 32 -sc_threshold 0 -qp 27" in line
    assert "-f h264 pipe:1" in line and "-pix_fmt yuv420p" in line
    line = VIDEO_ANCHORS["x265-zl"].describe(qp=37, i_period=8)
    assert "-tune zerolatency -qp 37 -x265-params keyint=8:min-keyint=8:scenecut=0:bframes=0" in line
    assert "-f hevc" in line


def test_eval_cli_writes_rows_curves_and_plots_and_resumes(tmp_path, small_weights, capsys, monkeypatch):
    import licodec
    from licodec.video import coding

    frames = moving_clip()
    clip = save_png_clip(tmp_path / "clips" / "moving", frames)
    y4m = tmp_path / "clips" / "still.y4m"
    with open_writer(y4m, VideoInfo(W, H, Fraction(25), None, "test")) as w:
        for f in moving_clip(N, seed=1)[:1] * N:
            w.write(Frame(rgb=f))
    out = tmp_path / "rd"
    argv = ["eval", "--video", str(clip), str(y4m), "-c", "x264", "x265", "intra:hyperprior-ctx",
            f"small={small_weights}", "-q", "x264=22,32,42", "-q", "x265=22,32,42", "-q", "intra:hyperprior-ctx=2,6",
            "-q", "small=3,7", "--i-period", str(PERIOD), "--frames", "6", "--fps", "25", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "bpp/PSNR-YUV" in printed and "BD-rate (PSNR (YUV 6:1:1))" in printed
    rows = video_runner.read_complete_rows(out / "per_frame.csv")
    assert len(rows) == 2 * N * (3 + 3 + 2 + 2)
    by = lambda codec, clip_name, q: sorted((r for r in rows if r["codec"] == codec and r["clip"] == clip_name
                                             and float(r["quality"]) == q), key=lambda r: int(r["frame"]))
    intra = by("intra:hyperprior-ctx", "moving", 2.0)
    assert [r["type"] for r in intra] == ["I"] * N and all(r["ms_ssim"] == "" for r in intra)
    assert int(intra[0]["bits"]) == 8 * len(licodec.compress(frames[0], quality=2))
    learned = by("small", "moving", 3.0)
    assert "".join(r["type"] for r in learned) == "IPPIPP"
    codec = coding.load_video_codec("video-dcvc", small_weights)
    data = b"".join(coding.compress(frames, 3.0, fps=25, i_period=PERIOD, codec=codec, frame_count=N))
    assert int(learned[0]["sequence_bytes"]) == len(data) > sum(int(r["bits"]) for r in learned) // 8
    decoded = [d.rgb for d in coding.decompress(data, codec=codec)]
    psnr_rgb = 10 * np.log10(255**2 / np.mean((decoded[4].astype(float) - frames[4]) ** 2))
    assert float(learned[4]["psnr_rgb"]) == pytest.approx(psnr_rgb)
    x264 = by("x264", "still.y4m", 32.0)
    assert "".join(r["type"] for r in x264) == "IPPIPP"
    assert int(x264[0]["bits"]) > 4 * int(x264[1]["bits"])
    assert sum(int(r["bits"]) for r in x264) == 8 * int(x264[0]["sequence_bytes"])

    curves = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(curves) == {"x264", "x265", "intra-hyperprior-ctx", "small"}
    x264_curve = curves["x264"]["results"]
    assert x264_curve["quality"] == [22.0, 32.0, 42.0] and "ms-ssim-rgb" not in x264_curve
    assert x264_curve["psnr-yuv"][0] > x264_curve["psnr-yuv"][2] and x264_curve["bpp"][0] > x264_curve["bpp"][2]
    assert curves["x264"]["i_period"] == PERIOD and curves["x264"]["frames"] == {"moving": N, "still.y4m": N}
    sequences = (out / "sequences.csv").read_text().splitlines()
    assert len(sequences) == 1 + 2 * 10
    assert (out / "per_frame_moving.png").is_file() and (out / "per_frame_still.y4m.png").is_file()

    assert main(["bdrate", str(out / "x264.json"), str(out / "x265.json"),
                 "--metric", "psnr-yuv"]) == 0
    assert "x265 (medium, low delay) vs x264 (medium, low delay) (psnr-yuv, pchip): BD-rate" in capsys.readouterr().out
    fig = tmp_path / "frames.png"
    assert main(["plot", "--per-frame", str(out / "per_frame.csv"), "--clip", "moving", "--bpp", "0.5",
                 "-o", str(fig)]) == 0
    assert Image.open(fig).size[0] > 500

    calls = []
    real = video_runner.run_point
    monkeypatch.setattr(video_runner, "run_point", lambda *a: calls.append(a[1].name) or real(*a))
    assert main(argv) == 0  # all done: nothing is coded again
    assert calls == []
    lines = (out / "per_frame.csv").read_text().splitlines(keepends=True)
    (out / "per_frame.csv").write_text("".join(lines[:-2]) + lines[-2][:20])  # interrupted mid-point
    assert main(argv) == 0
    assert len(calls) == 1 and len(video_runner.read_complete_rows(out / "per_frame.csv")) == len(rows)


def test_bad_input_gives_one_line_and_exit_1(tmp_path, capsys):
    clip = save_png_clip(tmp_path / "clip", moving_clip(3))
    odd = save_png_clip(tmp_path / "odd", [f[:47, :63] for f in moving_clip(2)])
    photos = save_png_clip(tmp_path / "photos", moving_clip(1))
    base = ["eval", "--video", str(clip), "--out", str(tmp_path / "o"), "--no-progress"]
    run_fails(capsys, ["eval", "--video", str(tmp_path / "none"), "-c", "x264"], "no such file or folder")
    run_fails(capsys, base + ["-c", "x266"], "unknown video codec 'x266'")
    run_fails(capsys, base + ["-c", "hyperprior-ctx"], "is an image codec; for an all-intra curve use intra:")
    run_fails(capsys, base + ["-c", "intra:jpeg420"], "all-intra takes a licodec image codec")
    run_fails(capsys, base + ["-c", "x264:e2"], "':eN' takes a licodec video codec and an effort from 0 to 9")
    run_fails(capsys, base + ["-c", "x264", "-q", "x264=60"], "QP must be a whole number from 0 to 51")
    run_fails(capsys, base + ["-c", "x264", "-q", "x265=30"], "not among the codecs evaluated")
    run_fails(capsys, base + ["-c", "x264", "--i-period", "0"], "--i-period must be at least 1")
    run_fails(capsys, base + ["-c", "x264", "-m", "lpips"], "-m is for the image eval")
    run_fails(capsys, base + ["-c", "x264", "-j", "2"], "--jobs is for the image eval")
    run_fails(capsys, ["eval", str(photos), "--video", str(clip)], "not both")
    run_fails(capsys, ["eval", str(photos), "--frames", "3"], "--frames is for video evaluation")
    run_fails(capsys, ["eval", str(photos), "-m", "psnr-yuv"], "psnr-yuv is a video metric")
    run_fails(capsys, ["eval", "--video", str(odd), "-c", "x264", "--out", str(tmp_path / "o2"), "--no-progress"],
              "odd, x264 at QP 22: x264 codes 4:2:0 frames with even sides; 63x47 is not")
    run_fails(capsys, ["eval", "--video", str(tmp_path / "none.yuv"), "-c", "x264"], "no such file")
    image_curve = tmp_path / "image.json"
    image_curve.write_text(json.dumps({"name": "img", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [30.0, 33.0]}}))
    run_fails(capsys, ["bdrate", str(image_curve), str(image_curve), "--metric", "psnr-yuv"], "has no 'psnr-yuv'")
    run_fails(capsys, ["plot", "--per-frame", str(image_curve), "-o", str(tmp_path / "p.png")], "not a per_frame.csv")
    run_fails(capsys, ["plot", "-o", str(tmp_path / "p.png")], "give results JSON files")


def test_a_learned_codec_at_an_effort_is_its_own_curve(small_weights):
    from licodec.eval.video_codecs import resolve_video_codec

    plain, refined = resolve_video_codec(f"small={small_weights}"), resolve_video_codec(f"small={small_weights}:e3")
    assert (refined.name, refined.effort, refined.model) == ("small:e3", 3, plain.model)
    assert refined.version() == plain.version() + ", effort 3"
    clip = [Frame(rgb=f) for f in moving_clip(2)]
    a, b = plain.code(clip, 4.0, 2, Fraction(25)), refined.code(clip, 4.0, 2, Fraction(25))
    assert a.frame_types == b.frame_types == ["I", "P"]
    assert not np.array_equal(a.decoded[0], b.decoded[0])  # a refined I-frame
