"""Security services: the audit log of admin actions and encryption of secrets at rest."""
