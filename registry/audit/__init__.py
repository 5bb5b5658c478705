"""The audit log: append-only, hash-chained records of every issuance, admin change and personal-data access."""
