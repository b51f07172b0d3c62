"""Live audio for the Realtime tests: the benchmark's own helpers (raw PCM speech, paced sending)."""

from __future__ import annotations

from bench.live import pcm16, send_paced, silence

__all__ = ["pcm16", "send_paced", "silence"]
