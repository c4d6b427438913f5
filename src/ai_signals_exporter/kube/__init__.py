"""The Kubernetes object store's typed records (`model`).  The I/O (reflector, per-resource
stores) lives in `sources/kube.py` and `sources/kube_stores.py`; trimming raw JSON into these
records in `sources/kube_objects.py`."""
