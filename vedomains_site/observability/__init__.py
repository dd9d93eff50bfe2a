"""Running the control plane in production: logs, health, metrics, error reporting.

A Django app (label `observability`) so its management command and its `ready()` hooks
load with the project, and no part of it is imported by `domains` except the botocore
hooks and the log context, which import nothing from `domains`.
"""
