"""`python -m bench [--quick]`: benchmark the real server; see docs/benchmarks.md."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.configs import PLANS
from bench.report import render, write
from bench.run import run_plan
from whisper_api.server_process import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the quick plan (about 3 minutes)")
    parser.add_argument("--plan", choices=sorted(PLANS), help="a named plan (default: full)")
    parser.add_argument("--only", nargs="+", metavar="CONFIG", help="run only these configurations")
    parser.add_argument("--no-baseline", action="store_true", help="skip openai-whisper's transcribe()")
    parser.add_argument("--audio-dir", type=Path, default=ROOT.parent / "shared" / "audio")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpx2", "openai", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    plan = PLANS[args.plan or ("quick" if args.quick else "full")]
    results = run_plan(
        plan,
        args.audio_dir,
        args.out,
        only=set(args.only) if args.only else None,
        baseline=not args.no_baseline,
    )
    paths = write(results, args.out)
    sys.stdout.write(render(results) + "\n\n")
    sys.stdout.write(f"JSON: {paths['json']}\nchart: {paths['chart']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
