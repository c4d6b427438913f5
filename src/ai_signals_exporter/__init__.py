"""ai-signals-exporter: derived Prometheus signals for AI workloads on Kubernetes."""

__version__ = "0.1.0"
