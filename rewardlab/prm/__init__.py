"""Process reward models: the step and outcome training objectives (objective.py), step metrics and
aggregation (evaluate.py), best-of-N over step scores (best_of_n.py).

The step data lives with the other data (rewardlab.data.steps: formats; rewardlab.data.gsm8k: error
injection; rewardlab.data.step_encoding: the step marker and batches), since `Scorer.score_steps` reads
it below this package; the losses are `losses.step_bce` / `losses.outcome_bce`.
"""
