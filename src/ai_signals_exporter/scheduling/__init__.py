"""Scheduling area: why GPU pods wait, which nodes reject them, what disruptions cost.

Pure functions over small inputs (`model.py`); the kube source fills them from its records and
`derive.py` turns the aggregated state into samples of the families in `families.py`.
See docs/scheduling.md for the parser, the reason sets and the counting semantics.
"""
