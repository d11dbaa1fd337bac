"""The isolated check runner.

`parent.py` (the grader's side) starts a worker process, sends it requests, enforces the limits
and compares results; `worker.py` (the child) loads the student's module and runs probes, nothing
else; `protocol.py` is the one message format between them; `probes.py` the trusted functions
that call student code; `guard.py` the forbidden-call detection (static scan and run-time guard).
"""
