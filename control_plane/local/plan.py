"""Which processes the embedded default runs for a set of declarations (pure)."""
