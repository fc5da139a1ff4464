"""Experiments that are grids of runs: ablations, head sweeps, model comparisons.

Each module has a ``plan`` that turns command-line choices into validated grid cells (every
recipe checked before any training) and a ``tables`` that turns a finished ``GridRun`` into
tables in the paper's layout. Planning never trains; tabling only reads result.json files.
``sizing`` counts a plan's cells and estimates their time before any training;
``merbench.api`` ties plan, sizing, runner and tables together for the CLI and for Python.
"""
