"""Public verification: look-up by the QR code's token or by number + holder name, the judgement (status, expiry,
filed scope on the award date, key validity, record seal / signature), the public (masked) answer, the per-process
caches and the driver read pool behind the registry's hottest path."""
