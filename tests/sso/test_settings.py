"""SSO settings read from the environment (each case in a fresh interpreter)."""

from __future__ import annotations

from tests.ops.test_settings_env import _settings_in_subprocess

SSO_ENV = {
    "DEBUG": "1",
    "OIDC_OP_ISSUER": "https://idp.acme.example/",
    "OIDC_RP_CLIENT_ID": "dashboard",
    "OIDC_RP_CLIENT_SECRET": "s3cret",
    "OIDC_ROLE_MAP": "idp-ml-leads=ml-lead, idp-admins=staff",
}


def test_sso_is_off_without_issuer_and_client() -> None:
    result = _settings_in_subprocess({"DEBUG": "1"}, "s.OIDC_ENABLED, s.LOCAL_LOGIN_ENABLED, s.AUTHENTICATION_BACKENDS")
    assert result.stdout.strip() == (
        "False True ['axes.backends.AxesStandaloneBackend', 'registry_app.sso.backends.LocalPasswordBackend', "
        "'registry_app.sso.backends.SSOBackend']"
    )


def test_sso_settings_from_the_environment() -> None:
    result = _settings_in_subprocess(
        {**SSO_ENV, "LOCAL_LOGIN_ENABLED": "false"},
        "s.OIDC_ENABLED, s.OIDC_OP_ISSUER, s.OIDC_ROLE_MAP, s.LOCAL_LOGIN_ENABLED, s.OIDC_RP_SIGN_ALGO",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "True https://idp.acme.example {'idp-ml-leads': ('ml-lead',), 'idp-admins': ('staff',)} False RS256"
    )


def test_misconfigurations_stop_the_start() -> None:
    cases = [
        ({**SSO_ENV, "OIDC_ROLE_MAP": "idp-admins"}, "use idp-group=role"),
        ({**SSO_ENV, "OIDC_RP_CLIENT_SECRET": ""}, "OIDC_RP_CLIENT_SECRET must be set"),
        ({**SSO_ENV, "OIDC_RP_SIGN_ALGO": "none"}, "unsigned ID tokens"),
        ({"DEBUG": "1", "LOCAL_LOGIN_ENABLED": "false"}, "needs single sign-on"),
    ]
    for env, message in cases:
        result = _settings_in_subprocess(env, "s.OIDC_ENABLED")
        assert result.returncode != 0 and message in result.stderr, (env, result.stderr[-300:])
