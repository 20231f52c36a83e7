"""Training: recipes, schedules, losses, a tiny resumable run, DDP sync with gloo."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from vsugsp.train import losses as L
from vsugsp.train.loop import lr_at, stage_at, train
from vsugsp.train.recipe import Stage, load_recipe, parse

TINY = {
    "name": "tiny",
    "model": {"width": "small"},
    "data": {"source": "synth", "path": "photos", "size": 32, "workers": 0, "heldout": 2, "heldout_size": 32},
    "batch": 2,
    "precision": "fp32",
    "log_every": 1,
    "eval_every": 2,
    "ckpt_every": 2,
    "stages": [
        {"name": "dense", "mode": "dense", "steps": 2, "warmup": 1},
        {"name": "pruned", "mode": "train", "steps": 2, "warmup": 1},
    ],
}


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    import cv2

    d = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    for i in range(3):
        img = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
        img = cv2.GaussianBlur(img, (5, 5), 1.5)
        cv2.imwrite(str(d / f"p{i}.png"), img)
    return d


def _recipe(pool, **over):
    d = json.loads(json.dumps(TINY))
    d["data"]["path"] = str(pool)
    d.update(over)
    return parse(d)


@pytest.mark.parametrize("name", ["small-cpu", "small-cpu-cont", "small-cpu-masks", "small-cpu-prior", "small-cpu-real", "small-gpu"])
def test_bundled_recipe_parses(name):
    r = load_recipe(name)
    assert r.name == name
    # every recipe ends in the mask stage; all but the mask-only one start with the dense stage
    assert r.stages[-1].mode == "train"
    assert r.stages[0].mode == ("train" if name == "small-cpu-masks" else "dense")
    assert r.total_steps == sum(s.steps for s in r.stages)


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="unknown key.*'lr_max'"):
        parse({**TINY, "stages": [{"name": "a", "lr_max": 1}]})
    with pytest.raises(ValueError, match="mode='sparse'"):
        parse({**TINY, "stages": [{"name": "a", "mode": "sparse"}]})
    with pytest.raises(ValueError, match="has no stages"):
        parse({**TINY, "stages": []})
    with pytest.raises(ValueError, match="not found; bundled: .*small-cpu"):
        load_recipe("no-such-recipe")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_recipe(bad)


def test_schedule():
    s = Stage(name="s", steps=100, lr=1e-3, lr_min=1e-5, warmup=10)
    assert lr_at(s, 0) == pytest.approx(1e-4)
    assert lr_at(s, 9) == pytest.approx(1e-3)
    assert lr_at(s, 99) == pytest.approx(1e-5, rel=0.05)
    assert all(lr_at(s, k) >= lr_at(s, k + 1) for k in range(10, 99))
    r = parse(TINY)
    assert stage_at(r, 0)[0].name == "dense" and stage_at(r, 2) == (r.stages[1], 0)


def test_losses_zero_when_equal_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g)
    b = torch.rand(2, 3, 32, 32, generator=g)
    assert float(L.laplacian_l1(a, a)) == 0.0 and float(L.laplacian_l1(a, b)) > 0.1
    assert float(L.census_loss(a, a)) == 0.0 and float(L.census_loss(a, b)) > 0.0
    flow = torch.zeros(2, 4, 8, 8)
    gt = torch.zeros(2, 2, 32, 32)
    valid = torch.ones(2, 1, 32, 32)
    assert float(L.flow_loss(flow, gt, gt, valid)) < 2e-3
    # a 4 px full-res motion is 1 px at 1/4 resolution
    gt4 = torch.full((2, 2, 32, 32), 4.0)
    assert float(L.flow_loss(torch.ones(2, 4, 8, 8), gt4, gt4, valid)) < 2e-3
    assert float(L.psnr(a, a + 0.1).mean()) == pytest.approx(20.0, abs=0.01)


def test_tiny_run_trains_checkpoints_and_resumes(pool, tmp_path):
    r = _recipe(pool)
    out = train(r, tmp_path / "run", max_steps=2, progress=False)
    ck = torch.load(out / "ckpt.pt", weights_only=True)
    assert ck["step"] == 2
    w1 = torch.load(out / "weights.pt", weights_only=True)["state_dict"]
    train(r, tmp_path / "run", progress=False)  # resumes at step 2, runs the train stage
    assert torch.load(out / "ckpt.pt", weights_only=True)["step"] == 4
    w2 = torch.load(out / "weights.pt", weights_only=True)["state_dict"]
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in log if "loss" in x]
    assert steps == [1, 2, 3, 4]
    stage3 = [x for x in log if x.get("stage") == "pruned" and "loss" in x]
    assert stage3 and all(k in stage3[0] for k in ("census", "sparsity", "label", "density", "dense_image"))
    evals = [x for x in log if "eval" in x]
    assert evals and 0 < evals[-1]["eval"]["mac_share"] <= 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_ddp_two_processes_stay_in_sync(pool, tmp_path):
    recipe = dict(TINY, stages=[{"name": "dense", "mode": "dense", "steps": 3, "warmup": 1}])
    recipe["data"] = dict(TINY["data"], path=str(pool), heldout=0)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    script = tmp_path / "worker.py"
    script.write_text(
        "import os, sys, torch\n"
        "from vsugsp.model import ModelConfig, UGSPNet\n"
        "from vsugsp.train.loop import train\n"
        "from vsugsp.train.recipe import load_recipe\n"
        "r = load_recipe(sys.argv[1])\n"
        "rank = os.environ['RANK']\n"
        "out, net = train(r, sys.argv[2] + '/run' + rank, progress=False, return_model=True)\n"
        "torch.save(net.state_dict(), sys.argv[2] + f'/p{rank}.pt')\n"
        "torch.manual_seed(r.seed)\n"
        "torch.save(UGSPNet(ModelConfig(**r.model)).state_dict(), sys.argv[2] + f'/init{rank}.pt')\n"
    )
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, str(script), str(path), str(tmp_path)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    p0 = torch.load(tmp_path / "p0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "p1.pt", weights_only=True)
    start = torch.load(tmp_path / "init0.pt", weights_only=True)
    assert p0.keys() == p1.keys()
    assert all(torch.equal(p0[k], p1[k]) for k in p0)  # replicas identical after 3 steps
    assert any(not torch.equal(p0[k], start[k]) for k in p0)  # and they did train


def test_census_channel_subset_is_the_loss_of_those_channels():
    import torch

    from vsugsp.train.losses import census_loss

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 6, 9, 11, generator=g), torch.rand(2, 6, 9, 11, generator=g)
    full = census_loss(a, b)
    assert torch.equal(census_loss(a, b, 6), full) and torch.equal(census_loss(a, b, 99), full)
    torch.manual_seed(3)
    sub = census_loss(a, b, 2)
    torch.manual_seed(3)
    pick = torch.randperm(6)[:2]
    assert torch.allclose(sub, census_loss(a[:, pick], b[:, pick]))
    # per-channel losses average to the full loss: the subset is an unbiased estimate
    per = torch.stack([census_loss(a[:, i:i + 1], b[:, i:i + 1]) for i in range(6)])
    assert torch.allclose(per.mean(), full, atol=1e-6)


def test_census_channels_validated():
    with pytest.raises(ValueError, match="census_channels=-1"):
        parse({**TINY, "stages": [{"name": "a", "census_channels": -1}]})


def test_isolate_logits_validated():
    with pytest.raises(ValueError, match="isolate_logits='yes'"):
        parse({**TINY, "stages": [{"name": "a", "mode": "train", "isolate_logits": "yes"}]})
    assert parse({**TINY, "stages": [{"name": "a", "mode": "train", "isolate_logits": True}]}).stages[0].isolate_logits


def test_stop_signal_to_the_process_group_checkpoints(pool, tmp_path):
    """Ctrl-C / `pkill -f` signal every process of the run, data workers included: the
    run must still finish its step, checkpoint and exit cleanly."""
    import signal
    import time

    r = json.loads(json.dumps(TINY))
    r["data"].update(path=str(pool), workers=1)
    r.update(ckpt_every=10_000, eval_every=10_000)
    r["stages"] = [{"name": "dense", "mode": "dense", "steps": 10_000, "warmup": 1}]
    recipe = tmp_path / "long.yaml"
    recipe.write_text(yaml.safe_dump(r))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "vsugsp", "train", str(recipe), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        log = out / "log.jsonl"
        while time.time() < deadline and not (log.is_file() and '"loss"' in log.read_text()):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert log.is_file(), "the run logged no step in 120 s"
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "internal error" not in err
    assert torch.load(out / "ckpt.pt", weights_only=True)["step"] >= 1
