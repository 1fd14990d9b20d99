"""Per-frame quality of a decoded video frame against its source, in YUV 4:2:0 and in RGB.

The source :class:`~licodec.video.io.Frame` gives both forms (its native one as read, the other
converted with its own matrix and range). A decoded frame comes as RGB (licodec codecs) or as
:class:`~licodec.video.color.YUV420` (x264/x265); the other form is made with the *source's*
conversion, so every codec is scored on the same two references:

- YUV: ``psnr_y``, ``psnr_u``, ``psnr_v`` and ``psnr_yuv = (6 Y + U + V) / 8`` against the source's
  8-bit YUV 4:2:0 (BT.601 limited range for RGB sources: what the x26x anchors were given);
- RGB: ``psnr_rgb`` and MS-SSIM against the source's RGB.

PSNRs are in dB, capped at 100 dB for identical planes (:data:`licodec.video.color.PSNR_CAP_DB`).
"""

from __future__ import annotations

import numpy as np

from licodec.video.color import YUV420, plane_psnr, rgb_to_yuv420, yuv420_psnr, yuv420_to_rgb
from licodec.video.io import Frame

MS_SSIM_MIN_SIDE = 161
"""MS-SSIM's five scales need a smaller side above 160 px; smaller clips get no MS-SSIM."""

SCORE_NAMES = ("psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "psnr_rgb", "ms_ssim")


def psnr_yuv(ref: np.ndarray, dist: np.ndarray) -> float:
    """``(6 Y + U + V) / 8`` PSNR in dB of two ``(H, W, 3)`` uint8 RGB images converted to
    YUV 4:2:0 (BT.601, limited range): the registry's ``psnr-yuv`` on RGB pairs."""
    return yuv420_psnr(rgb_to_yuv420(ref), rgb_to_yuv420(dist))["psnr_yuv"]


def has_ms_ssim(width: int, height: int) -> bool:
    return min(width, height) >= MS_SSIM_MIN_SIDE


def frame_scores(source: Frame, decoded: np.ndarray | YUV420) -> dict[str, float | None]:
    """Scores of one decoded frame (``(H, W, 3)`` uint8 RGB or :class:`YUV420`) against ``source``:
    the keys of :data:`SCORE_NAMES`; ``ms_ssim`` (in [0, 1]) is None for frames too small for it."""
    if isinstance(decoded, YUV420):
        decoded_yuv = decoded
        decoded_rgb = yuv420_to_rgb(decoded, source.matrix, source.full_range)
    else:
        decoded_rgb = decoded
        decoded_yuv = rgb_to_yuv420(decoded, source.matrix, source.full_range)
    reference_rgb = source.rgb()
    scores: dict[str, float | None] = dict(yuv420_psnr(source.yuv(), decoded_yuv))
    scores["psnr_rgb"] = plane_psnr(reference_rgb, decoded_rgb)
    scores["ms_ssim"] = None
    if has_ms_ssim(source.width, source.height):
        from licodec.eval.perceptual import ms_ssim

        scores["ms_ssim"] = ms_ssim(reference_rgb, decoded_rgb)
    return scores
