"""Review: policies, sign-offs, decisions and the push of a decision to the registry.

``policy`` is the pure policy engine, ``policies`` loads policy rows and computes the reviewed
fingerprint, ``signoffs`` / ``decisions`` write, ``push`` delivers the outbox, ``queue`` and
``panel`` read for the pages, ``on_sync`` reacts to what the mirror observed.
"""
