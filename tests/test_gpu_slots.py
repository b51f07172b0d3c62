"""GPU assignment of gunicorn workers (pure bookkeeping in the master)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.server import ROOT
from whisper_api.config import Settings
from whisper_api.gpu_slots import GpuSlots, device_environment, parse_gpus


def test_workers_spread_evenly_over_a_list_with_gaps() -> None:
    slots = GpuSlots(parse_gpus(("0", "1", "3")))
    gpus = [slots.gpu(slots.claim(age)) for age in range(1, 7)]
    assert gpus == [0, 1, 3, 0, 1, 3]


def test_uneven_worker_count_differs_by_at_most_one_per_gpu() -> None:
    slots = GpuSlots((0, 1, 3))
    counts = Counter(slots.gpu(slots.claim(age)) for age in range(1, 6))
    assert counts == {0: 2, 1: 2, 3: 1}


def test_replacement_worker_gets_the_dead_workers_gpu() -> None:
    slots = GpuSlots((0, 1, 3))
    for age in (1, 2, 3, 4):
        slots.claim(age)
    slots.release(2)  # the worker on GPU 1 died
    assert slots.gpu(slots.claim(5)) == 1
    assert sorted(Counter(slots.gpu(s) for s in slots.held()).values()) == [1, 1, 2]


def test_several_respawns_keep_the_spread() -> None:
    slots = GpuSlots((0, 1))
    live = {age: slots.claim(age) for age in (1, 2, 3, 4)}
    next_age = 5
    for dead in (3, 1, 5, 4):
        slot = live.pop(dead)
        slots.release(dead)
        live[next_age] = slots.claim(next_age)
        assert live[next_age] == slot
        next_age += 1
    assert Counter(slots.gpu(s) for s in live.values()) == {0: 2, 1: 2}


def test_claim_is_idempotent_for_a_live_worker() -> None:
    slots = GpuSlots((0, 1))
    assert slots.claim(7) == slots.claim(7) == 0
    assert slots.claim(8) == 1


def test_slots_of_workers_gone_without_notice_are_freed() -> None:
    slots = GpuSlots((0, 1))
    for age in (1, 2):
        slots.claim(age)
    slots.retain([2])
    assert slots.claim(3) == 0


def test_empty_list_means_cpu() -> None:
    slots = GpuSlots(parse_gpus(()))
    assert slots.gpu(slots.claim(1)) is None
    assert device_environment(None, {}) == {"WHISPER_API_DEVICE": "cpu"}


def test_explicit_cuda_without_a_list_is_left_alone() -> None:
    assert device_environment(None, {"WHISPER_API_DEVICE": "cuda"}) == {}


def test_gpu_worker_gets_cuda_and_its_index() -> None:
    assert device_environment(3, {}) == {"WHISPER_API_DEVICE": "cuda", "WHISPER_API_DEVICE_INDEX": "3"}


def test_gpu_list_rejects_names() -> None:
    with pytest.raises(ValueError, match="GPU index"):
        parse_gpus(("0", "cuda:1"))


def test_gunicorn_config_imports_neither_torch_nor_ctranslate2(tmp_path: Path) -> None:
    code = (
        "import runpy, sys; runpy.run_path('gunicorn.conf.py');"
        "print(sorted(m for m in ('torch', 'ctranslate2', 'whisper', 'faster_whisper') if m in sys.modules))"
    )
    env = {
        "WHISPER_API_GPUS": "0,1",
        "WHISPER_ENGINE": "openai-whisper",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_gpu_list_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"WHISPER_API_GPUS": "0, 1,3"})
    assert parse_gpus(settings.gpus) == (0, 1, 3)
