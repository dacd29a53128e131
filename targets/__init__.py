"""Targets: where an artifact runs and is measured (host, SSH boards, Android, Coral)."""
