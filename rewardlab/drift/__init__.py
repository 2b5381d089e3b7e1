"""Monitoring a deployed reward model: score and representation drift, selection for annotation."""
