"""Checkpoint stores: what a listing says about the last *complete* checkpoint.

`model` holds the plain data (a listing of one store, the verdict about it), `layouts` the pure
per-framework rules that turn a listing into a verdict, `stores` the I/O that produces listings
from local disk or object storage.  See docs/checkpoints.md for the rules and their sources.
"""

from .layouts import LAYOUTS, detect, plan_reads
from .model import Entry, Listing, Verdict, learned_interval

__all__ = ["LAYOUTS", "Entry", "Listing", "Verdict", "detect", "learned_interval", "plan_reads"]
