"""``make bench``: the cost of a rdv turn against a bare Starlette endpoint, in one run."""
