"""Pure helpers of the GPU signal area: dcgm-exporter payload extraction, Kubernetes joins,
idle tracking, pricing.  No I/O here; `sources/gpu.py` fetches and `signals/gpu.py` derives."""
