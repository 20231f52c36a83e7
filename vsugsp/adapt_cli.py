"""`vsugsp adapt IN -o weights.pt` (interpolate's `--adapt N` step is :func:`vsugsp.adapt.adapt_for`)."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from .adapt import AdaptSettings
    from .cli import _positive_int

    d = AdaptSettings()
    p = sub.add_parser(
        "adapt", help="fine-tune the network on one clip's own frames (scene adaptation)",
        description="Cut triplets (frames i, i+g -> the frames in between) from IN, fine-tune a copy of the "
                    "network on them and write the weights; use them with `vsugsp interpolate --model`.",
    )
    p.add_argument("input", metavar="IN", help="input video file (read with bestsource)")
    p.add_argument("-o", "--output", required=True, metavar="WEIGHTS", help="weights file to write (.pt)")
    p.add_argument("--steps", type=int, default=d.steps, help="optimizer steps (default: %(default)s)")
    p.add_argument("--model", help="weights name or .pt file to start from (default: the preset's)")
    p.add_argument("--preset", help="preset whose model is adapted (default: balanced)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    p.add_argument("--frames", type=_positive_int, metavar="N", help="only the first N source frames (N >= 1)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    p.add_argument("--crop", type=int, default=d.crop, help="crop side in px, multiple of 16 (default: %(default)s)")
    p.add_argument("--gaps", default=",".join(map(str, d.gaps)),
                   help="window lengths in source frames, comma list of ints >= 2 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed (default: %(default)s)")
    p.set_defaults(func=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .adapt import adapt_for
    from .cli import CliError, open_source
    from .model import save

    src = Path(args.input)
    if not src.is_file():
        raise CliError(f"input {str(src)!r} does not exist or is not a file")
    out = Path(args.output)
    if out.suffix != ".pt":
        raise CliError(f"-o {str(out)!r}: the weights file must end in .pt")
    if not out.parent.is_dir():
        raise CliError(f"-o {str(out)!r}: folder {str(out.parent)!r} does not exist")
    try:
        gaps = tuple(int(g) for g in args.gaps.split(",") if g.strip())
    except ValueError:
        raise CliError(f"--gaps {args.gaps!r}: need a comma list of ints >= 2") from None
    clip = open_source(src, args.frames)
    kwargs = {k: getattr(args, k) for k in ("model", "preset", "device") if getattr(args, k)}
    try:
        net = adapt_for(clip, args.steps, kwargs, lr=args.lr, crop=args.crop, gaps=gaps, seed=args.seed)
    except ValueError as exc:
        raise CliError(str(exc).removeprefix("vsugsp: ")) from None
    save(net, out, {"adapted_to": str(src.resolve()), "steps": args.steps, "frames": clip.num_frames,
                    "lr": args.lr, "crop": args.crop, "gaps": list(gaps), "seed": args.seed})
    print(f"vsugsp: wrote {out}", file=sys.stderr)
    return 0
