"""The autoscaler: a pure scaling algorithm and the shells that apply it."""
