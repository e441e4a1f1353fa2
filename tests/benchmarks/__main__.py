"""Run every benchmark and write BENCHMARKS.md: ``python -m tests.benchmarks``.

Set ``BENCH_QUICK=1`` for a short run with smaller sizes (for trying it out;
the figures recorded in BENCHMARKS.md come from the full run).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from tests.benchmarks import bench_patterns, bench_pipeline, bench_schedules, bench_sse, bench_webpush
from tests.benchmarks.report import Section, render
from tests.stack import ROOT, STACK_SCRIPT, Stack, read_env_file

COMMAND = "make bench"


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"
    started = time.monotonic()
    status = subprocess.run([str(STACK_SCRIPT), "status"], capture_output=True, text=True).stdout
    started_stack = not ("kafka: running" in status and "postgres: running" in status)
    if started_stack:
        subprocess.run([str(STACK_SCRIPT), "up"], check=True, stdout=subprocess.DEVNULL)
    sections: list[Section] = []
    try:
        env = read_env_file(ROOT / ".local" / "stack.env")
        stack = Stack(bootstrap=env["LUNA_KAFKA_BOOTSTRAP"], database_url=env["LUNA_DATABASE_URL"])
        log_dir = ROOT / ".local" / "bench-logs"
        print("pipeline throughput and latency ...", flush=True)
        sections += asyncio.run(
            bench_pipeline.run(
                stack, log_dir, count=200 if quick else 1000, rate_per_s=200, duration_s=3 if quick else 10
            )
        )
        print("SSE gateway ...", flush=True)
        sections.append(bench_sse.run(stack, log_dir, 1_000 if quick else 10_000))
        print("schedules ...", flush=True)
        sections.append(bench_schedules.run([1_000, 10_000] if quick else [10_000, 100_000, 1_000_000]))
        print("web push ...", flush=True)
        sections.append(bench_webpush.run(50 if quick else 200))
        print("pattern detectors ...", flush=True)
        sections.append(bench_patterns.run(10_000 if quick else 100_000, 6))
    finally:
        if started_stack:
            subprocess.run([str(STACK_SCRIPT), "down"], check=False, stdout=subprocess.DEVNULL)
    text = render(sections, COMMAND + (" (BENCH_QUICK=1)" if quick else ""), time.monotonic() - started)
    if quick:
        print(text)
    else:
        (ROOT / "BENCHMARKS.md").write_text(text + "\n")
        print(f"wrote {ROOT / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
