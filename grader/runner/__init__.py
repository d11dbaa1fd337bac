"""The isolated runner: isolation only, no grading.

`handle.py` (the grader's side, `WorkerProcess`) starts a worker, sends it requests and enforces
the limits; `zygote.py` forks fresh workers from a process that imported torch once;
`hygiene.py` keeps track of processes and sweeps strays; `worker.py` (the child, `WorkerLoop`)
loads the student's module and runs probes, nothing else, inside the least-privilege sandbox of
`sandbox.py` (Landlock, or an unprivileged user); `protocol.py` is the one frame format between
them; `probes.py` the trusted functions that call student code; `guard.py` the forbidden-call
detection (static scan and run-time guard), with `decompositions.py` for torch's own Python
implementations of the operators it refuses.
"""
