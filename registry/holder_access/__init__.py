"""What holders do for themselves: sign in with an identity document and a claim code (throttled) or with an external
identity provider's token, and get a holder token for their own certificates."""
