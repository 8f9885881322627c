"""REST API for tokens, service accounts, permissions and the audit log."""
