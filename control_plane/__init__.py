"""Hoist control plane: decides what should run where.

`control_plane.api` holds the resource types shared with the data plane; everything else
here turns declared resources into running engines and loaded adapters, on Kubernetes
(kopf operators) or on one machine (`control_plane.local`).
"""
