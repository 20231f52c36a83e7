"""retain_freed_memory: network passes reuse freed memory instead of page-faulting it in again."""
import os
import subprocess
import sys
import textwrap

import pytest

# Five pruned passes of an untrained network at 640×368; the faults of passes 2–5
# (after the first has sized the heap) are what the setting is for.
PROBE = textwrap.dedent("""
    import resource, sys, torch
    from vsugsp.allocator import retain_freed_memory
    on = retain_freed_memory() if sys.argv[1] == "on" else False
    from vsugsp.model import ModelConfig, UGSPNet
    torch.manual_seed(0)
    net = UGSPNet(ModelConfig("small")).eval()
    a, b = torch.rand(1, 3, 368, 640), torch.rand(1, 3, 368, 640)
    faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    counts = []
    with torch.inference_mode():
        for _ in range(5):
            start = faults()
            net(a, b, 0.5, mode="pruned", backend="cpu", max_density=0.4)
            counts.append(faults() - start)
    print(int(on), sum(counts[1:]))
""")


def _faults(mode: str, env_off: bool = False) -> tuple[int, int]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if env_off:
        env["VSUGSP_RETAIN_MEMORY"] = "0"
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, env=env)
    on, n = out.stdout.split()
    return int(on), int(n)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tunables")
def test_network_passes_reuse_freed_memory():
    on, retained = _faults("on")
    if not on:
        pytest.skip("not glibc")
    _, default = _faults("off")
    assert default > 5000  # the default hands large blocks back and faults them in again
    assert retained * 3 < default, (retained, default)


def test_the_environment_turns_it_off():
    on, _ = _faults("on", env_off=True)
    assert on == 0
