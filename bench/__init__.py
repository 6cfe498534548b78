"""Benchmarks: each runs with one command and reports ratios against a baseline measured in the same go."""

# The product's defaults are polite, for the live portal (one request at a time, a second apart, a
# daily request budget). A benchmark measures the archive, not the politeness: every crawl it runs
# against the replica on 127.0.0.1 gets these fast settings, explicitly (the bare Scrapy baseline
# runs at the same 32 requests at a time).
FAST_ENV = {"PORTAL_ARCHIVE_CONCURRENT_REQUESTS": "32", "PORTAL_ARCHIVE_DOWNLOAD_DELAY": "0",
            "PORTAL_ARCHIVE_REQUESTS_PER_DAY": "0"}


def compile_checkout() -> bool:
    """Compile the checkout's modules to bytecode, as installing the project does (pip compiles what
    it installs, as it did Scrapy and everything else the bare spider imports); whether all compiled.
    From a checkout run with PYTHONDONTWRITEBYTECODE set (CI, the build machine), each of a crawl's
    three processes would otherwise compile them again on every run: about 0.35 s of a
    5,000-article crawl's 8.6 s (2026-12-07). Left alone: the virtualenv (pip compiled it), git's
    files and what runs leave behind. `make bytecode` and the crawl bench (bench/harness.py) call it."""
    import compileall
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    skipped = re.compile(re.escape(str(root)) + r"/(\.venv|\.git|var|test-output)(/|$)")
    return bool(compileall.compile_dir(root, quiet=1, rx=skipped))
