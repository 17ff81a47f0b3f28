"""The visible shape of a Keyward client secret, for every layer that must not store one."""

from __future__ import annotations

# Fixed prefix so secret scanners (GitHub, gitleaks, trufflehog) can match leaked secrets,
# and so our own logs can recognise a secret pasted where it does not belong.
SECRET_PREFIX = "kwsec_"  # noqa: S105 - a public prefix, not a secret
