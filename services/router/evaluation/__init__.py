"""Offline evaluation of the router's automatic model choice (``switchyard routing eval``).

Public evaluation sets are loaded (``datasets``), the decision is run over every prompt and
timed (``run``), scored by hand-written metrics (``metrics``) and printed (``report``).
"""
