"""The cores a worker plans its threads for: its affinity and its container's CPU quota."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from whisper_api.config import available_cores
from whisper_api.server_process import ROOT


@pytest.mark.skipif(shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"), reason="Linux")
def test_a_process_pinned_to_one_core_plans_for_one() -> None:
    code = "from whisper_api.config import Settings; s = Settings(); "
    code += "print(s.cpu_count, s.effective_inference_workers, s.effective_cpu_threads)"
    done = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    # one core: one transcription at a time with one thread (measured fastest there, issue #17)
    assert done.stdout.split() == ["1", "1", "1"]


def test_a_cgroup_quota_caps_the_cores(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # --cpus=1.5
    assert available_cores(cpu_max) == min(2, len(os.sched_getaffinity(0)))
    cpu_max.write_text("max 100000\n")
    assert available_cores(cpu_max) == len(os.sched_getaffinity(0))
    assert available_cores(tmp_path / "missing") == len(os.sched_getaffinity(0))
