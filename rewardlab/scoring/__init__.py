"""The one inference path (Scorer) and what reads its scores: evaluation, metrics, ensembles, files."""
