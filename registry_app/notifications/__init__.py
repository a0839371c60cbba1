"""Notifications that are never lost and never a flood: e-mail, Slack, Microsoft Teams and signed webhooks.

``enqueue`` is called inside the transaction of an event (a decision, a conflict, a package found pending):
``emails`` picks who hears of it (``recipients``) and what it says, ``outbox`` writes the rows there, with
when each may go (batches, daily digests, the first sync of a source). ``sender`` (the worker, and the beat
sweep) claims what is due per person or endpoint and sends one message per claim: ``delivery`` (e-mail,
``items`` for the words), ``webhook_formats`` and ``webhooks`` (Slack, Teams, signed JSON). ``profile``
stores each user's choices and watched groups, which ``selectors`` reads for the pages; ``mail_files`` is
the one-``.eml``-per-message backend.
"""
