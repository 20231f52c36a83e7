"""CPU capability detection."""
import pytest

from vsugsp import hardware

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni
processor\t: 1
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni
"""


def test_cpu_flags_parses_cpuinfo():
    flags = hardware.cpu_flags(CPUINFO)
    assert {"avx2", "avx512_bf16"} <= flags and "AuthenticAMD" not in flags
    assert hardware.cpu_flags("Features\t: fp asimd bf16\n") == {"fp", "asimd", "bf16"}
    assert not hardware.cpu_flags("flags: avx2 avx512f") & set(hardware.BF16_FLAGS)


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False)])
def test_env_overrides_detection(monkeypatch, value, expected):
    monkeypatch.setenv("VSUGSP_CPU_BF16", value)
    hardware.cpu_bf16.cache_clear()
    try:
        assert hardware.cpu_bf16() is expected
    finally:
        hardware.cpu_bf16.cache_clear()
