"""Benchmark of whisper_api: the real server over HTTP, the engine called directly, the baseline.

Run `python -m bench` (full, under 15 minutes on 2 cores) or `python -m bench --quick` (under 2).
"""
