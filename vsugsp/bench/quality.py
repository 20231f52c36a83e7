"""``vsugsp bench quality``: peers and vsugsp presets on real clips, frame-drop protocol, one run.

Produces a JSON-ready dict: a header (:func:`vsugsp.bench.machine.describe`),
the protocol description, the clips and one entry per clip and method with
``method``, ``status`` ("ok", "missing" or "error"), ``psnr``, ``ssim``,
``fps``, ``seconds``, ``frames``.
"""

from __future__ import annotations

import traceback
from typing import Optional, Sequence

from ..eval.clips import ClipSpec, load_window
from ..eval.frames import MATRIX_NAMES, rgb24_matrix
from ..eval.metrics import PSNR_CAP_DB
from ..eval.peers import PEERS, Peer, PeerMissing, make_peer
from ..eval.protocol import fraction_str, run_frame_drop, scored_indices
from ..eval.ugsp_method import ugsp
from ..preset import split_preset
from ..work import Tally
from .machine import describe
from .progress import StderrProgress, note

DEFAULT_PEERS = ("blend", "mvtools", "svp", "dis")
DEFAULT_PRESETS = ("quality", "balanced", "fast")

PROTOCOL = {
    "name": "frame-drop 2x",
    "description": "keep even source frames, interpolate x2, score output frame 2k+1 against source frame 2k+1 "
                   "for every k with 2k+2 < N (the last odd frame has no right neighbour)",
    "color": "both clips converted to RGB24 (8-bit, rounded) with the same matrix: the source's _Matrix, "
             "else BT.709 at >= 1280 wide or >= 720 tall and BT.601 (170m) below (vsugsp.colors.default_matrix, "
             "the filter's own default)",
    "psnr": f"per frame on uint8 RGB, peak 255, capped at {PSNR_CAP_DB:g} dB (identical frames score "
            f"{PSNR_CAP_DB:g}); clip value = mean over scored frames",
    "ssim": "per frame: Gaussian window 11x11 sigma 1.5, population covariance, L=255, each RGB channel, "
            "averaged (= skimage structural_similarity with gaussian_weights=True); clip value = mean",
    "timing": "seconds = wall time producing the scored frames (in order, VapourSynth prefetch, incl. decoding "
              "and RGB conversion, excl. scoring); fps = scored frames / seconds; adaptation s = the graph build of a "
              "method with scene adaptation (adapt=N: the fine-tuning on the kept frames), not in seconds or fps",
}


def method_names(peers: Sequence[str], presets: Sequence[str]) -> list[str]:
    """Method names in run order: peers, then ``ugsp:<preset>`` for each preset."""
    for p in peers:
        if p not in PEERS:
            raise ValueError(f"vsugsp: unknown peer {p!r}; choose from {', '.join(PEERS)}")
    return list(peers) + [f"ugsp:{p}" for p in presets]


def build_method(name: str, *, model: Optional[str] = None, device: Optional[str] = None) -> Peer:
    """The method called ``name`` ("blend", "mvtools", "svp", "dis" or "ugsp:<preset>[:KEY=VALUE+…]")."""
    if name.startswith("ugsp:"):
        preset, overrides = split_preset(name.split(":", 1)[1])
        return ugsp(preset, model=model, device=device, **overrides)
    return make_peer(name)


def _clip_entry(spec: ClipSpec, clip, matrix: int) -> dict:
    return {
        "name": spec.name,
        "path": str(spec.path),
        "width": clip.width,
        "height": clip.height,
        "fps": fraction_str(clip.fps),
        "window": [spec.start, spec.start + clip.num_frames],
        "source_frames": clip.num_frames,
        "scored_frames": len(scored_indices(clip.num_frames)),
        "matrix": MATRIX_NAMES.get(matrix, str(matrix)),
    }


def run_quality(specs: Sequence[ClipSpec], methods: Sequence[str], *, model: Optional[str] = None,
                device: Optional[str] = None, chunk: int = 16, per_frame: bool = True,
                show_progress: bool = True) -> dict:
    """Run every method on every clip; a missing or failing method becomes an entry saying so."""
    data = {"kind": "quality", "schema": 1, **describe(), "protocol": PROTOCOL,
            "settings": {"model": model or "default", "device": device or "default", "methods": list(methods)},
            "clips": [], "results": []}
    for spec in specs:
        clip = load_window(spec)
        matrix = rgb24_matrix(clip)
        data["clips"].append(_clip_entry(spec, clip, matrix))
        for name in methods:
            entry = {"clip": spec.name, "method": name}
            try:
                peer = build_method(name, model=model, device=device)
            except PeerMissing as e:
                note(f"[{spec.name}] {name}: MISSING ({e})")
                data["results"].append({**entry, "status": "missing", "reason": str(e)})
                continue
            entry["params"] = peer.params
            prog = StderrProgress(f"[{spec.name}] {name}") if show_progress else None
            spent = Tally()  # the scored frames' work props (vsugsp.work; peers' frames have none)
            try:
                # a fresh source node per method: no method profits from frames another one decoded
                run = run_frame_drop(load_window(spec), lambda clip, m=peer.method: spent.counting(m(clip)),
                                     matrix=matrix, chunk=chunk, progress=prog)
            except Exception as e:  # one broken method must not lose the others' numbers
                note(f"[{spec.name}] {name}: ERROR {e}")
                data["results"].append({**entry, "status": "error", "reason": f"{type(e).__name__}: {e}",
                                        "traceback": traceback.format_exc(limit=8)})
                continue
            note(f"[{spec.name}] {name}: PSNR {run.psnr:.3f} dB  SSIM {run.ssim:.4f}  "
                 f"{run.fps:.2f} fps ({run.frames} frames, {run.seconds:.1f} s)")
            res = {**entry, "status": "ok", "psnr": run.psnr, "ssim": run.ssim, "fps": run.fps,
                   "seconds": run.seconds, "frames": run.frames, "first_frame_seconds": run.first_frame_seconds,
                   "fps_after_first": run.fps_after_first, "setup_seconds": run.setup_seconds}
            work = spent.totals()
            if work["dense_macs"] > 0:  # the network ran: share of its dense MACs executed
                res["mac_share"] = work["executed_macs"] / work["dense_macs"]
            if per_frame:
                res["per_frame"] = {"index": [spec.start + i for i in run.indices],
                                    "psnr": run.frame_psnr, "ssim": run.frame_ssim}
            data["results"].append(res)
    return data
