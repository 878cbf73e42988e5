"""Operator commands besides the daemon and the client: ``procward service`` and ``procward init``'s template."""
