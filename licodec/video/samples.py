"""A small bundled test clip: the sample photo (``licodec/samples/kodim23.png``) seen by a
camera that pans, so that tests, golden values and the demo have real image content with known
motion and need no video file in the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "samples" / "kodim23.png"


def panned_clip(frames: int = 8, height: int = 192, width: int = 256, step: tuple[int, int] = (1, 2)) -> list[np.ndarray]:
    """``frames`` crops ``(height, width, 3)`` uint8 RGB of the sample photo, each moved by
    ``step = (dy, dx)`` pixels from the previous one (a pan to the lower right), starting at the
    photo's top-left corner. Raises ValueError if the pan leaves the photo."""
    with Image.open(SAMPLE_PHOTO) as im:
        photo = np.asarray(im.convert("RGB"))
    dy, dx = step
    last_y, last_x = (frames - 1) * dy, (frames - 1) * dx
    if frames < 1 or min(height, width, dy, dx) < 0 or last_y + height > photo.shape[0] or last_x + width > photo.shape[1]:
        raise ValueError(f"{frames} frames of {width}x{height} panned by {step} do not fit the "
                         f"{photo.shape[1]}x{photo.shape[0]} sample photo")
    return [np.ascontiguousarray(photo[i * dy : i * dy + height, i * dx : i * dx + width]) for i in range(frames)]
