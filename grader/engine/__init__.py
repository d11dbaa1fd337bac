"""The grading engine: the vocabulary of checks (`spec`), where expected values come from
(`oracles`, `recording`), the comparison (`compare`) and what kind of wrong a failure is
(`diagnose`), the loop that grades one exercise (`session`) and the typed results it returns
(`results`)."""
