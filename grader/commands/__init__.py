"""The click commands of `grade`, thin layers over the library: `exercise` (list, exercise, all),
`study` (init, reset, hint, watch, progress, solution), `quiz` and `instructor` (batch, report,
gradescope-autograder, release). `grader.cli` loads each module only when its command runs."""
