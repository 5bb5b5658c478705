"""Talent Registry: issues and verifies professional-title and skill-level certificates."""
