"""Motion for the video codec: a classical optical-flow front end and backward warping.

The encoder estimates dense motion with OpenCV's DIS optical flow (Kroeger et al. 2016,
"Fast Optical Flow using Dense Inverse Search", ECCV), a fast CPU method with no learned
weights; the video codec then codes that flow with a learned transform and entropy model, so
the decoder never runs the estimator. Only the decoded flow builds reference frames, so the
estimator's own numerics (its thread count, its OpenCV build) cannot make encoder and decoder
disagree.

A flow ``f`` ``(B, 2, H, W)`` in pixels maps each pixel ``(x, y)`` of the current frame to
``(x + f[0], y + f[1])`` in the reference: ``warp(ref, f)`` is the reference resampled there
(bilinear, borders replicated).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from licodec.errors import LicodecError

_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - an install problem, said in one line
        raise LicodecError("the video codec's motion estimation needs OpenCV: pip install opencv-python-headless") from exc
    return cv2


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of ``(H, W, 3)`` uint8 RGB as ``(H, W)`` uint8 (the estimator's input)."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def estimate_flow(current: np.ndarray, reference: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Dense flow from ``current`` to ``reference`` (both ``(H, W, 3)`` uint8 RGB), ``(2, H, W)``
    float32 in pixels: ``current[y, x]`` is seen at ``reference[y + f[1], x + f[0]]``.

    One thread: the flow then depends on the frames alone, never on the machine's core count
    (the bits the encoder writes are reproducible)."""
    cv2 = _cv2()
    if current.shape != reference.shape:
        raise LicodecError(f"frames of different sizes: {current.shape[:2]} and {reference.shape[:2]}")
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
        flow = dis.calc(luma(current), luma(reference), None)
    finally:
        cv2.setNumThreads(threads)
    return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)


def estimate_flow_batch(current: Tensor, reference: Tensor, preset: str = "medium") -> Tensor:
    """:func:`estimate_flow` over a batch: ``(B, 3, H, W)`` in [0, 1] each -> ``(B, 2, H, W)``."""
    def to_rgb(x: Tensor) -> np.ndarray:
        return (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()

    flows = [estimate_flow(to_rgb(c), to_rgb(r), preset) for c, r in zip(current, reference)]
    return torch.from_numpy(np.stack(flows)).to(current.device)


def warp(x: Tensor, flow: Tensor) -> Tensor:
    """Backward warp: ``x`` ``(B, C, H, W)`` sampled at each pixel plus ``flow`` ``(B, 2, H, W)``
    (pixels; x then y), bilinear, borders replicated. Exact in float64 when both are float64."""
    b, _, h, w = x.shape
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device)
    gx = (xs[None, None, :] + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys[None, :, None] + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x.to(flow.dtype), grid, mode="bilinear", padding_mode="border", align_corners=True)
