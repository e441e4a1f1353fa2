"""Results of one benchmark and the BENCHMARKS.md writer."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class Figure:
    """One measured figure, with its baseline when it has one."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    goal: str = ""
    #: True when a larger value is better (a rate); False for costs.
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


@dataclass
class Section:
    title: str
    method: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, Python {platform.python_version()}, {platform.system()}"
    )


def render(sections: list[Section], command: str, elapsed_s: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d} at commit `{commit or 'unknown'}`,",
        f"in {elapsed_s:.0f} s, against the local Kafka broker and PostgreSQL on loopback.",
        f"Machine: {machine_description()}.",
        "",
        "Each ratio compares a figure with a baseline measured in the same run,",
        "so that the machine's speed cancels out. Absolute numbers are for this",
        "machine only.",
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", section.method, ""]
        lines += ["| Figure | Value | Baseline | Ratio | Goal |", "| --- | ---: | ---: | ---: | --- |"]
        for figure in section.figures:
            baseline = f"{figure.baseline:,.2f} {figure.unit}" if figure.baseline is not None else "-"
            ratio = f"{figure.ratio:.2f}" if figure.ratio is not None else "-"
            lines.append(
                f"| {figure.name} | {figure.value:,.2f} {figure.unit} | {baseline} | {ratio} | {figure.goal} |"
            )
        lines.append("")
        for note in section.notes:
            lines.append(f"- {note}")
        if section.notes:
            lines.append("")
    return "\n".join(lines)
