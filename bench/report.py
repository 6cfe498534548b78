"""Figures from the runs: medians with min/max, ratios against the baseline, the stdout table."""
from __future__ import annotations

import statistics

BASELINE = "bare"
LABELS = {
    "bare": "(a) bare Scrapy spider",
    "crawl": "(b) portal-archive crawl",
    "revisit_conditional": "(c) revisit all, conditional",
    "revisit_unconditional": "(c) revisit all, unconditional",
}
FIGURES = ("pages_per_s", "cpu_s_per_1000_pages", "peak_rss_mib", "wall_s")


def label(run: str) -> str:
    name, _, backend = run.partition("@")
    return LABELS.get(name, name) + (f" [{backend}]" if backend else "")


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def outside_scrapy(sample: dict) -> float | None:
    """Seconds of the run's wall time outside Scrapy's own elapsed time (its start and stop: the
    interpreter, imports, opening the archive, the run's bookkeeping), None without Scrapy's figure."""
    elapsed = sample.get("scrapy_elapsed_s")
    return sample["wall_s"] - elapsed if elapsed else None


def summarise(samples: list[dict]) -> dict:
    summary = {figure: spread([s[figure] for s in samples]) for figure in FIGURES}
    outside = [outside_scrapy(s) for s in samples]
    if outside and None not in outside:
        summary["outside_scrapy_s"] = spread(outside)
    return summary


def paired_ratios(samples: dict[str, list[dict]], run: str) -> dict | None:
    """run / baseline per repeat (each pair measured back to back), then their spread.

    Speed: pages/s of the run over the baseline's (>= 1 is as fast or faster).
    CPU: CPU per page of the run over the baseline's (<= 1 is as cheap or cheaper).
    Speed in Scrapy: the same over Scrapy's own elapsed time, start and stop left out: where a
    difference in speed lives (a short crawl pays its start-up on fewer pages).
    """
    base = {s["repeat"]: s for s in samples.get(BASELINE, [])}
    pairs = [(s, base[s["repeat"]]) for s in samples.get(run, []) if s["repeat"] in base]
    if not pairs:
        return None
    ratios = {"speed": spread([s["pages_per_s"] / b["pages_per_s"] for s, b in pairs]),
              "cpu_per_page": spread([s["cpu_s_per_1000_pages"] / b["cpu_s_per_1000_pages"] for s, b in pairs])}
    if all(s.get("scrapy_elapsed_s") and b.get("scrapy_elapsed_s") for s, b in pairs):
        ratios["speed_in_scrapy"] = spread([s["pages"] / s["scrapy_elapsed_s"] / (b["pages"] / b["scrapy_elapsed_s"])
                                            for s, b in pairs])
    return ratios


def revisit_savings(samples: dict[str, list[dict]]) -> dict:
    """Full crawl wall time over each revisit's, per repeat (done-means: >= 5 for the conditional one)."""
    out = {}
    for run in samples:
        name, at, backend = run.partition("@")
        if not name.startswith("revisit_"):
            continue
        crawls = {s["repeat"]: s for s in samples.get("crawl" + at + backend, [])}
        pairs = [(crawls[s["repeat"]], s) for s in samples[run] if s["repeat"] in crawls]
        if pairs:
            out[run] = spread([c["wall_s"] / r["wall_s"] for c, r in pairs])
    return out


def _fmt(d: dict, digits: int) -> str:
    return f"{d['median']:.{digits}f} ({d['min']:.{digits}f}–{d['max']:.{digits}f})"


COLUMNS = ("articles", "run", "pages", "pages/s", "CPU s / 1,000 pages", "peak RSS MiB", "speed vs (a)",
           "CPU/page vs (a)", "crawl wall / this wall", "s outside Scrapy", "speed in Scrapy vs (a)")


def rows(results: dict):
    """One row of cells per size and run: what both the stdout table and the README's table show."""
    for size, entry in results["sizes"].items():
        for run, summary in entry.get("summary", {}).items():
            ratio = entry.get("ratios", {}).get(run)
            saving = entry.get("revisit_savings", {}).get(run)
            yield (f"{int(size):,}", label(run), f"{entry['runs'][run][-1]['pages']:,}",
                   _fmt(summary["pages_per_s"], 0), _fmt(summary["cpu_s_per_1000_pages"], 2),
                   f"{summary['peak_rss_mib']['median']:.0f}",
                   _fmt(ratio["speed"], 2) if ratio else "—", _fmt(ratio["cpu_per_page"], 2) if ratio else "—",
                   _fmt(saving, 1) if saving else "—",
                   _fmt(summary["outside_scrapy_s"], 2) if "outside_scrapy_s" in summary else "—",
                   _fmt(ratio["speed_in_scrapy"], 2) if ratio and "speed_in_scrapy" in ratio else "—")


def table(results: dict) -> str:
    widths = (8, 51, 6, 22, 20, 12, 18, 18, 22, 18, 22)
    line = lambda cells: "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    lines = [line(COLUMNS)]
    lines.append("-" * len(lines[0]))
    lines += [line(cells) for cells in rows(results)]
    for size, entry in results["sizes"].items():
        for key in sorted(k for k in entry if k.startswith("ground_truth")):
            backend = key.partition("@")[2]
            lines.append(f"{size:>8}  ground truth{f' [{backend}]' if backend else ''}: {entry[key]}")
    for note in results.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """The README's table."""
    align = ["---:", "---"] + ["---:"] * (len(COLUMNS) - 2)  # the run's name left, every figure right
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows(results)]
    return "\n".join(lines)
