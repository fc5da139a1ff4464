"""``merbench tune``: the same tuning budget for every model, chosen on validation only, on Optuna.

Modules: ``space`` (search space files: reading and checking, no optuna), ``study`` (the
Optuna study: storage, samplers, pruner, the ask / train / tell loop), ``worker`` (trains one
trial in whatever process the runner chose, reporting each epoch to the pruner, the test split
withheld), ``tune`` (the command: plan, sizing, best.yaml, tune.json, figures, final seeds).
Optuna (``pip install merbench[tune]``) is imported only here, and only when a study runs.
"""
