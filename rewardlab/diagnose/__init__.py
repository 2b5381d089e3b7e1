"""Consumers of the Scorer that diagnose a reward model: accuracy, noise, calibration, probes, reports."""
