"""Generative judges behind the Scorer interface: a local causal LM or an OpenAI-compatible endpoint
asked to rate a response (pointwise) or pick one of two (pairwise), with prompt templates as files and
a content-hash result cache (docs/judge.md).

config.py (JudgeConfig, judge.json, `is_judge`), templates.py (template files), ratings.py (the
arithmetic and parse rules), local.py and endpoint.py (backends), cache.py, scorer.py (JudgeScorer).
"""
