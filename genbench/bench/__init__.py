"""Bench harness and leaderboards."""

from genbench.bench.harness import BenchResult, run_bench, run_fit
from genbench.bench.leaderboard import render_leaderboards, render_table
from genbench.results import append_row, read_rows

__all__ = ["BenchResult", "append_row", "read_rows", "render_leaderboards", "render_table", "run_bench", "run_fit"]
