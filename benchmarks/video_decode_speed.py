"""Decoding speed of the video codec with and without showing P-frames through its post-filter,
A/B in one process on the same frame records (the start of BasketballPass, 416x240): each arm decodes
the whole run of frames (one I-frame, then P-frames, each against the previous decoded frame), the
arms interleaved so that drifts in machine load hit both alike; median seconds of each.

    OMP_NUM_THREADS=1 python benchmarks/video_decode_speed.py --frames 8 --quality 4 --repeats 3

``reference only`` is :meth:`~licodec.codec.video.VideoCodecBase.decode_frame` (what a decoder needs
to rebuild the references), ``shown`` is :meth:`~licodec.codec.video.VideoCodecBase.decode_frame_and_show`
(the references and the post-filtered frames a player shows). Writes OUT (default
benchmarks/results/video/decode_speed.json).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image

from common import RESULTS, SHARED, interleaved_medians, machine, write_json

CLIP = SHARED / "data" / "video" / "BasketballPass_416x240_100f_rgb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="P-frames after the I-frame")
    parser.add_argument("--quality", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="video-dvc")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import torch

    from licodec.codec.video import frame_tensor
    from licodec.video.coding import load_video_codec

    codec = load_video_codec(args.model)
    if getattr(codec, "post_filter", None) is None:
        raise SystemExit(f"{args.model} has no post-filter: nothing to compare")
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(CLIP.glob("*.png"))[: args.frames + 1]]
    if len(frames) < 2:
        raise SystemExit(f"{CLIP}: fewer than 2 frames")
    size = frames[0].shape[:2]
    t0 = time.perf_counter()
    records, reference = [], None
    for f in frames:
        streams, reference = codec.encode_frame(frame_tensor(f), args.quality, reference)
        records.append(streams)
    encode_s = time.perf_counter() - t0

    def decode(show: bool):
        def run():
            reference = None
            for streams in records:
                if show:
                    reference, _ = codec.decode_frame_and_show(streams, args.quality, reference, size)
                else:
                    reference = codec.decode_frame(streams, args.quality, reference, size)
        return run

    medians = interleaved_medians({"reference only": decode(False), "shown": decode(True)}, args.repeats)
    n = len(frames)
    arms = {k: {"seconds": round(v, 3), "fps": round(n / v, 3)} for k, v in medians.items()}
    extra = medians["shown"] - medians["reference only"]
    write_json(RESULTS / "video" / "decode_speed.json" if args.out is None else args.out,
               {"clip": f"{CLIP.name}, frames 0-{args.frames} (1 I-frame, {args.frames} P-frames)",
                "model": args.model, "weights": codec.weights_sha256, "quality": args.quality,
                "post_filter_width": codec.config.post_filter, "repeats": args.repeats,
                "encode": {"seconds": round(encode_s, 3), "fps": round(n / encode_s, 3)},
                "decode": arms, "post_filter_seconds_per_p_frame": round(extra / args.frames, 4),
                "post_filter_decode_time_ratio": round(medians["shown"] / medians["reference only"], 4),
                "threads": torch.get_num_threads(), "machine": machine()})


if __name__ == "__main__":
    main()
