"""Notifications: e-mails that link people to the review page, sent once per (package, kind, key).

``enqueue`` schedules them after commit; ``emails`` (the four notifications, run by the tasks) picks
the ``recipients`` and sends through ``delivery`` (the ``Notification`` rows and SMTP); ``profile``
stores each user's choices and watched groups, which ``selectors`` reads for the pages.
"""
