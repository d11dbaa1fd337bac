"""The grading engine: the vocabulary of checks (`spec`), where expected values come from
(`oracles`, `recording`), the comparison (`compare`), the loop that grades one exercise
(`session`) and the typed results it returns (`results`)."""
