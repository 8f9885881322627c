"""Users, teams, service accounts, API tokens and per-object permissions (Spinnaker's Fiat)."""
