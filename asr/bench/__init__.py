"""Benchmarks that print figures (python -m asr.bench.train, .decode, .long, .score); none of them
is a test.
"""
