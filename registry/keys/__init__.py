"""Keys: the master-key hierarchy, signing keys of the registry and of evaluation bodies, and the JWKS."""
