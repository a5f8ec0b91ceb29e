"""Helpers shared by the test tiers: builders of real artefacts and process fixtures."""
