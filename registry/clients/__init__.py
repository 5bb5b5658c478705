"""API clients (admin, evaluation body, partner agency) and the access tokens they obtain."""
