"""Runs: one training run's config, folder, trainer and callbacks, learning curve, sampling, tracking and
provenance — what a bench run, a fit and a task table's model share, with no knowledge of rows or tables."""
