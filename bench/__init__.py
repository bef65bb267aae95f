"""Benchmarks: each prints one result line and writes JSON under bench/results/."""
