"""Issuers: the evaluation bodies that award certificates, identified by their unified social credit code."""
