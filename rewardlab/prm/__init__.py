"""Process reward models: step objectives, step metrics, best-of-N over step scores."""
