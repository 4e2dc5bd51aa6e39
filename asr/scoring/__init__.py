"""Scoring: transcript readers, WER/CER with confidence intervals, comparisons, reports, asr
benchmark.
"""
