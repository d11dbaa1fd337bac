"""True/false quizzes on the course notes, with explanations and spaced revision.

One module per step: `bank` loads and validates `quizzes/*.yaml` into typed records, `scheduler`
decides when a statement is due again (Leitner boxes) and what a session asks, `session` runs the
terminal quiz, `stats` shows mastery, `results` writes a student's answers as JSON for the
instructor report and `export` writes the bank for Moodle and Anki; `grader.commands.quiz` is
the thin `grade quiz` command line over all of them.
Answers are kept by `grader.store`. Nothing here imports torch, so `grade quiz` starts at once.
"""
