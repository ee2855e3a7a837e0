"""Fault-injection tests: real `crm` subprocesses killed with SIGKILL, concurrent writers.

The server launcher is shared with `scripts/soak.py` and `scripts/pg_restart_check.py`.
"""
