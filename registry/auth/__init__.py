"""Who is calling: API clients and their secrets, roles and scopes, principals, the registry's own tokens (access and
holder), claim codes, and fetching other parties' signing keys (an identity provider's, later a peer node's)."""
