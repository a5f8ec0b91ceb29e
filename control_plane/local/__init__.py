"""The embedded default: the control plane's decisions applied to local processes."""
