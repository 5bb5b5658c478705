"""Holders: the people certificates are issued to, and the identity documents that identify them."""
