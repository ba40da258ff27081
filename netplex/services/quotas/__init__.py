"""Per-project quotas (Neutron's ``quotas`` and ``quota_details`` extensions)."""
