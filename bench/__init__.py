"""Load benchmark of the call-control API: `python -m bench.run` (see bench/run.py)."""
