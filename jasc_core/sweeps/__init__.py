"""Sweeps and tuning: many ``jasc run``\\ s of one recipe, on a launcher (local processes, Ray, Slurm).

A layer of its own above ``training`` (it starts runs) and below ``cli`` (the only thing that imports it):
``plan`` (what runs), ``launchers`` (where), ``sweep`` and ``summary`` (``jasc sweep``: grid x seeds, mean ± std),
``study``, ``tune``, ``tune_report`` and ``trial`` (``jasc tune``: Optuna search with pruning through the run hooks).
"""
