"""The training loop: stages, checkpoints that resume, logging, held-out evaluation, DDP.

Run with ``vsugsp train RECIPE`` (one process) or
``torchrun --nproc_per_node=N -m vsugsp.train.run RECIPE`` (DDP: gloo on CPU, NCCL on CUDA).
Everything a run writes goes to ``OUT/`` (default ``runs/<recipe name>``):
``ckpt.pt`` (resumable state), ``weights.pt`` (latest weights file), ``log.jsonl``,
``snapshots/step-*.pt`` (weights every ``snapshot_every`` steps, for training curves).
"""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.distributed as dist

from ..hardware import cpu_bf16
from ..quote import clip, short
from ..model import ModelConfig, UGSPNet, save
from ..model.masks import compute_prob, labels_from_uncertainty, nest
from . import losses as L
from .recipe import Recipe, Stage

log = logging.getLogger("vsugsp.train")


# ---------------------------------------------------------------------------- helpers
def stage_at(recipe: Recipe, step: int) -> tuple[Stage, int]:
    """The stage that global step ``step`` (0-based) belongs to, and the step within it."""
    for s in recipe.stages:
        if step < s.steps:
            return s, step
        step -= s.steps
    return recipe.stages[-1], recipe.stages[-1].steps - 1


def lr_at(stage: Stage, k: int) -> float:
    """Linear warm-up, then cosine from ``lr`` to ``lr_min`` over the stage."""
    if k < stage.warmup:
        return stage.lr * (k + 1) / stage.warmup
    span = max(1, stage.steps - stage.warmup)
    c = 0.5 * (1 + math.cos(math.pi * min(1.0, (k - stage.warmup) / span)))
    return stage.lr_min + (stage.lr - stage.lr_min) * c


def _ramp(stage: Stage, k: int) -> tuple[float, float]:
    """(sparsity weight, label weight) at step k of a stage."""
    frac = k / max(1, stage.steps)
    sp = stage.w_sparsity * min(1.0, frac / max(1e-6, stage.sparsity_ramp))
    lab = stage.w_label + (stage.w_label_end - stage.w_label) * frac
    return sp, lab


def _dist() -> tuple[int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _precision(recipe: Recipe, device: torch.device) -> torch.dtype | None:
    p = recipe.precision
    if p == "fp32":
        return None
    if p == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if torch.backends.mkldnn.is_available() and cpu_bf16() else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[p]


# ---------------------------------------------------------------------------- data
def _worker_ignores_stop_signals(_worker_id: int) -> None:
    # Ctrl-C or `pkill -f` signal the whole process group; a data worker killed by them
    # makes the main process fail before it can checkpoint.  The main process handles
    # SIGINT/SIGTERM (finish the step, checkpoint, exit) and then shuts its workers down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def real_footage(spec, seed: int, neighbours: bool = False):
    """The ``data.real`` footage as a stream of triplets at the recipe's crop size (gaps 2..max_gap),
    with their outer neighbours when asked (for the quadratic prior)."""
    from ..data.footage import DEFAULT_FOOTAGE, list_footage
    from ..data.video import VideoTriplets

    opts = dict(spec.real)
    path = opts.pop("path", str(DEFAULT_FOOTAGE))
    paths = list_footage(path) if isinstance(path, str) and Path(path).is_dir() else path
    opts.setdefault("max_gap", 4)
    return VideoTriplets(paths, crop=spec.size, seed=seed, neighbours=neighbours, **opts)


def make_data(recipe: Recipe, seed: int, real: float = 0.0):
    """An endless iterator of training batches (dicts of tensors).

    real: share of samples, [0, 1], from the ``data.real`` footage (synth source only).
    """
    spec = recipe.data
    quad = any(s.quad > 0 for s in recipe.stages)  # frames -1 and 2 beside every triplet
    if spec.size % 16:
        raise ValueError(f"vsugsp: data.size={spec.size}; must be a multiple of 16")
    if spec.source == "synth":
        from ..data.synth import SynthConfig, SynthTriplets

        cfg = replace(SynthConfig(**spec.synth), size=spec.size)
        if quad:
            cfg = replace(cfg, neighbours=True)
        if real >= 1:
            ds = real_footage(spec, seed, quad)
        else:
            ds = SynthTriplets(spec.path, cfg, seed=seed)
        if 0 < real < 1:
            from ..data.mix import MixedStream

            ds = MixedStream([ds, real_footage(spec, seed + 1, quad)], [1 - real, real], seed=seed)
    elif spec.source == "vimeo":
        from ..data.vimeo import VimeoTriplets

        ds = VimeoTriplets(spec.path, split="train", crop=spec.size, seed=seed)
    else:
        from ..data.video import VideoTriplets

        ds = VideoTriplets(spec.path, crop=spec.size, seed=seed, neighbours=quad)
    if any(s.prior > 0 for s in recipe.stages):  # DIS runs in the data workers
        from ..data.prior import attach_prior

        ds = attach_prior(ds)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=recipe.batch, num_workers=spec.workers, persistent_workers=spec.workers > 0,
        worker_init_fn=_worker_ignores_stop_signals if spec.workers > 0 else None,
        shuffle=False if isinstance(ds, torch.utils.data.IterableDataset) else True, drop_last=True,
    )
    while True:
        yield from loader


def heldout(recipe: Recipe) -> dict[str, torch.Tensor] | None:
    if recipe.data.source != "synth" or recipe.data.heldout < 1:
        return None
    from ..data.synth import SynthConfig, make_heldout

    # the generator's defaults, not the recipe's overrides: the held-out set stays the same
    # yardstick when a recipe (or a resumed run) changes its training distribution
    return make_heldout(recipe.data.path, recipe.data.heldout, recipe.data.heldout_size, seed=12345,
                        cfg=SynthConfig())


# ---------------------------------------------------------------------------- losses
def compute_losses(net: UGSPNet, batch: dict, stage: Stage, k: int, autocast) -> tuple[torch.Tensor, dict]:
    img0, img1, gt, t = batch["img0"], batch["img1"], batch["gt"], batch["t"]
    valid0 = batch["valid"] * batch["vis0"]
    valid1 = batch["valid"] * batch["vis1"]
    has_flow = bool(batch["valid"].sum() > 0)
    terms: dict[str, torch.Tensor] = {}

    def supervise(out, prefix: str, w_img: float) -> None:
        terms[prefix + "image"] = w_img * L.laplacian_l1(out.image, gt)
        if has_flow and stage.w_flow > 0:
            fl = _flow_terms(out, batch, valid0, valid1)
            terms[prefix + "flow"] = stage.w_flow * fl
            terms[prefix + "occ"] = stage.w_occ * L.occlusion_loss(out.occlusion, batch["vis0"], batch["vis1"])

    (net.module if hasattr(net, "module") else net).isolate_mask_logits = stage.isolate_logits
    pair = sample_prior(img0, img1, stage.prior, batch.get("pair_flow"), stage.quad)
    with autocast():
        out = net(img0, img1, t, mode="dense" if stage.mode == "dense" else "train", tau=stage.tau, pair_flow=pair)
    if stage.mode == "dense":
        supervise(out, "", stage.w_image)
        terms["nll"] = stage.w_uncertainty * L.uncertainty_nll(out.uncertainty, out.image, gt)
    else:
        dense = out.dense
        supervise(out, "", stage.w_image)
        supervise(dense, "dense_", stage.w_dense_image)
        terms["nll"] = stage.w_uncertainty * L.uncertainty_nll(dense.uncertainty, dense.image, gt)
        terms["census"] = stage.w_census * sum(
            L.census_loss(a, b, stage.census_channels or None) for a, b in zip(out.features[1:], dense.features[1:]))
        raw = net.module if hasattr(net, "module") else net
        weights = [b.macs_per_pixel() * m.shape[-2] * m.shape[-1] for b, m in
                   zip((raw.dec8, raw.dec4, raw.dec2), out.masks)]
        density = L.mask_density(out.masks, weights)
        w_sp, w_lab = _ramp(stage, k)
        terms["sparsity"] = w_sp * (density - stage.density_target).abs()
        sizes = [m.shape[-2:] for m in out.masks]
        labels = labels_from_uncertainty(dense.uncertainty.detach(), sizes, stage.rho)
        probs, parent = [], None
        for lg in out.mask_logits:
            p = nest(compute_prob(lg.float()), parent)
            probs.append(p)
            parent = p
        terms["label"] = w_lab * sum((p - y).abs().mean() for p, y in zip(probs, labels))
        terms["density"] = density.detach()
    total = sum(v for key, v in terms.items() if key != "density")
    return total, {key: float(v.detach()) for key, v in terms.items()}


def sample_prior(img0: torch.Tensor, img1: torch.Tensor, share: float,
                 given: torch.Tensor | None = None, quad: float = 0.0) -> torch.Tensor | None:
    """DIS pair flows for a random ``share`` of the batch, zeros (no prior) for the rest; None at 0.

    given: the batch's ``pair_flow`` when the data workers computed it (else computed here):
    B×4, or a B×8 motion (with the outer neighbours' flows).  quad: the share of the samples
    with a prior that keep their neighbours (the quadratic prior); the others' neighbour
    channels become NaN (linear motion, :func:`vsugsp.model.motion.quadratic_flows_at_torch`),
    as do those of samples without a prior, whose zero pair flow must stay the plain network.
    At quad 0 a B×8 motion is cut to its B×4 pair flow.
    """
    if share <= 0:
        return None
    from ..model.prior import pair_flow

    keep = torch.rand(img0.shape[0]) < share
    if given is not None:
        pf = given[:, :4] * keep.to(given.device, given.dtype).view(-1, 1, 1, 1)
        if quad <= 0 or given.shape[1] == 4:
            return pf
        quadratic = (keep & (torch.rand(img0.shape[0]) < quad)).to(given.device).view(-1, 1, 1, 1)
        nb = torch.where(quadratic, given[:, 4:], torch.full_like(given[:, 4:], float("nan")))
        return torch.cat([pf, nb], 1)
    pf = torch.zeros(img0.shape[0], 4, *img0.shape[-2:], device=img0.device)
    if keep.any():
        idx = keep.nonzero().flatten().to(img0.device)
        pf[idx] = pair_flow(img0[idx], img1[idx])
    return pf


def _flow_terms(out, batch, valid0, valid1) -> torch.Tensor:
    valid = valid0 * valid1
    total = L.flow_loss(out.flow, batch["flow_t0"], batch["flow_t1"], valid)
    for f in out.flow_pyramid:
        total = total + L.flow_loss(f, batch["flow_t0"], batch["flow_t1"], valid)
    return total


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(net: UGSPNet, data: dict, chunk: int = 8, prior: bool = False) -> dict[str, float]:
    """Held-out PSNR (dB) of the dense and the pruned network, and the pruned MAC share.

    prior: also score both with the DIS flow prior (``psnr_prior_dense``, ``psnr_prior_pruned``).
    """
    from ..model.prior import pair_flow

    net.eval()
    scores: dict[str, list] = {}
    macs = dense_macs = 0
    for s in range(0, data["img0"].shape[0], chunk):
        sl = {k: v[s : s + chunk] for k, v in data.items()}
        pairs = {"": None}
        if prior:
            pairs["prior_"] = pair_flow(sl["img0"], sl["img1"])
        for name, pf in pairs.items():
            d = net(sl["img0"], sl["img1"], sl["t"], mode="dense", pair_flow=pf)
            p = net(sl["img0"], sl["img1"], sl["t"], mode="pruned", backend="reference", pair_flow=pf, mask_tile=None)
            scores.setdefault(f"psnr_{name}dense", []).append(L.psnr(d.image, sl["gt"]))
            scores.setdefault(f"psnr_{name}pruned", []).append(L.psnr(p.image, sl["gt"]))
            if pf is None:
                macs += p.mask_macs
                dense_macs += p.dense_macs
    net.train()
    return {**{k: float(torch.cat(v).mean()) for k, v in scores.items()}, "mac_share": macs / max(1, dense_macs)}


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, net: UGSPNet, opt, step: int, recipe: Recipe) -> None:
    """Write the resumable state: weights, optimizer, step, and the recipe that made it
    (``recipe_spec``: every value, so that a resume can tell another recipe from this one)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step,
                "config": net.config.to_dict(), "recipe": recipe.name, "recipe_spec": asdict(recipe)}, tmp)
    tmp.replace(path)


def recipe_changes(old: object, new: object, where: str = "") -> list[str]:
    """The differences between two recipes' plain values (``asdict``), as
    ``"key: old -> new"`` lines with dotted keys (``stages[1].steps: 300 -> 500``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            key = f"{where}.{k}" if where else str(k)
            out += recipe_changes(old.get(k, "(absent)"), new.get(k, "(absent)"), key)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) \
            and any(isinstance(x, dict) for x in old):
        return [c for i, (a, b) in enumerate(zip(old, new)) for c in recipe_changes(a, b, f"{where}[{i}]")]
    return [] if old == new else [f"{where}: {short(old, 40)} -> {short(new, 40)}"]


def check_resume(state: dict, recipe: Recipe, config: dict, path: Path) -> list[str]:
    """Refuse to resume checkpoint ``state`` (read from ``path``) with another recipe or
    another network; returns the settings that changed (logged: a resume may extend the
    schedule or retune it)."""
    where = short(str(path), 240)
    old_name = state.get("recipe")
    if old_name != recipe.name:
        raise ValueError(f"vsugsp: {where} is a run of recipe {short(old_name)}, not {short(recipe.name)}; "
                         "give another --out to start a new run, or resume it with its own recipe")
    if state.get("config") != config:
        raise ValueError(f"vsugsp: {where} holds another network ({short(state.get('config'), 120)}) than "
                         f"recipe {short(recipe.name)} builds ({short(config, 120)}); give another --out")
    spec = state.get("recipe_spec")  # absent in checkpoints written before it was stored
    return recipe_changes(spec, asdict(recipe)) if isinstance(spec, dict) else []


def load_checkpoint(path: Path, net: UGSPNet, opt, recipe: Recipe | None = None) -> int:
    """Restore ``net`` and ``opt`` from ``path``; the step it was saved at.

    Raises ``ValueError("vsugsp: ...")`` for a truncated or foreign file, a checkpoint of
    another recipe (when ``recipe`` is given) or of another network.
    """
    where = short(str(path), 240)
    hint = "move it away to start over, or give another --out"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt, or not a torch file at all
        raise ValueError(f"vsugsp: checkpoint {where} cannot be read ({type(exc).__name__}: "
                         f"{clip(str(exc), 120)}); {hint}") from None
    if not isinstance(state, dict) or not {"model", "opt", "step"} <= set(state) \
            or isinstance(state["step"], bool) or not isinstance(state["step"], int) or state["step"] < 0:
        raise ValueError(f"vsugsp: {where} is not a vsugsp training checkpoint; {hint}")
    if recipe is not None:
        changed = check_resume(state, recipe, net.config.to_dict(), path)
        if changed:
            log.info("resuming %s with changed settings: %s", recipe.name, "; ".join(changed[:8])
                     + (f"; and {len(changed) - 8} more" if len(changed) > 8 else ""))
    try:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"vsugsp: checkpoint {where} does not fit the network of recipe "
                         f"{short(recipe.name if recipe else '?')} ({clip(str(exc), 160)}); {hint}") from None
    return state["step"]


# ---------------------------------------------------------------------------- main loop
def train(recipe: Recipe, out_dir: str | Path | None = None, max_steps: int | None = None,
          init: str | Path | None = None, device: str | None = None, progress: bool = True,
          return_model: bool = False):
    """Run (or resume) ``recipe``; returns the output folder (and the network when
    ``return_model``).  ``max_steps`` stops early (this invocation only); ``init``
    starts from a weights file instead of random weights."""
    rank, world = _dist()
    from ..engine import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    if recipe.threads and dev.type == "cpu":
        torch.set_num_threads(recipe.threads)
    out = Path(out_dir or Path("runs") / recipe.name)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(recipe.seed)

    net = UGSPNet(ModelConfig.from_dict(recipe.model)).to(dev)
    if init is not None:
        from ..model import load

        start = load(init)
        if start.config != net.config:
            raise ValueError(f"vsugsp: --init {short(str(init), 240)} is a {start.config.width} network "
                             f"(body {start.config.body}, decoder_mult {start.config.decoder_mult}); recipe "
                             f"{short(recipe.name)} trains {net.config.width} (body {net.config.body}, "
                             f"decoder_mult {net.config.decoder_mult})")
        net.load_state_dict(start.state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.stages[0].lr, weight_decay=recipe.weight_decay)
    ckpt = out / "ckpt.pt"
    step = load_checkpoint(ckpt, net, opt, recipe) if ckpt.is_file() else 0
    first = step
    if step and rank == 0:
        log.info("resuming %s at step %d", recipe.name, step)
    if step >= recipe.total_steps and rank == 0:
        log.info("%s is complete (step %d of %d): nothing to do", recipe.name, step, recipe.total_steps)
    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    amp = _precision(recipe, dev)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 and dev.type == "cuda" else None

    def autocast():
        return torch.autocast(dev.type, dtype=amp, enabled=amp is not None)

    # a fresh seed per resume so a resumed run does not replay the same samples; the data
    # stream is rebuilt when a stage asks for another share of real footage
    data_real = stage_at(recipe, min(step, recipe.total_steps - 1))[0].real
    data = make_data(recipe, seed=recipe.seed * 1_000_003 + step, real=data_real)
    held = heldout(recipe) if rank == 0 else None
    if held is not None:
        held = {k: v.to(dev) for k, v in held.items()}
    logf = open(out / "log.jsonl", "a") if rank == 0 else None
    stop = {"now": False}

    def _sig(signum, frame):  # finish the step, checkpoint, exit
        stop["now"] = True

    old = {s: signal.signal(s, _sig) for s in (signal.SIGTERM, signal.SIGINT)} if rank == 0 or world == 1 else {}
    net.train()
    end = recipe.total_steps if max_steps is None else min(recipe.total_steps, step + max_steps)
    t_last, n_last = time.time(), step
    meta = {"recipe": recipe.name, "data": asdict(recipe.data), "device": str(dev),
            "precision": str(amp).replace("torch.", "") if amp else "fp32", "world": world}
    try:
        while step < end and not stop["now"]:
            stage, k = stage_at(recipe, step)
            if stage.real != data_real:
                data_real = stage.real
                data = make_data(recipe, seed=recipe.seed * 1_000_003 + step, real=data_real)
            for g in opt.param_groups:
                g["lr"] = lr_at(stage, k)
            batch = {key: v.to(dev, non_blocking=True) for key, v in next(data).items()}
            loss, terms = compute_losses(model, batch, stage, k, autocast)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            step += 1
            if rank == 0 and (step % recipe.log_every == 0 or step == end):
                dt = (time.time() - t_last) / max(1, step - n_last)
                t_last, n_last = time.time(), step
                rec = {"step": step, "stage": stage.name, "loss": float(loss.detach()), "lr": opt.param_groups[0]["lr"],
                       "grad_norm": float(gnorm), "sec_per_step": round(dt, 4), "time": time.time(), **terms}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                if progress:
                    print(f"[{recipe.name}] step {step}/{recipe.total_steps} {stage.name} loss {rec['loss']:.4f} "
                          f"({dt:.2f} s/step)", file=sys.stderr, flush=True)
            if rank == 0 and held is not None and (step % recipe.eval_every == 0 or step == end):
                ev = evaluate(net, held, prior=any(s.prior > 0 for s in recipe.stages))
                logf.write(json.dumps({"step": step, "stage": stage.name, "eval": ev, "time": time.time()}) + "\n")
                logf.flush()
                if progress:
                    print(f"[{recipe.name}] eval step {step}: {ev}", file=sys.stderr, flush=True)
            if rank == 0 and (step % recipe.ckpt_every == 0 or step == end):
                save_checkpoint(ckpt, net, opt, step, recipe)
                save(net, out / "weights.pt", {**meta, "steps": step})
            if rank == 0 and recipe.snapshot_every and step % recipe.snapshot_every == 0:
                save(net, out / "snapshots" / f"step-{step:07d}.pt", {**meta, "steps": step})
    finally:
        if rank == 0 and step > first:  # a run that took no step leaves its files as they were
            save_checkpoint(ckpt, net, opt, step, recipe)
            save(net, out / "weights.pt", {**meta, "steps": step})
        for s, h in old.items():
            signal.signal(s, h)
        if logf:
            logf.close()
    return (out, net) if return_model else out
