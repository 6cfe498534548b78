"""Benchmarks: each runs with one command and reports ratios against a baseline measured in the same go."""

# The product's defaults are polite, for the live portal (one request at a time, a second apart, a
# daily request budget). A benchmark measures the archive, not the politeness: every crawl it runs
# against the replica on 127.0.0.1 gets these fast settings, explicitly (the bare Scrapy baseline
# runs at the same 32 requests at a time).
FAST_ENV = {"PORTAL_ARCHIVE_CONCURRENT_REQUESTS": "32", "PORTAL_ARCHIVE_DOWNLOAD_DELAY": "0",
            "PORTAL_ARCHIVE_REQUESTS_PER_DAY": "0"}
