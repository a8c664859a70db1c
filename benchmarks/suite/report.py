"""Timing the cases and turning the samples into the ratio table."""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata

from benchmarks.suite.cases import OURS, PLAIN, RECIPE, Case, Comparison, Work


def measure(
    cases: Sequence[Case],
    repeat: int,
    seed: int,
    failed: dict[str, str],
    progress: Callable[[str], None],
) -> dict[str, list[float]]:
    """Time every case ``repeat`` times, after one warm-up run each.

    The warm-up runs in the given order (so each write fills its table before the reads of that
    table). In each repetition the cases that measure the same thing for different libraries
    (say every ``char.read.*``) run back to back in a fresh random order, so the two sides of a
    ratio run seconds apart and a burst of load from elsewhere on the machine is spread over the
    libraries instead of landing on one. A case that raises during the warm-up takes its library
    out of the run (reported in ``failed``).
    """
    live = list(cases)
    for case in cases:
        if case.library in failed:
            live.remove(case)
            continue
        gc.collect()
        try:
            case.run()
        except Exception as exc:
            failed[case.library] = f"failed on this database: {type(exc).__name__}: {exc}"
            live = [c for c in live if c.library != case.library]
    samples: dict[str, list[float]] = {case.key: [] for case in live}
    groups: dict[str, list[Case]] = {}
    for case in live:
        groups.setdefault(case.key.rpartition(".")[0], []).append(case)
    rng = random.Random(seed)
    for index in range(repeat):
        progress(f"repetition {index + 1}/{repeat}: {len(live)} cases")
        order = list(groups.values())
        rng.shuffle(order)
        for group in order:
            # The libraries compared on one thing run back to back, in a fresh order each time.
            for case in rng.sample(group, len(group)):
                gc.collect()
                samples[case.key].append(case.run())
    return samples


@dataclass(frozen=True)
class Row:
    comparison: Comparison
    ratio: float
    low: float
    high: float
    subject_us: float
    baseline_us: float

    @property
    def verdict(self) -> str:
        target = self.comparison.target
        if target is None:
            return ""
        return "met" if target.check(self.ratio) else "MISSED"


def rows(
    comparisons: Sequence[Comparison],
    cases: Sequence[Case],
    samples: dict[str, list[float]],
    *,
    judged: bool,
) -> list[Row]:
    """One row per comparison whose two cases both ran.

    The ratio is the median of the per-repetition ratios: both sides of one ratio ran in the
    same repetition, so a slow stretch of the machine tends to cancel out of it.
    """
    items = {case.key: case.items for case in cases}
    found = []
    for comparison in comparisons:
        if not judged:
            comparison = replace(comparison, target=None)
        keys = [key for key in (comparison.subject, comparison.baseline, comparison.above) if key]
        if not all(key in items for key in keys):
            raise ValueError(f"{comparison.label!r} compares a case that does not exist: {keys}")
        if not all(samples.get(key) for key in keys):
            continue  # a library that could not run, reported as such
        subject, baseline = samples[comparison.subject], samples[comparison.baseline]
        if comparison.above:
            # Per-item times, since the plain case may time a different number of items.
            plain = [t / items[comparison.above] for t in samples[comparison.above]]
            subject = [
                t / items[comparison.subject] - p for t, p in zip(subject, plain, strict=True)
            ]
            baseline = [
                t / items[comparison.baseline] - p for t, p in zip(baseline, plain, strict=True)
            ]
            per_item = 1.0, 1.0
        else:
            per_item = items[comparison.subject], items[comparison.baseline]
        ratios = [s / b for s, b in zip(subject, baseline, strict=True)]
        found.append(
            Row(
                comparison,
                statistics.median(ratios),
                min(ratios),
                max(ratios),
                statistics.median(subject) / per_item[0] * 1e6,
                statistics.median(baseline) / per_item[1] * 1e6,
            )
        )
    return found


@dataclass(frozen=True)
class SummaryRow:
    work: Work
    plain_us: float
    ratios: dict[str, float]  # library -> median ratio to plain, per repetition
    over_recipe: float | None  # ours / recipe
    above_recipe_us: float | None  # ours - recipe, per row


def summary(
    works: Sequence[Work],
    libraries: Sequence[str],
    cases: Sequence[Case],
    samples: dict[str, list[float]],
) -> list[SummaryRow]:
    """The user's table: every library against plain, and ours against the bare recipe.

    Each figure is the median over the repetitions of a quantity taken within one repetition
    (a ratio, or ours minus the recipe per row), as for the comparisons.
    """
    items = {case.key: case.items for case in cases}
    found = []
    for work in works:
        plain = samples.get(f"{work.what}.{PLAIN}")
        if not plain:
            continue
        n = items[f"{work.what}.{PLAIN}"]
        ratios = {}
        for library in libraries:
            times = samples.get(f"{work.what}.{library}")
            if times:
                ratios[library] = statistics.median(
                    t / p for t, p in zip(times, plain, strict=True)
                )
        ours, recipe = samples.get(f"{work.what}.{OURS}"), samples.get(f"{work.what}.{RECIPE}")
        over = above = None
        if ours and recipe:
            over = statistics.median(o / r for o, r in zip(ours, recipe, strict=True))
            above = statistics.median((o - r) / n * 1e6 for o, r in zip(ours, recipe, strict=True))
        found.append(SummaryRow(work, statistics.median(plain) / n * 1e6, ratios, over, above))
    return found


def render_summary(
    found: Sequence[SummaryRow], libraries: Sequence[str], *, markdown: bool
) -> list[str]:
    shown = [lib for lib in libraries if any(lib in row.ratios for row in found)]
    header = (
        "work",
        "plain µs/row",
        "plain",
        *shown,
        "ours / recipe",
        "ours - recipe µs/row",
    )
    table = [
        (
            row.work.label,
            f"{row.plain_us:.2f}",
            "1.00x",
            *(f"{row.ratios[lib]:.2f}x" if lib in row.ratios else "-" for lib in shown),
            "-" if row.over_recipe is None else f"{row.over_recipe:.2f}x",
            "-" if row.above_recipe_us is None else f"{row.above_recipe_us:+.2f}",
        )
        for row in found
    ]
    header = tuple("ours" if cell == OURS else cell for cell in header)
    if markdown:
        return [
            "| " + " | ".join(header) + " |",
            "|---|" + "---:|" * (len(header) - 1),
            *("| " + " | ".join(cells) + " |" for cells in table),
        ]
    widths = [max(len(cells[i]) for cells in (header, *table)) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()
        for cells in (header, *table)
    ]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(database: str, peers: Sequence[str]) -> list[str]:
    versions = ", ".join(f"{name} {_version(name)}" for name in ("Django", "cryptography", *peers))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"Machine: {os.cpu_count()} CPUs, {_cpu_model()}, {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}; {versions}",
        f"Database: {database}; load average at the end of the run: {load}",
    ]


_SECTIONS = {
    "codec": "Codec, 40-byte secret (per value)",
    "char": "EncryptedCharField vs CharField (per row)",
    "peers": "Peers on the same model and data (per row)",
    "client": "OAuth client row, 8 columns, 1 secret (per row)",
    "json": "JSONPathEncryptedField vs JSONField, connection options (per row)",
}
_HEADER = ("Comparison", "Ratio", "Spread", "Target", "", "µs subject / baseline")


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.comparison.label,
        f"{row.ratio:.2f}x",
        f"{row.low:.2f}-{row.high:.2f}",
        row.comparison.target.text if row.comparison.target else "",
        row.verdict,
        f"{row.subject_us:.2f} / {row.baseline_us:.2f}",
    )


def render(
    title: str,
    facts: Sequence[str],
    summary_lines: Sequence[str],
    found: Sequence[Row],
    notes: Sequence[str],
    *,
    markdown: bool,
) -> str:
    if summary_lines:
        what = (
            "Against plain (1.00x), and ours against the bare recipe "
            "(ratio, and µs per row above it)"
        )
        summary_block = ["", f"**{what}**" if markdown else what, "", *summary_lines]
    else:
        summary_block = []
    if markdown:
        lines = [f"### {title}", "", *(f"- {fact}" for fact in facts), *summary_block, ""]
        lines.append("**Comparisons and targets**")
        lines.append("")
        lines.append("| " + " | ".join(_HEADER) + " |")
        lines.append("|" + "|".join(["---", "---:", "---:", "---", "---", "---:"]) + "|")
        section = ""
        for row in found:
            if row.comparison.section != section:
                section = row.comparison.section
                lines.append(f"| **{_SECTIONS[section]}** | | | | | |")
            lines.append("| " + " | ".join(_cells(row)) + " |")
    else:
        lines = [title, *facts, *summary_block, "", "Comparisons and targets"]
        table = [_HEADER, *(_cells(row) for row in found)]
        widths = [max(len(cells[i]) for cells in table) for i in range(len(_HEADER))]
        section = ""
        for index, cells in enumerate(table):
            if index and found[index - 1].comparison.section != section:
                section = found[index - 1].comparison.section
                lines += ["", _SECTIONS[section]]
            elif not index:
                lines.append("")
            aligned = [
                cell.ljust(width) if i in (0, 3, 4) else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ]
            lines.append("  ".join(aligned).rstrip())
    if notes:
        lines.append("")
        lines += [f"- {note}" if markdown else note for note in notes]
    return "\n".join(lines)
