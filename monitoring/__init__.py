"""Hoist's monitoring: the metric catalogue, Grafana dashboards (generated) and Prometheus rules.

`python -m monitoring.generate` writes `monitoring/dashboards/*.json` and the Kubernetes
copies in `k8s/monitoring/`; tests fail when the files and the generator disagree.
"""
