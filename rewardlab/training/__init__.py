"""Training a reward model: set-up (run.py), the one loop (loop.py), objectives, checkpoints, ensembles."""
