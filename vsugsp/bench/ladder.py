"""The ablation ladder of ``vsugsp bench ablation``: its steps, their method names and its table."""
from __future__ import annotations

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
