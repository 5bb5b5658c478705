"""Registering API clients: admin, evaluation body (issuer) and partner agency."""
