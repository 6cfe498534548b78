"""The README's table from result files of `python -m bench.scale`, one column per run.

    .venv/bin/python -m bench.scale.table bench/results/scale-*.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def column(result: dict) -> str:
    return f"{result['articles']:,} / {result['versions']:,} {result['backend']}"


def rows(results: list[dict]) -> list[list[str]]:
    names: list[str] = []
    for r in results:
        names += [n for n in r.get("web", {}).get("endpoints", {}) if n not in names]
    out = []
    for name in names:
        cells = []
        for r in results:
            e = r.get("web", {}).get("endpoints", {}).get(name)
            cells.append(f"{e['p50_ms']:.1f} / {e['p95_ms']:.1f}" + ("" if r["targets"][name]["met"] else " ✗")
                         if e else "")
        limit = next((r["targets"][name]["limit_ms"] for r in results if name in r.get("targets", {})), "")
        out.append([name, *cells, f"≤ {limit}"])

    def figure(get, fmt="{:,}"):
        cells = []
        for r in results:
            try:
                value = get(r)
            except (KeyError, TypeError):
                value = None
            cells.append("" if value is None else fmt.format(value))
        return cells

    out += [
        ["build, versions/s", *figure(lambda r: r["build"]["versions_per_s"]), ""],
        ["export --all-versions, versions/s", *figure(lambda r: r["export"]["versions_per_s"]), "≥ 5,000"],
        ["verify, s", *figure(lambda r: r["verify"]["seconds"]), "< 600"],
        ["database on disk, MB", *figure(lambda r: r["size_mb"]), ""],
        ["web server peak RSS, MB", *figure(lambda r: r["web"]["server_peak_rss_mb"]), "flat"],
        ["crawl's writer peak RSS, MB", *figure(lambda r: r["writer"]["writer_peak_rss_mb"]), "flat"],
        ["crawl process peak RSS, MB", *figure(lambda r: r["writer"]["crawl_peak_rss_mb"]), ""],
        ["migrations 0005 → head, s", *figure(lambda r: r["migrations"]["upgrade_0005_to_head_s"]), ""],
        ["search = substring scan (queries differing)",
         *figure(lambda r: f"{len(r['check']['differences'])} of {r['check']['queries']}", "{}"), "0"],
    ]
    return out


def markdown(results: list[dict]) -> str:
    head = ["p50 / p95 ms (✗: target missed)", *map(column, results), "target p95"]
    lines = ["| " + " | ".join(head) + " |", "| --- | " + " | ".join("---:" for _ in results) + " | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    print(markdown([json.loads(Path(p).read_text()) for p in paths]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
