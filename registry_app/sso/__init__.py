"""Single sign-on (OpenID Connect through mozilla-django-oidc) and the local-login switch.

``roles`` is pure (claims and the role map to roles), ``discovery`` finds the provider's
endpoints, ``services`` writes (users, roles, audit), ``backends`` and ``views`` plug into Django.
Nothing is imported here, so ``governance/settings.py`` can import ``roles`` before apps load.
"""
