"""Motion priors compared as classical interpolators (issue 23 item 1), with the motion ablation.

``python benchmarks/bench_priors.py [--out benchmarks/results/priors-cpu-DATE] [--scale 1.0]``
``python benchmarks/bench_priors.py --clips training [--footage .cache/footage] [--max-frames N]``

Each flow method computes F(k→k+1) and F(k+1→k) between kept frames of the DESIGN §7
frame-drop protocol (even source frames kept, odd ones synthesized at t = 0.5 and scored
by PSNR on RGB24, the clip's own matrix); the frame is the ``dis`` peer's (both frames
backward-warped under linear motion, averaged; :func:`vsugsp.eval.dis_flow.render`), so
rows differ by the flow alone.  Timing: CPU ms for the two flows of one 720p pair
(bigbuckbunny), the median over the pairs scored; DIS medium runs in the same process as
the reference (``x dis`` column), since the machine is shared and timings are noisy.

OpenCV contrib methods (``cv2.optflow``: DeepFlow, DualTVL1, dense RLOF, PCAFlow,
SparseToDense) are used when the ``cv2`` on the path has them: install
opencv-contrib-python-headless into a folder of its own and put it first on PYTHONPATH
(it must not replace opencv-python-headless in a shared environment).  Methods that
cannot run are listed as missing.  Slow methods run on the first few scored frames only;
their row says how many, and DIS medium is scored on the same frames beside them.

Ablation (DIS medium flows, same frames): ``dis`` (the yardstick), ``dis-sym`` (linear,
warps read through both frames' flows), ``dis-occ`` (visibility blend),
``dis-quad`` (quadratic path from the outer neighbours, :mod:`vsugsp.model.motion`),
``dis-quad-occ``.

``--clips training``: the same table and ablation on the four training clips
(:func:`vsugsp.data.footage.list_footage`, decoded with PyAV, no VapourSynth): each clip's
tail, ``2·N + 3`` source frames ending at its last frame (:func:`load_tail`).  The network
trains on these clips, so the frames are held out only for the classical flows, which are
not trained.  Cut flags: the project's detector (:func:`vsugsp.scene.cut_score` /
:func:`vsugsp.scene.is_cut`, the preset's threshold) on numpy thumbnails (:func:`half_rate_cuts`).
Results go to ``benchmarks/results/priors-training-clips-cpu-DATE.{json,md}``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from vsugsp.data.footage import DEFAULT_FOOTAGE, list_footage
from vsugsp.eval.clips import default_clips, load_window
from vsugsp.eval.dis_flow import dis_flow, gray, render
from vsugsp.eval.frames import frame_to_rgb, rgb24_matrix, to_rgb24
from vsugsp.eval.metrics import psnr
from vsugsp.model import motion
from vsugsp.model.prior import cv2_module

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: scored frames per clip (the first ones), and for slow methods
WINDOWS = {"carphone_pristine": 40, "bigbuckbunny": 24}
SLOW_WINDOWS = {"carphone_pristine": 10, "bigbuckbunny": 3}
#: ``--clips training``: scored frames per clip (at the clip's tail), and for slow methods
TRAINING_WINDOW, TRAINING_SLOW_WINDOW = 24, 4
#: how ``--clips training`` flags cuts (recorded in the results)
CUT_RULE = ("vsugsp.scene.cut_score on luma thumbnails about vsugsp.scene.THUMB_WIDTH px wide (OpenCV "
            "INTER_AREA here, zimg bilinear in scene_clip), cut when above Preset().scene_threshold "
            "(vsugsp.scene.is_cut, no frame props)")

Clip = tuple[list[np.ndarray], list[bool]]


def _dis_custom(**settings) -> Callable[[], FlowFn]:
    """A DIS flow with explicit settings; one object per frame size, warmed on a zero pair (model.prior.dis)."""

    def make() -> FlowFn:
        cv2 = cv2_module()
        objs: dict = {}

        def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            obj = objs.get(a.shape)
            if obj is None:
                obj = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
                for key, value in settings.items():
                    getattr(obj, "set" + key)(value)
                zero = np.zeros(a.shape, np.uint8)
                obj.calc(zero, zero, None)
                objs[a.shape] = obj
            return obj.calc(a, b, None)

        return flow

    return make


def _optflow(factory: str) -> Callable[[], FlowFn]:
    def make() -> FlowFn:
        cv2 = cv2_module()
        if not hasattr(cv2, "optflow"):
            raise ImportError("cv2.optflow missing (opencv-contrib-python-headless first on PYTHONPATH)")
        obj = getattr(cv2.optflow, factory)()
        return lambda a, b: obj.calc(a, b, None)

    return make


def _rlof() -> FlowFn:
    cv2 = cv2_module()
    if not hasattr(cv2, "optflow"):
        raise ImportError("cv2.optflow missing (opencv-contrib-python-headless first on PYTHONPATH)")
    # dense RLOF takes colour frames; the luma is repeated into three channels
    return lambda a, b: cv2.optflow.calcOpticalFlowDenseRLOF(cv2.cvtColor(a, cv2.COLOR_GRAY2BGR),
                                                             cv2.cvtColor(b, cv2.COLOR_GRAY2BGR), None)


def _farneback() -> FlowFn:
    cv2 = cv2_module()
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 15, 3, 5, 1.2, 0)


#: name -> (factory, settings for the record, slow)
METHODS: dict[str, tuple[Callable[[], FlowFn], dict, bool]] = {
    "dis-ultrafast": (lambda: dis_flow("ultrafast"), {"preset": "ultrafast"}, False),
    "dis-fast": (lambda: dis_flow("fast"), {"preset": "fast"}, False),
    "dis-medium": (lambda: dis_flow("medium"), {"preset": "medium (the dis peer)"}, False),
    "dis-medium-vr0": (_dis_custom(VariationalRefinementIterations=0),
                       {"preset": "medium", "variational refinement": 0}, False),
    "dis-medium-fs0": (_dis_custom(FinestScale=0), {"preset": "medium", "finest scale": 0}, False),
    "dis-finer": (_dis_custom(FinestScale=0, PatchSize=8, PatchStride=3, GradientDescentIterations=25,
                              VariationalRefinementIterations=10),
                  {"finest scale": 0, "patch": 8, "stride": 3, "gd iterations": 25, "vr iterations": 10}, False),
    "dis-p12": (_dis_custom(FinestScale=0, PatchSize=12, PatchStride=4),
                {"preset": "medium", "finest scale": 0, "patch": 12, "stride": 4}, False),
    "farneback": (_farneback, {"pyr_scale": 0.5, "levels": 5, "winsize": 15, "iterations": 3}, False),
    "pcaflow": (_optflow("createOptFlow_PCAFlow"), {"module": "cv2.optflow", "defaults": True}, False),
    "sparse-to-dense": (_optflow("createOptFlow_SparseToDense"), {"module": "cv2.optflow", "defaults": True}, False),
    "dense-rlof": (_rlof, {"module": "cv2.optflow", "defaults": True}, True),
    "deepflow": (_optflow("createOptFlow_DeepFlow"), {"module": "cv2.optflow", "defaults": True}, True),
    "dual-tvl1": (_optflow("createOptFlow_DualTVL1"), {"module": "cv2.optflow", "defaults": True}, True),
}

ABLATION = {  # name -> (occlusion, quadratic, reading), as in vsugsp.eval.peers.DIS_VARIANTS
    "dis": (False, False, "own"), "dis-sym": (False, False, "both"), "dis-occ": (True, False, "own"),
    "dis-quad": (False, True, "both"), "dis-quad-occ": (True, True, "both"),
}


def load(name: str, scored: int, scale: float) -> tuple[list[np.ndarray], list[bool]]:
    """Source frames 0 .. 2·scored + 2 of a public clip as RGB24 arrays, and the half-rate cut flags."""
    import vapoursynth as vs

    from vsugsp.preset import Preset
    from vsugsp.scene import CUT_PROP, scene_clip

    spec = next(c for c in default_clips() if c.name == name)
    clip = load_window(spec)
    clip = clip[:min(clip.num_frames, 2 * scored + 5)]
    rgb = to_rgb24(clip, rgb24_matrix(clip))
    if scale != 1.0:
        rgb = vs.core.resize.Bicubic(rgb, round(rgb.width * scale / 2) * 2, round(rgb.height * scale / 2) * 2)
    frames = [frame_to_rgb(f) for f in rgb.frames(close=True)]
    half = rgb.std.SelectEvery(2, 0)
    cuts = scene_clip(half, "auto", Preset().scene_threshold)
    flags = [bool(f.props[CUT_PROP]) for f in cuts.frames(close=True)]
    return frames, flags


def half_rate_cuts(frames: list[np.ndarray]) -> list[bool]:
    """Cut flags of the half-rate frames ``frames[0::2]`` (flag k: cut between k and k+1), without VapourSynth.

    The project's detector (:func:`vsugsp.scene.cut_score`, :func:`vsugsp.scene.is_cut` with
    the preset's threshold) on the same thumbnail size and luma (RGB mean, 0..1) as
    :func:`vsugsp.scene.scene_clip`; only the thumbnail's resize kernel differs (OpenCV area
    instead of zimg bilinear), both low-pass.  The last frame never has a cut, as there.
    """
    import cv2

    from vsugsp.preset import Preset
    from vsugsp.scene import _thumb_size, cut_score, is_cut

    half = frames[0::2]
    h, w = half[0].shape[:2]
    size = _thumb_size(w, h)
    thumbs = [cv2.resize(f, size, interpolation=cv2.INTER_AREA).astype(np.float64).mean(axis=2) / 255.0
              for f in half]
    threshold = Preset().scene_threshold
    return [is_cut(cut_score(a, b), threshold) for a, b in zip(thumbs[:-1], thumbs[1:])] + [False]


def load_tail(path: str | Path, scored: int, scale: float = 1.0) -> tuple[list[np.ndarray], list[bool], int]:
    """The last ``2·scored + 3`` source frames of a video (RGB24, in order), their half-rate cut flags, frame count.

    The whole clip is decoded (PyAV): seeking would land on keyframes, and the tail must be
    exact.  ValueError when the clip is shorter than the window.
    """
    from collections import deque

    import cv2

    from vsugsp.data.video import iter_frames

    need = 2 * scored + 3
    tail: deque[np.ndarray] = deque(maxlen=need)
    total = 0
    for frame in iter_frames(path):
        tail.append(frame)
        total += 1
    if total < need:
        raise ValueError(f"bench_priors: {str(path)!r} has {total} frames, {need} needed for {scored} scored "
                         f"frames; lower --max-frames")
    frames = list(tail)
    if scale != 1.0:
        h, w = frames[0].shape[:2]
        size = (round(w * scale / 2) * 2, round(h * scale / 2) * 2)
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    return frames, half_rate_cuts(frames), total


def clip_names(paths: Sequence[str | Path]) -> list[str]:
    """Table names of the clips: the file stem, or the file name where two stems are the same."""
    stems = [Path(p).stem for p in paths]
    return [s if stems.count(s) == 1 else Path(p).name for s, p in zip(stems, paths)]


def load_training(paths: Sequence[str | Path], scored: int, scale: float = 1.0) -> tuple[dict[str, Clip], dict]:
    """:func:`load_tail` of each clip, by :func:`clip_names`, and each clip's record (size, frames, window, cuts).

    Every path must pass :func:`vsugsp.data.footage.check_trainable`: the clips reserved for
    independent evaluation stay out of benchmarks too.
    """
    from vsugsp.data.footage import check_trainable

    clips, info = {}, {}
    for name, path in zip(clip_names(paths), paths):
        check_trainable(path)
        frames, flags, total = load_tail(path, scored, scale)
        clips[name] = (frames, flags)
        h, w = frames[0].shape[:2]
        info[name] = {"path": str(path), "size": f"{w}x{h}", "source_frames": total,
                      "window": [total - len(frames), total - 1],
                      "cuts_after_half_rate_frames": [k for k, c in enumerate(flags) if c]}
    return clips, info


def score(frames: list[np.ndarray], flags: list[bool], flows: dict, scored: int, variant=ABLATION["dis"]) -> float:
    """Mean PSNR of the first ``scored`` synthesized frames with ``flows[(a, b)]`` between half-rate frames."""
    occlusion, quadratic, reading = variant
    half = frames[0::2]
    out = []
    for k in range(scored):
        prev, nxt = motion.quad_neighbours(k, len(half), flags) if quadratic else (None, None)
        img = render(half[k], half[k + 1], flows[(k, k + 1)], flows[(k + 1, k)], 0.5,
                     f0m=flows.get((k, prev)) if prev is not None else None,
                     f12=flows.get((k + 1, nxt)) if nxt is not None else None,
                     occlusion=occlusion, quadratic=quadratic, reading=reading)
        out.append(psnr(img, frames[2 * k + 1]))
    return float(np.mean(out))


def compute_flows(flow: FlowFn, frames: list[np.ndarray], pairs: int) -> tuple[dict, list[float]]:
    """Flows both ways between half-rate frames k, k+1 for k < pairs, and the ms of each pair."""
    half = [gray(f) for f in frames[0::2]]
    flows, ms = {}, []
    for k in range(min(pairs, len(half) - 1)):
        t0 = time.perf_counter()
        flows[(k, k + 1)] = flow(half[k], half[k + 1])
        flows[(k + 1, k)] = flow(half[k + 1], half[k])
        ms.append(1000 * (time.perf_counter() - t0))
    return flows, ms


def run(methods: list[str], clips: dict[str, Clip], windows: dict[str, int], slow_windows: dict[str, int],
        log=print) -> dict:
    """Each method's row on ``clips``: scored frames per clip from ``windows`` (``slow_windows`` for slow methods)."""
    rows, missing = [], {}
    for name in methods:
        factory, settings, slow = METHODS[name]
        try:
            flow = factory()
        except (ImportError, AttributeError) as e:
            missing[name] = str(e)
            log(f"{name}: missing ({e})")
            continue
        row = {"method": name, "settings": settings, "slow": slow, "clips": {}}
        for clip, (frames, flags) in clips.items():
            n = (slow_windows if slow else windows)[clip]
            flow(gray(frames[0]), gray(frames[2]))  # first call: allocation, warm-up
            flows, ms = compute_flows(flow, frames, n + 1)
            entry = {"frames": n, "psnr": round(score(frames, flags, flows, n), 3),
                     "ms_per_pair": round(statistics.median(ms[:n]), 1)}
            if name == "dis-medium":
                entry["ablation"] = {v: round(score(frames, flags, flows, n, ABLATION[v]), 3) for v in ABLATION}
                entry["psnr_first"] = {str(m): round(score(frames, flags, flows, m), 3)
                                       for m in sorted(set(slow_windows.values()) | {n})}
            row["clips"][clip] = entry
            log(f"{name} {clip}: {entry}")
        rows.append(row)
    return {"rows": rows, "missing": missing}


def add_ratios(result: dict) -> None:
    """Each row's ms over DIS medium's, and DIS medium's PSNR on the row's frames."""
    ref = next((r for r in result["rows"] if r["method"] == "dis-medium"), None)
    if ref is None:
        return
    for r in result["rows"]:
        for clip, e in r["clips"].items():
            base = ref["clips"][clip]
            e["x_dis_ms"] = round(e["ms_per_pair"] / base["ms_per_pair"], 2)
            e["dis_medium_psnr_same_frames"] = base["psnr_first"].get(str(e["frames"]), base["psnr"])


def isolated(methods: list[str], scale: float, out: Path, extra: Sequence[str] = ()) -> dict:
    """:func:`run` with each method in a child process: a method that crashes OpenCV is reported, not fatal.

    ``extra``: further arguments for the children (which clips, how many frames).
    """
    import subprocess

    rows, missing = [], {}
    for m in methods:
        stem = out.with_name(out.name + f"-part-{m}")
        part = stem.with_suffix(".json")
        proc = subprocess.run([sys.executable, __file__, "--child", "--methods", m, "--scale", str(scale),
                               "--out", str(stem), *extra], text=True)
        if not part.is_file():
            missing[m] = f"crashed (exit {proc.returncode})"
            continue
        got = json.loads(part.read_text())
        part.unlink()
        if proc.returncode != 0:  # e.g. PCAFlow: results written, then a crash at interpreter exit
            for r in got["rows"]:
                r["note"] = f"the process crashed after writing its results (exit {proc.returncode})"
        rows += got["rows"]
        missing.update(got["missing"])
    return {"rows": rows, "missing": missing}


#: how to read the ms columns (the machine is shared)
_NOISY = "2 shared cores (noisy: read the ratio to DIS medium measured in the same run)."


def _protocol(meta: dict) -> str:
    """The tables' first sentence: machine, OpenCV, and what is compared."""
    return (f"{meta['machine']}; OpenCV {meta['opencv']} from `{meta['cv2']}`; frame-drop protocol, t = 0.5, "
            f"the `dis` peer's warp and average, flows differ only; scale {meta['scale']}.")


def markdown(result: dict) -> str:
    """The public clips' table and ablation."""
    meta = result["meta"]
    win, slow = meta["windows"], meta["slow_windows"]
    lines = [f"# Motion priors as classical interpolators ({meta['date']}, CPU)", "",
             f"{_protocol(meta)} "
             f"Windows: first {win['carphone_pristine']} scored frames of carphone (176x144), first "
             f"{win['bigbuckbunny']} of bigbuckbunny (1280x720); slow methods (marked *) on the first "
             f"{slow['carphone_pristine']} / {slow['bigbuckbunny']}, with DIS medium on the same "
             f"frames beside them. ms: median CPU time of the two flows of one pair, {_NOISY} "
             f"Frames are scored in RGB straight from the warp; the same methods as `bench quality` peers return the clip's own "
             f"format (YUV 4:2:0 here) and score lower by that round trip (about 0.1 dB on carphone), "
             f"with the same differences between variants.", "",
             "| method | carphone dB | DIS medium, same frames | bbb 720p dB | DIS medium, same frames "
             "| ms / 720p pair | x DIS medium | settings |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in result["rows"]:
        c, b = r["clips"]["carphone_pristine"], r["clips"]["bigbuckbunny"]
        star = " *" if r["slow"] else ""
        lines.append(f"| {r['method']}{star} | {c['psnr']:.2f} | {c.get('dis_medium_psnr_same_frames', 0):.2f} "
                     f"| {b['psnr']:.2f} | {b.get('dis_medium_psnr_same_frames', 0):.2f} | {b['ms_per_pair']:.0f} "
                     f"| {b.get('x_dis_ms', 0):.2f} | {json.dumps(r['settings'])} |")
    for name, why in result["missing"].items():
        lines.append(f"| {name} | missing: {why} | | | | | | |")
    ref = next((r for r in result["rows"] if r["method"] == "dis-medium"), None)
    if ref is not None:
        lines += ["", "## Ablation: occlusion and quadratic motion (DIS medium flows, same frames)", "",
                  "| variant | carphone dB | Δ dis | bbb 720p dB | Δ dis |", "| --- | ---: | ---: | ---: | ---: |"]
        ca, ba = ref["clips"]["carphone_pristine"]["ablation"], ref["clips"]["bigbuckbunny"]["ablation"]
        for v in ABLATION:
            lines.append(f"| {v} | {ca[v]:.2f} | {ca[v] - ca['dis']:+.2f} | {ba[v]:.2f} | {ba[v] - ba['dis']:+.2f} |")
    lines += ["", "The same comparison on the tails of the four training clips: `--clips training` "
              "(priors-training-clips-cpu-*.md). As the network's prior only DIS runs (the network is trained "
              "on it; `flow_prior` none / dis-fast / dis are compared in docs/evaluation.md)."]
    return "\n".join(lines) + "\n"


def markdown_training(result: dict) -> str:
    """The training clips' table (one PSNR column per clip, DIS medium on the same frames beside it) and ablation."""
    meta = result["meta"]
    info = meta["clip_info"]
    names = list(info)
    # the timing column: the largest clip, where the flows cost the most
    big = max(names, key=lambda c: int(info[c]["size"].split("x")[0]) * int(info[c]["size"].split("x")[1]))
    sizes = ", ".join(f"{c} {info[c]['size']} ({info[c]['source_frames']} frames, window "
                      f"{info[c]['window'][0]}-{info[c]['window'][1]})" for c in names)
    cuts = ", ".join(f"{c} after half-rate frame{'s' if len(v) > 1 else ''} {', '.join(map(str, v))}"
                     for c in names if (v := info[c]["cuts_after_half_rate_frames"])) or "none"
    n, ns = meta["window"], meta["slow_window"]
    lines = [f"# Motion priors as classical interpolators on the training clips ({meta['date']}, CPU)", "",
             f"{_protocol(meta)} "
             f"Clips: the four training clips of `vsugsp.data.footage` ({sizes}). Window: each clip's tail, "
             f"the last {2 * n + 3} source frames ({n} scored frames); slow methods (marked *) on the first "
             f"{ns} of them, with DIS medium on the same frames beside them. The network trains on these "
             f"clips, so these frames are held out only for the classical flows compared here, which are "
             f"not trained: this table compares classical flows only, not the network. "
             f"Cut flags (they only decide the quadratic variants' neighbours): {meta['cut_rule']}; cuts "
             f"found: {cuts}. ms: median CPU time of the two flows of one {info[big]['size']} pair ({big}), "
             f"{_NOISY[:-1]}; every clip's ms is in the JSON. Frames are scored in RGB straight from the warp.", ""]
    head = "| method | " + " | ".join(f"{c} dB | DIS medium" for c in names) + (
        f" | mean dB | DIS medium | ms / {info[big]['size']} pair | x DIS medium | settings |")
    lines += [head, "| --- |" + " ---: |" * (2 * len(names) + 4) + " --- |"]
    for r in result["rows"]:
        es = [r["clips"][c] for c in names]
        cells = " | ".join(f"{e['psnr']:.2f} | {e.get('dis_medium_psnr_same_frames', 0):.2f}" for e in es)
        mean = statistics.mean(e["psnr"] for e in es)
        mean_ref = statistics.mean(e.get("dis_medium_psnr_same_frames", 0) for e in es)
        b = r["clips"][big]
        lines.append(f"| {r['method']}{' *' if r['slow'] else ''} | {cells} | {mean:.2f} | {mean_ref:.2f} "
                     f"| {b['ms_per_pair']:.0f} | {b.get('x_dis_ms', 0):.2f} | {json.dumps(r['settings'])} |")
    for name, why in result["missing"].items():
        lines.append(f"| {name} | missing: {why} |" + " |" * (2 * len(names) + 4))
    ref = next((r for r in result["rows"] if r["method"] == "dis-medium"), None)
    if ref is not None:
        lines += ["", "## Ablation: occlusion and quadratic motion (DIS medium flows, same frames)", "",
                  "| variant | " + " | ".join(f"{c} dB | Δ dis" for c in names) + " | mean Δ dis |",
                  "| --- |" + " ---: |" * (2 * len(names) + 1)]
        abl = {c: ref["clips"][c]["ablation"] for c in names}
        for v in ABLATION:
            cells = " | ".join(f"{abl[c][v]:.2f} | {abl[c][v] - abl[c]['dis']:+.2f}" for c in names)
            lines.append(f"| {v} | {cells} | {statistics.mean(abl[c][v] - abl[c]['dis'] for c in names):+.2f} |")
    lines += ["", "Not measured here: each method as the network's prior (the network is trained on the DIS "
              "medium prior), and the network itself (it has seen these frames)."]
    return "\n".join(lines) + "\n"


def windows_for(clips: str, names: Sequence[str], max_frames: Optional[int]) -> tuple[dict[str, int], dict[str, int]]:
    """Scored frames per clip for fast and for slow methods, capped at ``max_frames`` when given."""
    if clips == "public":
        win, slow = dict(WINDOWS), dict(SLOW_WINDOWS)
    else:
        win = {c: TRAINING_WINDOW for c in names}
        slow = {c: TRAINING_SLOW_WINDOW for c in names}
    if max_frames is not None:
        win = {c: min(n, max_frames) for c, n in win.items()}
        slow = {c: min(n, max_frames) for c, n in slow.items()}
    return win, slow


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    date = datetime.date.today().isoformat()
    ap.add_argument("--out", default=None, help="path without extension (default benchmarks/results/priors-cpu-DATE, "
                    "or priors-training-clips-cpu-DATE with --clips training)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma list from " + ",".join(METHODS))
    ap.add_argument("--scale", type=float, default=1.0, help="frame scale (quick tries), default 1.0")
    ap.add_argument("--clips", choices=("public", "training"), default="public",
                    help="public: carphone and bigbuckbunny (default); training: the tails of the four training clips")
    ap.add_argument("--footage", default=str(DEFAULT_FOOTAGE),
                    help="folder of the training clips (--clips training), default %(default)s")
    ap.add_argument("--max-frames", type=int, default=None,
                    help=f"at most this many scored frames per clip (default: {TRAINING_WINDOW} on the training "
                    f"clips, {TRAINING_SLOW_WINDOW} for slow methods; the public clips' own windows)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"bench_priors: --methods {','.join(unknown)}: unknown; allowed: {','.join(METHODS)}", file=sys.stderr)
        return 2
    if args.max_frames is not None and args.max_frames < 1:
        print("bench_priors: --max-frames must be at least 1", file=sys.stderr)
        return 2
    training = args.clips == "training"
    if args.out is None:
        args.out = f"benchmarks/results/priors-{'training-clips-' if training else ''}cpu-{date}"
    out = Path(args.out)
    paths = list_footage(args.footage) if training else []
    names = clip_names(paths) if training else list(WINDOWS)
    windows, slow_windows = windows_for(args.clips, names, args.max_frames)
    if args.child:  # one method for isolated(): its rows only
        if training:
            clips = load_training(paths, max(windows.values()), args.scale)[0]
        else:
            clips = {name: load(name, n, args.scale) for name, n in windows.items()}
        out.with_suffix(".json").write_text(json.dumps(run(methods, clips, windows, slow_windows,
                                                           log=lambda s: print(s, flush=True))))
        return 0
    if "dis-medium" not in methods:
        methods.insert(0, "dis-medium")
    cv2 = cv2_module()
    extra = ["--clips", args.clips, "--footage", args.footage]
    if args.max_frames is not None:
        extra += ["--max-frames", str(args.max_frames)]
    result = isolated(methods, args.scale, out, extra)
    add_ratios(result)
    result["meta"] = {"date": date, "machine": f"{platform.processor() or platform.machine()}, "
                      f"{__import__('os').cpu_count()} CPUs", "opencv": cv2.__version__, "cv2": cv2.__file__,
                      "scale": args.scale, "windows": windows, "slow_windows": slow_windows,
                      "command": " ".join(sys.argv)}
    if args.max_frames is not None:
        result["meta"]["max_frames"] = args.max_frames
    if training:
        # the windows' record (sizes, frame numbers, cuts): decoded once more here, cheap beside the flows
        info = load_training(paths, max(windows.values()), args.scale)[1]
        result["meta"].update({"clips": "training", "footage": args.footage, "window": max(windows.values()),
                               "slow_window": max(slow_windows.values()), "clip_info": info,
                               "cut_rule": CUT_RULE})
    text = markdown_training(result) if training else markdown(result)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0

if __name__ == "__main__":
    sys.exit(main())
