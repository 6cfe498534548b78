"""`python -m bench`: the crawl throughput bench (bench/harness.py)."""
from bench.harness import main

main()
