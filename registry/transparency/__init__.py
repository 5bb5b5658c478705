"""The transparency log: an append-only RFC 6962 Merkle tree of issuances, corrections and status changes, its signed
checkpoints, and inclusion and consistency proofs."""
