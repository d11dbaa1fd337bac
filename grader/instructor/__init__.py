"""Instructor tools: batch grading, the HTML class report, exports, Gradescope and the student edition.

One step per module: `submissions` (finding and unpacking), `batch` and `agent` (grading a class),
`classdata` (the per-student results), `analysis` (the numbers), `report` (the HTML report, templates in
`templates/`), `exports` (CSV, JUnit XML, Gradescope), `gradescope` (the Gradescope zip) and
`release` (the student edition). The click commands are in `grader.commands.instructor`.
"""
