"""How results are shown to a person: the terminal report (`terminal`), the pictures of failing
cases (`pictures`) and the HTML of a result (`html`)."""
