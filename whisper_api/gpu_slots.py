"""Which GPU each gunicorn worker uses: decided in the master, applied in the worker after fork.

Pure bookkeeping, no torch or CUDA: the master runs it. Each worker holds a slot (0, 1, 2, ...);
slot `i` maps to `gpus[i % len(gpus)]`, so workers spread evenly over the list. A replacement
worker takes the lowest free slot, which is the one its dead predecessor gave back: it gets the
same GPU and the spread stays even.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping


def parse_gpus(values: Iterable[str]) -> tuple[int, ...]:
    """GPU indexes from the `WHISPER_API_GPUS` items (`("0", "1", "3")`); raise on anything else."""
    gpus = []
    for value in values:
        if not value.strip().isdigit():
            raise ValueError(f"WHISPER_API_GPUS: {value!r} is not a GPU index (use e.g. 0,1,3)")
        gpus.append(int(value))
    return tuple(gpus)


class GpuSlots:
    """Slots handed to live workers, keyed by an id the master knows for each worker."""

    def __init__(self, gpus: Iterable[int]) -> None:
        self.gpus = tuple(gpus)
        self._owners: dict[int, int] = {}  # slot -> worker id

    def claim(self, worker_id: int) -> int:
        """The lowest free slot, now held by `worker_id` (the same one again if it holds one)."""
        for slot, owner in self._owners.items():
            if owner == worker_id:
                return slot
        slot = next(i for i in range(len(self._owners) + 1) if i not in self._owners)
        self._owners[slot] = worker_id
        return slot

    def release(self, worker_id: int) -> None:
        """Give back the slot of a worker that exited; unknown ids are ignored."""
        for slot, owner in list(self._owners.items()):
            if owner == worker_id:
                del self._owners[slot]

    def retain(self, live_ids: Iterable[int]) -> None:
        """Free the slots of workers that are gone without an exit notice."""
        live = set(live_ids)
        for slot, owner in list(self._owners.items()):
            if owner not in live:
                del self._owners[slot]

    def gpu(self, slot: int) -> int | None:
        """The GPU of a slot, or None when the list is empty (CPU)."""
        return self.gpus[slot % len(self.gpus)] if self.gpus else None

    def held(self) -> dict[int, int]:
        return dict(self._owners)


def device_environment(gpu: int | None, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Settings a worker reads for its device: its GPU, or the CPU when it has none.

    An explicit `WHISPER_API_DEVICE=cuda` without a GPU list keeps every worker on its configured
    device index (the behaviour before GPU lists).
    """
    if gpu is not None:
        return {"WHISPER_API_DEVICE": "cuda", "WHISPER_API_DEVICE_INDEX": str(gpu)}
    if environ.get("WHISPER_API_DEVICE", "").strip() in ("", "auto"):
        return {"WHISPER_API_DEVICE": "cpu"}
    return {}
