"""The `hoist up` fixtures (a stack of stand-in children, and one running), defined in
test_hoist_up.py, for every test of the supervisor here."""

from tests.integration.control_plane.local.test_hoist_up import running, stack

__all__ = ["running", "stack"]
