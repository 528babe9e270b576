"""Data subjects' rights, retention and the audit trail (GDPR operations)."""
