"""Measuring what a load used: process RSS from /proc (or resource), GPU memory via pynvml if present."""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_nvml: Any = None
_nvml_checked = False


def rss_bytes() -> int:
    """Resident set size of this process now; the peak (ru_maxrss) where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def _nvml_module() -> Any:
    global _nvml, _nvml_checked
    if not _nvml_checked:
        _nvml_checked = True
        try:
            import pynvml  # type: ignore[import-not-found,unused-ignore]

            pynvml.nvmlInit()
            _nvml = pynvml
        except Exception:
            _nvml = None
    return _nvml


def gpu_bytes() -> int | None:
    """GPU memory used by this process on all devices, or None when pynvml is absent or fails."""
    nvml = _nvml_module()
    if nvml is None:
        return None
    try:
        pid = os.getpid()
        total = 0
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == pid and proc.usedGpuMemory:
                    total += int(proc.usedGpuMemory)
        return total
    except Exception:
        return None
