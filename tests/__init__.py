"""Talent Registry tests."""
