"""What runs inside an inference pod: the engine, its sidecar, and the engine simulator."""
