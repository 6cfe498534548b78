"""Benchmarks: each runs with one command and reports ratios against a baseline measured in the same go."""
