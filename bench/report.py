"""The benchmark's outputs: a terminal table, a JSON file and a chart of throughput vs concurrency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.configs import STREAM_CLIP, TARGET_CLIP

#: Issue #17's targets for the defaults (71 s clip; first text on the 60 s file; peak memory over the
#: whole run, every length; multilingual base model, through the OpenAI SDK).
TARGETS = {
    "rtf_1": ("1 request, x real time", 20.0, ">="),
    "throughput_2": ("2 clients together, x real time", 28.0, ">="),
    "overhead": ("HTTP overhead over direct engine call", 0.05, "<="),
    "peak_rss_mib": ("peak RSS per worker, MiB", 500.0, "<"),
    "first_delta_seconds": ("first streamed text, s", 1.0, "<="),
}
#: The accuracy rule: a clip's WER may exceed the baseline's by at most this much.
WER_MARGIN = 0.005
STREAMED = (STREAM_CLIP, TARGET_CLIP)


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _over_rule(wer: float, baseline: float) -> float:
    """How far the WER is above the baseline's plus WER_MARGIN (the accuracy rule's bound)."""
    return wer - baseline - WER_MARGIN


def keeps_rule(wer: float, baseline: float) -> bool:
    """Whether the WER keeps to the baseline's plus WER_MARGIN (the accuracy rule)."""
    return _over_rule(wer, baseline) <= 1e-9


def accuracy_cell(wer: float, baseline: float | None) -> str:
    """`ok` when the WER keeps to the accuracy rule, else by how much it misses."""
    if baseline is None:
        return "-"
    return "ok" if keeps_rule(wer, baseline) else f"MISS +{_over_rule(wer, baseline) * 100:.1f} pt"


def coverage_cell(summary: dict[str, Any] | None) -> str:
    """`ok`, or how many passages were dropped (d), repeated (r) and invented (i)."""
    if not summary:
        return "-"
    if summary["ok"]:
        return "ok"
    return f"d{len(summary['dropped'])} r{len(summary['repeated'])} i{len(summary['invented'])}"


def target_values(config: dict[str, Any]) -> dict[str, float | None]:
    """The figures the targets are about, for one configuration (None where not measured)."""
    http = config["http"]
    single = http["single"].get(TARGET_CLIP, {})
    two = next((lv for lv in http["load"] if lv["clients"] == 2 and lv["clip"] == TARGET_CLIP), None)
    stream = http.get("stream") or {}
    return {
        "rtf_1": single.get("rtf"),
        "throughput_2": two["throughput"] if two else None,
        "overhead": single.get("overhead"),
        "peak_rss_mib": _peak_of_the_run(http),
        "first_delta_seconds": stream.get("first_delta_seconds") if stream.get("clip") in STREAMED else None,
    }


def _peak_of_the_run(http: dict[str, Any]) -> float | None:
    """Largest worker peak over every phase: the target holds whatever the file's length."""
    phases = http.get("peak_rss_mib_by_phase") or {"all": http["peak_rss_mib_per_worker"]}
    return max((v for peaks in phases.values() for v in peaks if v), default=None)


def _mib(values: list[float | None] | None) -> str:
    return "-" if not values else "/".join("-" if v is None else f"{v:.0f}" for v in values)


def meets(key: str, value: float | None) -> bool | None:
    if value is None:
        return None
    _, limit, op = TARGETS[key]
    return {">=": value >= limit, "<=": value <= limit, "<": value < limit}[op]


def render(results: dict[str, Any]) -> str:
    """Human-readable tables for the terminal (and for BENCHMARKS.md)."""
    m = results["machine"]
    parts = [
        f"plan {results['plan']}, started {results['started']}, took {results.get('wall_seconds', 0):.0f} s",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; load average at start "
        f"{m['load_average_start'][0]:.2f}, at end {m.get('load_average_end', [0])[0]:.2f}",
        "",
    ]
    base = results.get("baseline")
    if base:
        rows = [
            [
                name,
                _fmt(f["seconds"]),
                _fmt(f["rtf"], ".1f") + "x",
                _pct(f["wer"]),
                coverage_cell(f.get("coverage")),
            ]
            for name, f in base["files"].items()
        ]
        parts += [
            f"Baseline: {base['engine']} `transcribe()` {base['model']} fp32, greedy + temperature fallback, "
            f"{base['threads']} torch threads; load {base['load_seconds']:.1f} s, peak RSS "
            f"{base['peak_rss_mib']:.0f} MiB",
            table(["clip", "seconds", "RTF", "WER", "coverage"], rows),
            "",
        ]
    rows = []
    for c in results["configs"]:
        for name, f in c["http"]["single"].items():
            rows.append(
                [
                    c["name"],
                    name,
                    _fmt(f["seconds"]),
                    _fmt(f["rtf"], ".1f") + "x",
                    _pct(f["wer"]),
                    _fmt(f.get("direct_seconds")),
                    _pct(f.get("overhead")),
                    _fmt(f.get("speedup_vs_baseline"), ".2f") + ("x" if f.get("speedup_vs_baseline") else ""),
                    _pct(f.get("baseline_wer")),
                    accuracy_cell(f["wer"], f.get("baseline_wer")),
                    "-" if f["tail_words"] is None else str(f["tail_words"]),
                    coverage_cell(f.get("coverage")),
                    coverage_cell(f.get("baseline_coverage")),
                ]
            )
    parts += [
        "One request at a time over HTTP (OpenAI SDK), against the engine called directly and the baseline",
        table(
            [
                "config",
                "clip",
                "HTTP s",
                "RTF",
                "WER",
                "direct s",
                "overhead",
                "vs base",
                "base WER",
                "WER rule",
                "tail",
                "coverage",
                "base cov",
            ],
            rows,
        ),
        "",
    ]
    rows = [
        [
            c["name"],
            f"{m['audio_seconds'] / 60:g} min",
            f"{m['upload_bytes'] / 1024:.0f} KiB",
            _fmt(m["seconds"], ".1f"),
            _mib(m["peak_rss_mib_per_worker"]),
        ]
        for c in results["configs"]
        for m in c["http"].get("memory", [])
    ]
    if rows:
        parts += [
            "Memory by audio length (silent FLAC uploads; peak RSS per worker during each, MiB)",
            table(["config", "audio", "upload", "seconds", "peak RSS"], rows),
            "",
        ]
    rows = []
    for c in results["configs"]:
        for lv in c["http"]["load"]:
            rows.append(
                [
                    c["name"],
                    lv["clip"],
                    str(lv["clients"]),
                    str(lv["requests"]),
                    _fmt(lv["throughput"], ".1f") + "x",
                    _fmt(lv["p50"]),
                    _fmt(lv["p95"]),
                    _pct(lv["wer"]),
                    _fmt(lv.get("audio_per_cpu_second"), ".1f"),
                    "/".join(f"{v:.0f}" for v in lv.get("worker_cpu_seconds", [])),
                ]
            )
    parts += [
        "Concurrent clients (throughput = audio seconds per wall second, all clients together)",
        table(
            [
                "config",
                "clip",
                "clients",
                "requests",
                "throughput",
                "p50 s",
                "p95 s",
                "WER",
                "audio/CPU s",
                "CPU s/worker",
            ],
            rows,
        ),
        "",
    ]
    rows = []
    for c in results["configs"]:
        http = c["http"]
        stream = http.get("stream") or {}
        phases = http.get("peak_rss_mib_by_phase") or {}
        longest = max((n for n in phases if n.startswith("single:long")), default=None, key=len)
        rows.append(
            [
                c["name"],
                c["describe"],
                _mib(phases.get("load")),
                _mib(phases.get(f"single:{c['http']['load'][0]['clip']}") if http["load"] else None),
                _mib(phases.get(longest)) + (f" ({longest[7:]})" if longest else ""),
                _mib(http["peak_rss_mib_per_worker"]),
                f"{sum(http['peak_rss_mib_per_worker']):.0f}",
                ", ".join(f"{v:.1f}" for v in http["load_seconds"]),
                _fmt(http["ready_seconds"], ".1f"),
                _fmt(c["direct"]["load_seconds"], ".1f"),
                _fmt(stream.get("first_delta_seconds")),
            ]
        )
    parts += [
        "Memory (peak RSS per worker, MiB: after model load, during one request of the headline clip, "
        "during the longest clip, whole run; sum over workers), model load and streaming",
        table(
            [
                "config",
                "settings",
                "RSS load",
                "RSS 1 req",
                "RSS long",
                "RSS run",
                "sum",
                "load s",
                "start->ready s",
                "direct load s",
                "1st delta s",
            ],
            rows,
        ),
        "",
    ]
    rows = []
    for c in results["configs"]:
        if c["model"] != "base":
            continue
        values = target_values(c)
        cells = [c["name"]]
        for key in TARGETS:
            ok = meets(key, values[key])
            shown = _pct(values[key]) if key == "overhead" else _fmt(values[key], ".2f")
            cells.append(shown + ("" if ok is None else (" ok" if ok else " MISS")))
        rows.append(cells)
    if rows:
        headers = ["config"] + [f"{TARGETS[k][0]} ({TARGETS[k][2]}{TARGETS[k][1]:g})" for k in TARGETS]
        parts += [f"Targets ({TARGET_CLIP}, base model, OpenAI SDK)", table(headers, rows), ""]
    rows = knob_rows(results)
    if rows:
        parts += [
            f"Each setting against {ANCHOR} (ref71 speed ratio; WER change in percentage points)",
            table(["config", "changed", "speed", "WER change", "clips"], rows),
            "",
        ]
    for name, error in (results.get("failed") or {}).items():
        parts += [f"FAILED {name}: {error.splitlines()[0] if error else ''}", ""]
    best, why = recommend(results)
    parts += [f"Recommended default from this run: {why}", ""]
    parts.append(
        "WER: on the part with known text (ref71: the first 41 s; its German half has no reference, "
        "'tail' counts the words transcribed there). RTF and throughput: audio seconds per wall second."
    )
    return "\n".join(parts)


ANCHOR = "int8-b1-2x1"


def _mean_wer(files: dict[str, Any], names: list[str]) -> float | None:
    values = [files[n]["wer"] for n in names if n in files]
    return sum(values) / len(values) if values else None


def knob_rows(results: dict[str, Any]) -> list[list[str]]:
    """Each configuration against the anchor (2 workers x 1 thread, int8, beam 1): what one change buys."""
    configs = {c["name"]: c for c in results["configs"]}
    anchor = configs.get(ANCHOR)
    if anchor is None:
        return []
    rows = []
    for c in results["configs"]:
        if c is anchor:
            continue
        changed = {k: v for k, v in c["settings"].items() if anchor["settings"].get(k) != v}
        common = [n for n in c["http"]["single"] if n in anchor["http"]["single"]]
        if not common:
            continue
        head = common[0]
        speed = c["http"]["single"][head]["rtf"] / anchor["http"]["single"][head]["rtf"]
        wer = _mean_wer(c["http"]["single"], common)
        base_wer = _mean_wer(anchor["http"]["single"], common)
        rows.append(
            [
                c["name"],
                ", ".join(
                    f"{k.removeprefix('WHISPER_API_').removeprefix('WHISPER_')}={v}"
                    for k, v in changed.items()
                ),
                f"{speed:.2f}x",
                f"{(wer - base_wer) * 100:+.1f} pt" if wer is not None and base_wer is not None else "-",
                ", ".join(common),
            ]
        )
    return rows


def recommend(results: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The configuration to make the default: the accuracy rule kept, then most targets met.

    Accuracy first (issue #17's rule): a configuration is out unless it ran every clip the baseline
    ran and, on each, its WER is at most the baseline's + WER_MARGIN and no passage is dropped,
    repeated or invented. Then most targets met, then throughput with 2 clients, then one request's speed.
    """
    base = results.get("baseline")
    eligible = []
    for c in results["configs"]:
        if c["model"] != "base" or c["engine"] != "faster-whisper":
            continue
        single = c["http"]["single"]
        if base and not set(base["files"]) <= set(single):
            continue  # not measured on every clip the baseline ran
        if base and not all(
            keeps_rule(f["wer"], base["files"][name]["wer"])
            for name, f in single.items()
            if name in base["files"]
        ):
            continue
        if not all((f.get("coverage") or {"ok": True})["ok"] for f in single.values()):
            continue
        values = target_values(c)
        met = sum(1 for k in TARGETS if meets(k, values[k]))
        eligible.append((met, values["throughput_2"] or 0.0, values["rtf_1"] or 0.0, c))
    if not eligible:
        return None, "no configuration keeps to the accuracy rule on every clip"
    met, _, _, best = max(eligible, key=lambda e: e[:3])
    kept = f"keeps to the accuracy rule, meets {met} of {len(TARGETS)} targets"
    return best, f"{best['name']} ({best['describe']}): {kept}"


def chart(results: dict[str, Any], path: Path) -> Path:
    """PNG: throughput against concurrent clients, one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for c in results["configs"]:
        levels = c["http"]["load"]
        if not levels:
            continue
        xs = [lv["clients"] for lv in levels]
        ys = [lv["throughput"] for lv in levels]
        ax.plot(xs, ys, marker="o", label=c["describe"])
    base = results.get("baseline")
    clip = next((c["http"]["load"][0]["clip"] for c in results["configs"] if c["http"]["load"]), None)
    if base and clip in base["files"]:
        ax.axhline(base["files"][clip]["rtf"], color="grey", linestyle="--", label="baseline: openai-whisper")
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8], labels=["1", "2", "4", "8"])
    ax.set_xlabel("concurrent clients (OpenAI SDK)")
    ax.set_ylabel("throughput (audio s per wall s)")
    ax.set_title(f"whisper_api throughput on {clip} ({results['machine']['cores']} cores)")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write results.json, the chart and the text report into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "results.json",
        "chart": out_dir / "throughput.png",
        "text": out_dir / "report.txt",
    }
    paths["json"].write_text(json.dumps(results, indent=2))
    chart(results, paths["chart"])
    paths["text"].write_text(render(results) + "\n")
    return paths
