"""The grading engine, one step per module, in the order a check goes through them:

- `spec`: the vocabulary of checks (Case, Check, Mistake), loading an exercise's checks and making
  their seeded cases;
- `oracles`: where expected values come from (live references, recordings, and the cache over
  either); `recording` makes and reads the recordings of the student edition;
- `session`: `GradingSession`, the one loop every front end grades through (worker, oracles,
  cache, tamper check);
- `judge`: one case's verdict, and which known mistake explains a failed check;
- `diagnose`: what kind of wrong a failed result is, and the pattern across a check's cases;
- `compare`: dtype-aware comparison of values and what differed;
- `results`: the typed results and their JSON form.
"""
