"""cnn-grader: self-grading PyTorch exercises and true/false quizzes for learning CNNs.

The package is split by concern (see README, "Architecture"): the catalogue (`catalog`), the hidden
checks (`checks/`), the isolated runner (`runner/`), tensor comparison (`compare`), result records
(`results`), quizzes (`quiz/`), the progress store (`store`) and reports (`report/`).
Nothing here imports torch at module level: `grade --help`, `grade list` and `grade quiz` stay fast.
"""

__version__ = "0.1.0"
