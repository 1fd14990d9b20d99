"""Test sets for rate-distortion evaluation: Kodak, CLIC, Tecnick, or any folder of images.

Nothing downloads unless asked: :func:`load_dataset` reads a local folder laid out as the
providers distribute the set; :func:`download_dataset` fetches it from the documented URL
for users who have internet. A set that is found incomplete is named by what it is
("Kodak (12 of 24 images)"), never by the full set's name alone.

Official layouts (what :func:`download_dataset` writes, and what a hand-made copy must look like):

- ``kodak``: ``ROOT/kodim01.png`` ... ``ROOT/kodim24.png`` (24 images, 768x512 or 512x768),
  from https://r0k.us/graphics/kodak/.
- ``clic-pro-valid``: CLIC 2020 professional validation, 41 PNG images up to 2048 px,
  from ``professional_valid_2020.zip`` (https://compression.cc), unpacked to ``ROOT/valid/*.png``.
- ``clic-pro-test``: CLIC 2020 professional test, from ``CLIC2020Professional_test.zip``,
  unpacked under ``ROOT``.
- ``tecnick``: TESTIMAGES "old sampling" RGB 1200x1200 set of 100 images used by
  Ballé et al. and Minnen et al., from ``testimages.zip`` (https://testimages.org),
  folder ``ROOT/.../RGB_OR_1200x1200/*.png``.

Images are found recursively below the root (PNG, JPEG, WebP, BMP, TIFF, PPM), sorted by path.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from licodec.errors import LicodecError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")


@dataclass(frozen=True)
class DatasetInfo:
    """A standard test set: its name, how many images it has, where it comes from."""

    name: str
    title: str
    count: int | None  # number of images of the complete set, when known
    homepage: str
    urls: tuple[str, ...]  # download sources (a zip/tar archive or single images)
    subfolder: str = ""  # images live in a folder of this name inside the archive


DATASETS: dict[str, DatasetInfo] = {
    "kodak": DatasetInfo(
        "kodak", "Kodak", 24, "https://r0k.us/graphics/kodak/",
        tuple(f"https://r0k.us/graphics/kodak/kodak/kodim{i:02d}.png" for i in range(1, 25))),
    "clic-pro-valid": DatasetInfo(
        "clic-pro-valid", "CLIC 2020 professional validation", 41, "https://compression.cc",
        ("https://data.vision.ee.ethz.ch/cvl/clic/professional_valid_2020.zip",)),
    "clic-pro-test": DatasetInfo(
        "clic-pro-test", "CLIC 2020 professional test", None, "https://compression.cc",
        ("https://data.vision.ee.ethz.ch/cvl/clic/test/CLIC2020Professional_test.zip",)),
    "tecnick": DatasetInfo(
        "tecnick", "Tecnick (TESTIMAGES RGB 1200x1200)", 100, "https://testimages.org",
        ("https://sourceforge.net/projects/testimages/files/OLD/OLD_SAMPLING/testimages.zip",),
        subfolder="RGB_OR_1200x1200"),
}


@dataclass(frozen=True)
class Dataset:
    """Images to evaluate on: a label that says what they are, and their paths."""

    name: str  # registry name ("kodak") or the folder's name
    label: str  # "Kodak (24)", "CLIC 2020 professional validation (8 of 41 images)", "photos (30)"
    root: Path
    paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.paths)


def default_root(name: str) -> Path:
    """Where :func:`download_dataset` puts ``name`` by default: ``$LICODEC_DATA/name``
    (``LICODEC_DATA`` defaults to ``~/.cache/licodec/datasets``)."""
    base = os.environ.get("LICODEC_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "licodec", "datasets")
    return Path(base) / name


def list_images(root: str | Path, subfolder: str = "") -> list[Path]:
    """Image files below ``root`` (recursively), sorted; only those under a folder named
    ``subfolder`` when it is given."""
    root = Path(root)
    if not root.exists():
        raise LicodecError(f"no such folder: {root}")
    if not root.is_dir():
        raise LicodecError(f"{root} is not a folder")
    paths = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    if subfolder:
        paths = [p for p in paths if subfolder in p.relative_to(root).parts[:-1]]
    return sorted(paths)


def load_dataset(name_or_folder: str | Path, root: str | Path | None = None, limit: int = 0) -> Dataset:
    """A registered test set (``kodak``, ``clic-pro-valid``, ``clic-pro-test``, ``tecnick``)
    read from ``root`` (default :func:`default_root`), or any folder of images.

    ``limit`` keeps the first N images. Raises :class:`LicodecError` when no image is found.
    """
    key = str(name_or_folder)
    info = DATASETS.get(key)
    if info is None:
        folder = Path(key)
        if root is not None:
            raise LicodecError(f"unknown dataset {key!r} (known: {', '.join(DATASETS)}); "
                               "to evaluate a folder, pass it without --root")
        if not folder.exists():
            raise LicodecError(f"{key!r} is neither a known dataset ({', '.join(DATASETS)}) nor a folder")
        paths = list_images(folder)
        title, complete = folder.resolve().name or str(folder), None
    else:
        folder = Path(root) if root is not None else default_root(info.name)
        if not folder.exists():
            raise LicodecError(f"dataset {info.name} not found at {folder}; pass --root FOLDER or run "
                               f"`licodec datasets download {info.name}` (needs internet)")
        paths = list_images(folder, info.subfolder)
        title, complete = info.title, info.count
    if not paths:
        raise LicodecError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {folder}")
    if limit:
        paths = paths[:limit]
    n = len(paths)
    label = f"{title} ({n})" if complete in (None, n) else f"{title} ({n} of {complete} images)"
    return Dataset(name=info.name if info else title, label=label, root=folder, paths=tuple(paths))


def _fetch(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
            shutil.copyfileobj(response, f, length=1 << 20)
    except (OSError, ValueError) as e:
        raise LicodecError(f"download of {url} failed: {e}") from None


def _unpack(archive: Path, dest: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                target = (dest / member).resolve()
                if not str(target).startswith(str(dest.resolve())):
                    raise LicodecError(f"{archive.name} holds an unsafe path: {member}")
            z.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    else:
        raise LicodecError(f"{archive.name} is neither a zip nor a tar archive")


def download_dataset(name: str, root: str | Path | None = None, urls: tuple[str, ...] | None = None) -> Dataset:
    """Download the registered set ``name`` into ``root`` (default :func:`default_root`) and load it.

    Archives are unpacked in a temporary folder and moved into place only when complete,
    so an interrupted download leaves nothing half-written. ``urls`` overrides the
    documented sources (a mirror, or ``file://`` URLs).
    """
    info = DATASETS.get(name)
    if info is None:
        raise LicodecError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    dest = Path(root) if root is not None else default_root(name)
    if dest.exists() and any(dest.iterdir()):
        raise LicodecError(f"{dest} exists and is not empty; remove it or choose another --root")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{name}-download-") as tmp:
        staging = Path(tmp) / "data"
        staging.mkdir()
        for url in urls or info.urls:
            filename = url.rstrip("/").split("/")[-1] or "download"
            if filename == "download":  # sourceforge-style ".../file.zip/download"
                filename = url.rstrip("/").split("/")[-2]
            if Path(filename).suffix.lower() in IMAGE_SUFFIXES:
                _fetch(url, staging / filename)
            else:
                archive = Path(tmp) / filename
                _fetch(url, archive)
                _unpack(archive, staging)
                archive.unlink()
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    return load_dataset(name, dest)
