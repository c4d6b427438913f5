"""The serving area's stored data: who a scraped target is and its recent engine snapshots.
`sources/serving.py` writes it, `signals/serving.py` derives the `ai_serving_*` gauges from it."""
