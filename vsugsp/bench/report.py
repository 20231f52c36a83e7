"""Benchmark JSON → Markdown tables and a quality-vs-speed plot (``vsugsp bench report``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

from .ladder import ablation_markdown


#: the ``kind`` of every results dict the benches write with ``--json`` that :func:`to_markdown` renders
KINDS = ("quality", "ablation", "speed")


def load_results(path: Path | str) -> dict:
    """A results file written with ``--json`` (a JSON object; :func:`to_markdown` checks its ``kind``).

    ValueError naming the file when it cannot be read, is not JSON or holds anything else.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"vsugsp: cannot read results file {path}: {e}") from None
    if not isinstance(data, dict):
        what = "null" if data is None else type(data).__name__
        raise ValueError(f"vsugsp: results file {path} holds a JSON {what}, not the object a bench writes "
                         f"with --json")
    return data


def _fmt(v, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return format(v, spec)


def header_markdown(data: dict) -> str:
    """One line saying where and when the numbers were measured."""
    m = data.get("machine", {})
    gpus = ", ".join(m.get("gpus") or []) or "no GPU"
    commit = (data.get("git_commit") or "unknown")[:12]
    return (f"_Measured {data.get('date', '?')} on {m.get('cpu', '?')} ({m.get('cores', '?')} cores, {gpus}), "
            f"vsugsp commit {commit}._")


def _adapts(result: dict) -> bool:
    """True for a ugsp method that adapted the network to the clip (its setup time is the adaptation)."""
    return bool((result.get("params") or {}).get("adapt"))


def quality_markdown(data: dict) -> str:
    """Per-clip tables of PSNR / SSIM / fps for every method, missing ones marked as such."""
    lines = [header_markdown(data), ""]
    for clip in data.get("clips", []):
        lines.append(f"**{clip['name']}** ({clip['width']}×{clip['height']}, {clip['fps']} fps, source frames "
                     f"{clip['window'][0]}–{clip['window'][1] - 1}, {clip['scored_frames']} scored)")
        lines.append("")
        lines.append("| method | PSNR (dB) | SSIM | fps | fps after 1st frame | seconds | frames | MACs run "
                     "| adaptation s |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in data.get("results", []):
            if r["clip"] != clip["name"]:
                continue
            if r.get("status") != "ok":
                lines.append(f"| {r['method']} | {r.get('status', '?')}: {r.get('reason', '')} | | | | | | | |")
                continue
            lines.append(f"| {r['method']} | {_fmt(r['psnr'], '.2f')} | {_fmt(r['ssim'], '.4f')} | "
                         f"{_fmt(r['fps'], '.1f')} | {_fmt(r.get('fps_after_first'), '.1f')} | "
                         f"{_fmt(r['seconds'], '.1f')} | {r['frames']} | "
                         f"{_fmt(r['mac_share'] * 100, '.0f') + ' %' if r.get('mac_share') is not None else '–'} | "
                         f"{_fmt(r.get('setup_seconds'), '.0f') if _adapts(r) else '–'} |")
        lines.append("")
    proto = data.get("protocol", {})
    if proto:
        lines.append(f"Frame-drop protocol: {proto.get('description', '')}. PSNR {proto.get('psnr', '')}. "
                     f"Timing: {proto.get('timing', '')}; the first frame carries one-off costs (decoder start, "
                     f"model loading).")
    return "\n".join(lines).rstrip() + "\n"


def speed_markdown(data: dict) -> str:
    """Tables of forward fps and executed MACs per device, size, preset and mode."""
    lines = [header_markdown(data), ""]
    rows = data.get("results", [])
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("device"), r.get("size"), r.get("path", "forward")), []).append(r)
    for (device, size, path), rs in groups.items():
        w, h = rs[0].get("width"), rs[0].get("height")
        lines.append(f"**{device}, {size} ({w}×{h}), {path}**")
        lines.append("")
        lines.append("| preset | mode | precision | fps | ms/frame | GMAC executed | GMAC dense | density | "
                     "speed-up vs dense | DIS prior ms/pair (CPU) | GFLOP/s | share of GEMM peak |")
        lines.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rs:
            if r.get("status") != "ok":
                lines.append(f"| {r.get('preset')} | {r.get('mode')} | {r.get('precision', '')} | "
                             f"{r.get('status')}: {r.get('reason', '')} | | | | | | | | |")
                continue
            gm = r.get("macs")
            gd = r.get("dense_macs")
            lines.append(f"| {r['preset']} | {r['mode']} | {r.get('precision', '')} | {_fmt(r['fps'], '.2f')} | "
                         f"{_fmt(r['ms'], '.1f')} | {_fmt(gm / 1e9 if gm else None, '.2f')} | "
                         f"{_fmt(gd / 1e9 if gd else None, '.2f')} | {_fmt(r.get('density'), '.3f')} | "
                         f"{_fmt(r.get('speedup_vs_dense'), '.2f')} | {_fmt(r.get('prior_ms'), '.0f')} | "
                         f"{_fmt(r.get('gflops'), '.1f')} | {_pct(r.get('roofline'))} |")
        lines.append("")
    peaks = data.get("gemm_peak_gflops")
    if peaks:
        lines.append("GEMM peak measured by the bench itself (best square bf16/fp16/fp32 matrix multiply on "
                     "the same threads, GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(peaks.items()))
                     + "; GFLOP/s counts 2 FLOPs per executed MAC of the network.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def to_markdown(data: dict) -> str:
    """Markdown for a quality or speed results dict (dispatch on ``kind``)."""
    kind = data.get("kind")
    if kind == "quality":
        return quality_markdown(data)
    if kind == "ablation":
        return ablation_markdown(data, data.get("adapt_steps", 0)) + "\n" + quality_markdown(data)
    if kind == "speed":
        return speed_markdown(data)
    raise ValueError(f"vsugsp: unknown results kind {kind!r}; allowed: {', '.join(KINDS)}")


def plot_quality(data: dict, path: Path | str) -> None:
    """PNG scatter of PSNR against fps (log scale), one panel per clip, one point per method."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError as e:
        raise ImportError("vsugsp: --plot needs matplotlib (pip install matplotlib)") from e
    clips = [c["name"] for c in data.get("clips", [])]
    if not clips:
        raise ValueError("vsugsp: no clips in the results to plot")
    fig, axes = plt.subplots(1, len(clips), figsize=(5.5 * len(clips), 4.2), squeeze=False)
    for ax, name in zip(axes[0], clips):
        pts = [r for r in data["results"] if r["clip"] == name and r.get("status") == "ok"]
        for r in pts:
            ugsp = r["method"].startswith("ugsp")
            ax.scatter(r["fps"], r["psnr"], marker="o" if ugsp else "s", color="C3" if ugsp else "C0", zorder=3)
            ax.annotate(r["method"], (r["fps"], r["psnr"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("frames per second (synthesized frames)")
        ax.set_ylabel("PSNR (dB, RGB)")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("frame-drop protocol: quality vs speed (up and right is better)")
    fig.tight_layout()
    fig.savefig(str(path), dpi=110)
    plt.close(fig)


def merge_markdown(datasets: Iterable[dict]) -> str:
    """Markdown for several results files, one after the other."""
    return "\n".join(to_markdown(d) for d in datasets)
