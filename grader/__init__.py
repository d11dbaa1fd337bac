"""cnn-grader: self-grading PyTorch exercises and true/false quizzes for learning CNNs.

The package is split into wings (see README, "Architecture"): the catalogue (`catalog`), the
hidden checks (`checks/`), the grading engine (`engine/`), the isolated runner (`runner/`), how
results are shown (`views/`), the self-study loop (`study/`), quizzes (`quiz/`), instructor tools
(`instructor/`), the progress store (`store`) and the click commands (`commands/`, loaded lazily
by `cli`). Nothing here imports torch at module level: `grade --help`, `grade list` and `grade
quiz` stay fast.
"""

__version__ = "0.1.0"
