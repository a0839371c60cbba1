"""Notifications: e-mails that link people to the review page, sent once per (package, kind, key)."""
