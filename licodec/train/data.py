"""Random training crops from a folder of images, held in memory as uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from licodec.errors import LicodecError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise LicodecError(f"not a folder: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise LicodecError(f"no images in {folder}")
    return files


class RandomCrops:
    """Batches of random ``crop``x``crop`` RGB patches with random horizontal flips.

    Every image is decoded once and kept as uint8; images smaller than the crop are
    skipped. ``batch(n)`` returns ``(n, 3, crop, crop)`` float32 in [0, 1].
    """

    def __init__(self, folder: str | Path, crop: int, seed: int = 0) -> None:
        self.crop = crop
        self.images = []
        for path in list_images(folder):
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
            if arr.shape[0] >= crop and arr.shape[1] >= crop:
                self.images.append(arr)
        if not self.images:
            raise LicodecError(f"no image in {folder} is at least {crop}x{crop}")
        # sample images in proportion to their area, so large photos give more crops
        areas = np.array([a.shape[0] * a.shape[1] for a in self.images], dtype=np.float64)
        self.weights = np.sqrt(areas) / np.sqrt(areas).sum()
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, n: int) -> torch.Tensor:
        c = self.crop
        out = np.empty((n, c, c, 3), dtype=np.uint8)
        for i, k in enumerate(self.rng.choice(len(self.images), size=n, p=self.weights)):
            img = self.images[k]
            top = self.rng.integers(0, img.shape[0] - c + 1)
            left = self.rng.integers(0, img.shape[1] - c + 1)
            patch = img[top : top + c, left : left + c]
            out[i] = patch[:, ::-1] if self.rng.random() < 0.5 else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
