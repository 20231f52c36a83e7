"""retain_freed_memory: freed blocks are reused instead of being page-faulted in again.

Two probes, each in a fresh process (the setting is process-wide):

* the mechanism: ``malloc``/write/``free`` of a 64 MB block five times through
  the C library itself.  64 MB is above glibc's largest adaptive mmap
  threshold (32 MB), so by default every allocation is a fresh mapping that
  faults all its pages in; with the setting only the first one does.
* what it is for: pruned network passes at 960×544, where the first level's
  feature maps (66 MB in fp32) are again above every threshold.  Passes 4–6 are
  counted, after the heap has settled at its peak.  (At 640×368 the maps are
  just under 32 MB and glibc's adaptive threshold may already reuse them, so
  the difference there depends on the glibc version: seen as 8 500 against
  45 000 faults on two machines.)
"""
import os
import subprocess
import sys
import textwrap

import pytest

PAGES = 64 * 2**20 // 4096

MECHANISM = textwrap.dedent("""
    import ctypes, ctypes.util, resource, sys
    from vsugsp.allocator import retain_freed_memory
    on = retain_freed_memory() if sys.argv[1] == "on" else False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    counts = []
    for _ in range(5):
        start = faults()
        p = libc.malloc(64 * 2**20)
        ctypes.memset(p, 1, 64 * 2**20)
        libc.free(p)
        counts.append(faults() - start)
    print(int(on), counts[0], sum(counts[1:]))
""")

NETWORK = textwrap.dedent("""
    import resource, sys, torch
    from vsugsp.allocator import retain_freed_memory
    on = retain_freed_memory() if sys.argv[1] == "on" else False
    from vsugsp.model import ModelConfig, UGSPNet
    torch.manual_seed(0)
    net = UGSPNet(ModelConfig("small")).eval()
    a, b = torch.rand(1, 3, 544, 960), torch.rand(1, 3, 544, 960)
    faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    counts = []
    with torch.inference_mode():
        for _ in range(6):
            start = faults()
            net(a, b, 0.5, mode="pruned", backend="tiles", max_density=0.4)
            counts.append(faults() - start)
    print(int(on), counts[0], sum(counts[3:]))
""")


def _run(probe: str, mode: str, env_off: bool = False) -> tuple[int, int, int]:
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env.pop("VSUGSP_RETAIN_MEMORY", None)
    if env_off:
        env["VSUGSP_RETAIN_MEMORY"] = "0"
    out = subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, check=True, env=env)
    on, first, later = out.stdout.split()
    return int(on), int(first), int(later)


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tunables")


def _with_and_without(probe: str) -> tuple[int, int, int]:
    """(first-round faults with the setting, later faults with it, later faults without it)."""
    on, first, retained = _run(probe, "on")
    if not on:
        pytest.skip("not glibc")
    _, _, default = _run(probe, "off")
    if default < PAGES:  # e.g. transparent huge pages on every mapping: nothing for the setting to save
        pytest.skip(f"only {default} faults without the setting: the kernel does not fault page by page")
    return first, retained, default


@linux_only
def test_a_freed_block_is_reused_as_it_is():
    first, retained, default = _with_and_without(MECHANISM)
    assert first > PAGES // 2  # the first block is new memory either way
    assert default > 3 * PAGES  # by default blocks 2-5 are faulted in again
    assert retained < PAGES // 10, (retained, default)


@linux_only
def test_network_passes_stop_faulting_once_the_heap_has_settled():
    _, retained, default = _with_and_without(NETWORK)
    assert retained * 5 < default, (retained, default)


def test_the_environment_turns_it_off():
    on, _, _ = _run(MECHANISM, "on", env_off=True)
    assert on == 0
