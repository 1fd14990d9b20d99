"""licodec.video: RGB <-> YUV 4:2:0, YUV PSNR, and the y4m / raw yuv / PNG folder / mp4 readers and writers."""

import math
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from licodec.errors import LicodecError
from licodec.video.color import YUV420, frame_bytes, rgb_to_yuv420, yuv420_psnr, yuv420_to_rgb
from licodec.video.io import Frame, VideoInfo, open_video, open_writer


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """A smooth colour image: gradients and a slow sine, no edges."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 40 + 170 * xx / max(width - 1, 1)
    g = 128 + 80 * np.sin(yy / 9.0) * np.cos(xx / 13.0)
    b = 200 - 150 * yy / max(height - 1, 1)
    return np.clip(np.stack([r, g, b], axis=-1).round(), 0, 255).astype(np.uint8)


def random_yuv(rng: np.random.Generator, height: int, width: int) -> YUV420:
    ch, cw = (height + 1) // 2, (width + 1) // 2
    return YUV420(
        rng.integers(16, 236, (height, width), dtype=np.uint8),
        rng.integers(16, 241, (ch, cw), dtype=np.uint8),
        rng.integers(16, 241, (ch, cw), dtype=np.uint8),
    )


def yuv_equal(a: YUV420, b: YUV420) -> bool:
    return all(np.array_equal(getattr(a, p), getattr(b, p)) for p in ("y", "u", "v"))


def solid(rgb, height=4, width=6) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (height, width, 3)).copy()


# ----------------------------------------------------------------------------- colour


@pytest.mark.parametrize(
    "rgb, matrix, expected",
    [
        ((0, 0, 0), "bt601", (16, 128, 128)),
        ((255, 255, 255), "bt601", (235, 128, 128)),
        ((255, 0, 0), "bt601", (81, 90, 240)),  # the textbook BT.601 red
        ((0, 0, 255), "bt601", (41, 240, 110)),
        ((255, 0, 0), "bt709", (63, 102, 240)),
        ((255, 255, 255), "bt709", (235, 128, 128)),
    ],
)
def test_known_colours_limited_range(rgb, matrix, expected):
    yuv = rgb_to_yuv420(solid(rgb), matrix=matrix)
    assert (yuv.y.min(), yuv.y.max()) == (expected[0], expected[0])
    assert (yuv.u.min(), yuv.u.max()) == (expected[1], expected[1])
    assert (yuv.v.min(), yuv.v.max()) == (expected[2], expected[2])


def test_black_and_white_convert_back_exactly_and_full_range_uses_0_to_255():
    for value in (0, 255):
        image = solid((value, value, value))
        assert np.array_equal(yuv420_to_rgb(rgb_to_yuv420(image)), image)
        full = rgb_to_yuv420(image, full_range=True)
        assert full.y.min() == full.y.max() == value and full.u.max() == full.v.min() == 128
        assert np.array_equal(yuv420_to_rgb(full, full_range=True), image)


@pytest.mark.parametrize("height, width", [(48, 64), (23, 37)])
def test_rgb_yuv_rgb_round_trip_on_a_smooth_image(height, width):
    image = smooth_rgb(height, width)
    yuv = rgb_to_yuv420(image)
    assert yuv.y.shape == (height, width) and yuv.u.shape == yuv.v.shape == ((height + 1) // 2, (width + 1) // 2)
    back = yuv420_to_rgb(yuv).astype(np.int64)
    error = np.abs(back - image)
    psnr = 10 * math.log10(255**2 / np.mean(error.astype(np.float64) ** 2))
    assert error.max() <= 8, error.max()  # 4:2:0 loses some chroma detail even on gradients
    assert psnr > 38, psnr


def test_yuv_rgb_yuv_is_lossless_up_to_rounding_for_in_gamut_colour():
    """Nearest chroma upsampling + 2x2 averaging: a YUV frame that came from RGB survives a trip through RGB."""
    yuv = rgb_to_yuv420(smooth_rgb(30, 41))
    again = rgb_to_yuv420(yuv420_to_rgb(yuv))
    for plane in ("y", "u", "v"):
        assert np.abs(getattr(again, plane).astype(int) - getattr(yuv, plane)).max() <= 1


def test_yuv420_checks_plane_shapes():
    with pytest.raises(LicodecError, match="chroma"):
        YUV420(np.zeros((5, 5), np.uint8), np.zeros((2, 2), np.uint8), np.zeros((3, 3), np.uint8))
    with pytest.raises(LicodecError, match="uint8"):
        YUV420(np.zeros((4, 4)), np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(LicodecError, match="matrix"):
        rgb_to_yuv420(solid((1, 2, 3)), matrix="bt2020")


def test_yuv420_psnr_identical_is_capped_and_known_mse_gives_known_value():
    rng = np.random.default_rng(0)
    ref = random_yuv(rng, 16, 20)
    same = yuv420_psnr(ref, ref)
    assert same == {"psnr_y": 100.0, "psnr_u": 100.0, "psnr_v": 100.0, "psnr_yuv": 100.0}

    test = YUV420(ref.y + 1, ref.u - 2, ref.v.copy())  # MSE 1, 4, 0 (no wrap: planes are in [16, 240])
    scores = yuv420_psnr(ref, test)
    psnr_y = 20 * math.log10(255)  # 48.13 dB
    psnr_u = 10 * math.log10(255**2 / 4)
    assert scores["psnr_y"] == pytest.approx(psnr_y)
    assert scores["psnr_u"] == pytest.approx(psnr_u)
    assert scores["psnr_v"] == 100.0
    assert scores["psnr_yuv"] == pytest.approx((6 * psnr_y + psnr_u + 100.0) / 8)

    with pytest.raises(LicodecError, match="different sizes: 20x16 and 22x16"):
        yuv420_psnr(ref, random_yuv(rng, 16, 22))


def test_frame_converts_lazily_and_caches():
    image = smooth_rgb(8, 10)
    frame = Frame(rgb=image)
    assert frame.native == "rgb" and (frame.width, frame.height) == (10, 8)
    assert frame.yuv() is frame.yuv()
    assert frame.rgb() is image
    from_yuv = Frame(yuv=frame.yuv(), matrix="bt709")
    assert from_yuv.native == "yuv" and from_yuv.rgb() is from_yuv.rgb()
    with pytest.raises(LicodecError, match="exactly one"):
        Frame()


# ----------------------------------------------------------------------------- y4m


def write_y4m(path, frames: list[YUV420], fps=Fraction(30000, 1001)) -> VideoInfo:
    info = VideoInfo(frames[0].width, frames[0].height, fps, len(frames), "test")
    with open_writer(path, info) as writer:
        for yuv in frames:
            writer.write(Frame(yuv=yuv))
    return info


@pytest.mark.parametrize("height, width", [(16, 24), (23, 37)])
def test_y4m_write_then_read_gives_the_same_planes(tmp_path, height, width):
    rng = np.random.default_rng(1)
    frames = [random_yuv(rng, height, width) for _ in range(3)]
    path = tmp_path / "clip.y4m"
    write_y4m(path, frames)
    header = path.read_bytes().split(b"\n", 1)[0]
    assert header == f"YUV4MPEG2 W{width} H{height} F30000:1001 Ip A1:1 C420".encode()
    assert path.stat().st_size == len(header) + 1 + 3 * (6 + frame_bytes(width, height))
    assert [p.name for p in tmp_path.iterdir()] == ["clip.y4m"]  # no temporary file left

    reader = open_video(path)
    assert reader.info == VideoInfo(width, height, Fraction(30000, 1001), 3, "y4m C420")
    read = list(reader)
    assert [f.native for f in read] == ["yuv"] * 3 and [f.index for f in read] == [0, 1, 2]
    assert all(yuv_equal(a.yuv(), b) for a, b in zip(read, frames))
    # selection: start:stop:step, negative index, and twice over the same reader
    assert [f.index for f in reader[1:]] == [1, 2] and reader[::2].info.frames == 2
    assert reader[::2].info.fps == Fraction(15000, 1001)
    assert yuv_equal(reader[-1].yuv(), frames[2])
    assert [f.index for f in open_video(path, frames=slice(0, 2))] == [0, 1]
    assert len(list(reader)) == 3


def test_y4m_reader_accepts_other_420_tags_and_frame_parameters(tmp_path):
    rng = np.random.default_rng(2)
    yuv = random_yuv(rng, 4, 6)
    path = tmp_path / "tagged.y4m"
    path.write_bytes(
        b"YUV4MPEG2 W6 H4 F25:1 Ip A0:0 C420mpeg2 XYSCSS=420MPEG2\n"
        + b"FRAME\n" + yuv.tobytes()
        + b"FRAME Ixyz\n" + yuv.tobytes()
    )
    reader = open_video(path)
    assert reader.info.frames == 2 and reader.info.fps == 25 and reader.info.source_format == "y4m C420mpeg2"
    assert all(yuv_equal(f.yuv(), yuv) for f in reader)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"YUV4MPEG W6 H4 F25:1\nFRAME\n", "not a YUV4MPEG2 file"),
        (b"YUV4MPEG2 W6 F25:1 C420\nFRAME\n" + bytes(36), "no H tag"),
        (b"YUV4MPEG2 W6 Hx F25:1\nFRAME\n", "not a positive size"),
        (b"YUV4MPEG2 W6 H4 F25\nFRAME\n", "F<num>:<den>"),
        (b"YUV4MPEG2 W6 H4 F25:1 It C420\nFRAME\n" + bytes(36), "interlaced"),
        (b"YUV4MPEG2 W6 H4 F25:1 C444\nFRAME\n" + bytes(72), "chroma format C444"),
        (b"YUV4MPEG2 W6 H4 F25:1 C420p10\nFRAME\n" + bytes(72), "high bit depth"),
        (
            b"YUV4MPEG2 W6 H4 F25:1 C420\nFRAME\n" + bytes(36) + b"FRAME\n" + bytes(20),
            r"frame 1 is truncated \(20 of 36 bytes\)",
        ),
        (b"YUV4MPEG2 W6 H4 F25:1 C420\nFRAME\n" + bytes(36) + b"GARBAGE\n", "frame 1 does not start with a FRAME"),
        (b"YUV4MPEG2 W6 H4 F25:1 C420\n", "has no frames"),
        (b"YUV4MPEG2 W6 H4 C420\nFRAME\n" + bytes(36), r"frame rate \(F tag\); pass fps="),
    ],
)
def test_malformed_y4m_gives_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.y4m"
    path.write_bytes(content)
    with pytest.raises(LicodecError, match=message) as caught:
        open_video(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


# ----------------------------------------------------------------------------- raw yuv


def test_raw_yuv_reads_with_size_and_fps(tmp_path):
    rng = np.random.default_rng(3)
    frames = [random_yuv(rng, 10, 14) for _ in range(4)]
    path = tmp_path / "clip_14x10.yuv"
    path.write_bytes(b"".join(f.tobytes() for f in frames))
    reader = open_video(path, size=(14, 10), fps=50)
    assert reader.info == VideoInfo(14, 10, Fraction(50), 4, "yuv420p (raw)")
    assert all(yuv_equal(a.yuv(), b) for a, b in zip(reader, frames))
    assert [f.index for f in reader[1:3]] == [1, 2]
    assert open_video(path, size=(14, 10), fps=29.97).info.fps == Fraction(30000, 1001)

    with pytest.raises(LicodecError, match=r"pass size=\(width, height\) \(the name suggests size=\(14, 10\)\)"):
        open_video(path, fps=50)
    with pytest.raises(LicodecError, match="pass fps="):
        open_video(path, size=(14, 10))
    with pytest.raises(LicodecError, match="not a whole number of 16x10 I420 frames"):
        open_video(path, size=(16, 10), fps=50)
    with pytest.raises(LicodecError, match="must be positive"):
        open_video(path, size=(14, 10), fps=0)


# ----------------------------------------------------------------------------- PNG folders


def test_png_folder_write_then_read_round_trip(tmp_path):
    images = [np.roll(smooth_rgb(12, 18), shift, axis=1) for shift in range(3)]
    info = VideoInfo(18, 12, Fraction(25), 3, "test")
    folder = tmp_path / "frames"
    with open_writer(folder, info) as writer:
        for image in images:
            writer.write(Frame(rgb=image))
    assert sorted(p.name for p in folder.iterdir()) == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]  # staging folder gone

    reader = open_video(folder, fps=Fraction(24000, 1001))
    assert reader.info == VideoInfo(18, 12, Fraction(24000, 1001), 3, "png folder")
    assert all(np.array_equal(f.rgb(), image) and f.native == "rgb" for f, image in zip(reader, images))
    assert open_video(folder).info.fps == 25  # the default

    with pytest.raises(LicodecError, match="not empty; pass overwrite=True"):
        open_writer(folder, info)
    with open_writer(folder, info, overwrite=True) as writer:  # fewer frames: stale ones go
        writer.write(Frame(rgb=images[2]))
    assert [p.name for p in folder.iterdir()] == ["frame_00000.png"]
    assert np.array_equal(open_video(folder)[0].rgb(), images[2])


def test_png_folder_is_read_in_lexical_order_and_converts_gray(tmp_path):
    for name, value in [("b.png", 20), ("a.png", 10), ("c.png", 30)]:
        Image.fromarray(np.full((4, 6), value, np.uint8), "L").save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a frame")
    values = [int(f.rgb()[0, 0, 0]) for f in open_video(tmp_path)]
    assert values == [10, 20, 30]


def test_png_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LicodecError, match="empty is a folder with no PNG frames"):
        open_video(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(smooth_rgb(8, 8)).save(mixed / "f1.png")
    Image.fromarray(smooth_rgb(8, 10)).save(mixed / "f2.png")
    with pytest.raises(LicodecError, match="f2.png is 10x8 but f1.png is 8x8"):
        open_video(mixed)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "f1.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(LicodecError, match="f1.png is not a readable PNG"):
        open_video(broken)
    single = tmp_path / "single"
    single.mkdir()
    Image.fromarray(smooth_rgb(8, 8)).save(single / "f.png")
    with pytest.raises(LicodecError, match="single is 8x8, not the 16x16 asked for"):
        open_video(single, size=(16, 16))


# ----------------------------------------------------------------------------- mp4 via imageio-ffmpeg


def make_mp4(path, width=64, height=48, frames=5, fps=25):
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, codec="libx264", macro_block_size=1,
        output_params=["-preset", "ultrafast", "-qp", "0"],
    )
    writer.send(None)
    for i in range(frames):
        writer.send(solid((40 * i + 20, 100, 200 - 30 * i), height, width).tobytes())
    writer.close()


def test_mp4_is_read_through_imageio_ffmpeg(tmp_path):
    path = tmp_path / "clip.mp4"
    make_mp4(path)
    reader = open_video(path)
    assert (reader.info.width, reader.info.height, reader.info.frames, reader.info.fps) == (64, 48, 5, 25)
    assert reader.info.source_format == "mp4 h264 yuv420p"
    frames = list(reader)
    assert len(frames) == 5 and all((f.width, f.height, f.native) == (64, 48, "yuv") for f in frames)
    # lossless x264 of solid colours: the RGB we get back is the colour sent, within 4:2:0 rounding
    for i, frame in enumerate(frames):
        expected = np.array([40 * i + 20, 100, 200 - 30 * i])
        assert np.abs(frame.rgb().reshape(-1, 3).astype(int) - expected).max() <= 3
    assert [f.index for f in reader[3:]] == [3, 4]
    with pytest.raises(LicodecError, match="is 64x48, not the 32x32 asked for"):
        open_video(path, size=(32, 32))


def test_odd_sized_rgb_container_is_read_as_rgb(tmp_path):
    import subprocess

    import imageio_ffmpeg

    path = tmp_path / "odd.mkv"
    source = "testsrc=size=65x49:rate=24000/1001:duration=0.2"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", source]
    subprocess.run(cmd + ["-c:v", "ffv1", "-pix_fmt", "bgr0", str(path)], check=True)
    reader = open_video(path)
    assert (reader.info.width, reader.info.height, reader.info.fps) == (65, 49, Fraction(24000, 1001))
    frames = list(reader)
    assert len(frames) == reader.info.frames == 5
    assert frames[0].native == "rgb" and frames[0].rgb().shape == (49, 65, 3)
    assert frames[0].yuv().u.shape == (25, 33)


def test_unreadable_container_gives_licodec_error(tmp_path):
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"this is not a video" * 50)
    with pytest.raises(LicodecError, match="junk.mp4: ffmpeg cannot read it as a video"):
        open_video(path)


# ----------------------------------------------------------------------------- general errors and writers


def test_missing_empty_and_unknown_inputs(tmp_path):
    with pytest.raises(LicodecError, match="no such file or folder: .*nothing.y4m"):
        open_video(tmp_path / "nothing.y4m")
    (tmp_path / "empty.y4m").write_bytes(b"")
    with pytest.raises(LicodecError, match="empty.y4m is empty"):
        open_video(tmp_path / "empty.y4m")
    (tmp_path / "clip.flv").write_bytes(b"x")
    with pytest.raises(LicodecError, match=r"clip.flv: unknown video extension '.flv'"):
        open_video(tmp_path / "clip.flv")


def test_writers_refuse_bad_targets_and_leave_nothing_on_error(tmp_path):
    info = VideoInfo(6, 4, Fraction(25), None, "test")
    with pytest.raises(LicodecError, match="unknown video extension '.mp4'"):
        open_writer(tmp_path / "out.mp4", info)
    with pytest.raises(LicodecError, match="does not exist"):
        open_writer(tmp_path / "no" / "out.y4m", info)

    existing = tmp_path / "exists.y4m"
    existing.write_bytes(b"keep me")
    with pytest.raises(LicodecError, match="exists; pass overwrite=True"):
        open_writer(existing, info)

    for target in (tmp_path / "half.y4m", tmp_path / "half_frames", existing):
        with pytest.raises(LicodecError, match=r"frame 1 is 8x4, the video is 6x4"):
            with open_writer(target, info, overwrite=True) as writer:
                writer.write(Frame(rgb=solid((1, 2, 3), 4, 6)))
                writer.write(Frame(rgb=solid((1, 2, 3), 4, 8)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.y4m"]
    assert existing.read_bytes() == b"keep me"

    for target in (tmp_path / "none.y4m", tmp_path / "none_frames"):
        with pytest.raises(LicodecError, match="no frames were written"):
            open_writer(target, info).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.y4m"]
