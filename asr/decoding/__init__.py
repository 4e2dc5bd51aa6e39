"""Decoding: greedy and beam search (+ KenLM), the decoder registry, language models, word times,
LM-weight tuning.
"""
