"""Authentication of virtual keys (and, with the tenants issue, budgets and rate limits)."""
