"""What this installation has: versions, devices, presets, kernels, weights.

Backs `vsugsp info`. Every probe catches its own failure and reports it as
text, so one broken component never hides the rest.
"""

from __future__ import annotations

import importlib
import platform
from pathlib import Path
from typing import Any, Callable


def versions() -> dict[str, str]:
    """Version strings of vsugsp and the libraries it runs on ("not installed" when absent)."""
    from ._version import __version__

    out = {"vsugsp": __version__, "python": platform.python_version()}
    for name in ("vapoursynth", "torch", "numpy", "cupy", "av", "cv2"):  # cv2: the DIS flow prior
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # ImportError, or a broken CUDA library under cupy
            out[name] = "not installed" if isinstance(exc, ModuleNotFoundError) else f"unusable ({exc})"
            continue
        if name == "vapoursynth":
            out[name] = f"R{mod.core.core_version.release_major} (API {mod.__api_version__.api_major}.{mod.__api_version__.api_minor})"
        else:
            out[name] = str(getattr(mod, "__version__", "?"))
    return out


def devices() -> list[dict[str, Any]]:
    """The compute devices torch can use (always the CPU, plus each CUDA device), each with what
    ``flow_prior: auto`` (the default presets' setting) runs there."""
    import torch

    from .bench.machine import cpu_model, usable_cores

    from .model import prior

    found: list[dict[str, Any]] = [
        {"device": "cpu", "name": cpu_model(),
         "threads": torch.get_num_threads(), "cores": usable_cores(),
         "flow prior": prior.describe("auto", "cpu")}
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            found.append({"device": f"cuda:{i}", "name": p.name, "capability": f"{p.major}.{p.minor}",
                          "memory_gib": round(p.total_memory / 2**30, 1),
                          "flow prior": prior.describe("auto", "cuda")})
    return found


def presets() -> list[str]:
    """Names of the bundled inference presets (presets/*.yaml)."""
    from .preset import available_presets

    return available_presets()


def weights() -> list[str]:
    """Names of the packaged weights (`model=` accepts them)."""
    from .model import available

    return available()


def kernels(compile_check: bool = True) -> list[dict[str, str]]:
    """Each kernels/*.cu and whether CuPy compiles it on this machine's GPU.

    status: "compiles", "error: ...", or why it was not tried (no CuPy or no
    CUDA device, or `compile_check` off).
    """
    from .kernels import KERNEL_DIR, launch

    sources = sorted(p.name for p in Path(KERNEL_DIR).glob("*.cu"))
    reason = None if compile_check else "not checked"
    cp = None
    if reason is None:
        try:
            cp = launch.import_cupy()
        except RuntimeError as exc:
            reason = str(exc).removeprefix("vsugsp: ")
    out = []
    for name in sources:
        status = reason
        if status is None:
            status = _compile(cp, launch, name)
        out.append({"kernel": name, "status": status})
    return out


def _compile(cp: Any, launch: Any, name: str) -> str:
    """Compile one source the way the launcher does (its options and template
    instantiations); "compiles" or the compiler's first line of complaint."""
    if name not in launch.SOURCES:
        return "not used by the launcher"
    try:
        exprs = launch.NAME_EXPRESSIONS.get(name) or None
        module = cp.RawModule(code=launch.load_source(name), options=launch.OPTIONS, name_expressions=exprs)
        module.compile()
        return "compiles"
    except Exception as exc:
        text = str(exc).strip()
        return "error: " + (text.splitlines()[0] if text else type(exc).__name__)


def calibration() -> list[str]:
    """``mode: auto``'s decisions cached on this machine (:mod:`vsugsp.calibrate`), one line each."""
    from .calibrate import cached_decisions, describe

    return [describe(d) for d in cached_decisions()]


def gather(compile_check: bool = True) -> dict[str, Any]:
    """Everything above in one mapping (what `vsugsp info --json` prints)."""
    report: dict[str, Any] = {}
    for key, probe in (("versions", versions), ("devices", devices), ("presets", presets),
                       ("weights", weights), ("kernels", lambda: kernels(compile_check)),
                       ("calibration", calibration)):
        try:
            report[key] = probe()
        except Exception as exc:
            report[key] = f"unavailable ({type(exc).__name__}: {exc})"
    return report


def format_report(report: dict[str, Any]) -> str:
    """`gather()`'s mapping as aligned text for a terminal."""
    lines: list[str] = []
    v = report.get("versions")
    lines.append("versions:")
    if isinstance(v, dict):
        lines += [f"  {k:<12} {val}" for k, val in v.items()]
    else:
        lines.append(f"  {v}")
    lines.append("devices:")
    d = report.get("devices")
    if isinstance(d, list):
        for dev in d:
            extra = ", ".join(f"{k} {val}" for k, val in dev.items() if k not in ("device", "name"))
            lines.append(f"  {dev['device']:<12} {dev['name']} ({extra})")
    else:
        lines.append(f"  {d}")
    for key in ("presets", "weights"):
        val = report.get(key)
        text = ", ".join(val) if isinstance(val, list) and val else ("none" if isinstance(val, list) else val)
        lines.append(f"{key}: {text}")
    lines += _section("kernels", report.get("kernels"), lambda row: f"{row['kernel']:<20} {row['status']}", "none")
    lines += _section("calibration (mode auto)", report.get("calibration"), str,
                      "none yet (measured on a GPU on first use of each frame size)")
    return "\n".join(lines)


def _section(title: str, value: Any, row: Callable[[Any], str], empty: str) -> list[str]:
    """A titled block of the text report: one indented line per row of a list, ``empty`` for
    an empty list, or the value itself (a reason it could not be listed)."""
    if not isinstance(value, list):
        return [f"{title}:", f"  {value}"]
    return [f"{title}:"] + ([f"  {row(r)}" for r in value] or [f"  {empty}"])
