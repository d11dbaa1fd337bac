"""How results are shown to a person: the terminal report (`terminal`)."""
