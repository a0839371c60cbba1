"""Every route of the URLconf with the GET parameters its view reads, and hypothesis strategies for them.

``ROUTES`` is declared (the forms a view validates, plus the parameters it reads raw); the tests
in test_fuzz_input.py fail when the URLconf has a route missing from it, or a view module reads a
``request.GET`` key no route declares. Admin changelists are derived from the admin site: the
search, ordering and paging parameters plus one parameter per ``list_filter`` and date hierarchy.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import strategies as st

from registry_app.audit.timeline import SOURCES
from registry_app.views import audit as audit_views
from registry_app.views import compare as compare_views
from registry_app.views import endpoints as endpoint_views
from registry_app.views import lineage as lineage_views
from registry_app.views import queue as queue_views
from registry_app.views import sync as sync_views
from registry_app.views.forms import GroupFilterForm

# Personas: who makes the requests (the site builds them; tests/views/test_fuzz_input.py).
ANON, VIEWER, COMPLIANCE, ADMIN = "anonymous", "viewer", "compliance", "admin"


@dataclass(frozen=True)
class Route:
    name: str
    forms: tuple[type[forms.Form], ...] = ()
    raw: tuple[str, ...] = ()  # parameters the view reads without a form
    personas: tuple[str, ...] = (VIEWER,)
    examples_per_param: int = 4
    # Valid values the edge sweep sends along (so a required parameter does not stop every request
    # at the form); "@x" stands for the site's real path argument x.
    base: tuple[tuple[str, str], ...] = ()

    @property
    def params(self) -> tuple[str, ...]:
        names = [name for form in self.forms for name in form.base_fields]
        return tuple(dict.fromkeys([*names, *self.raw]))

    def kinds(self) -> dict[str, str]:
        """Each parameter's kind, which picks its edge values: when, cursor, int, choice or text."""
        kinds = {}
        for form in self.forms:
            for name, form_field in form.base_fields.items():
                if isinstance(form_field, audit_views.WhenField):
                    kinds[name] = "when"
                elif isinstance(form_field, audit_views.CursorField):
                    kinds[name] = "cursor"
                elif isinstance(form_field, forms.IntegerField):
                    kinds[name] = "int"
                elif getattr(form_field, "choices", None):
                    kinds[name] = "choice"
                else:
                    kinds[name] = "text"
        return {name: kinds.get(name, "text") for name in self.params}

    def choices(self) -> dict[str, list[str]]:
        """Valid values per parameter, so examples also get past the first check to the next one."""
        valid: dict[str, list[str]] = {}
        for form in self.forms:
            for name, form_field in form.base_fields.items():
                options = [str(value) for value, _ in getattr(form_field, "choices", []) if value != ""]
                if options:
                    valid.setdefault(name, []).extend(options)
        return valid


AUDIT_TIMELINE = (audit_views.TimelineForm, audit_views.ExportForm)
SOURCE = ("source",)
ROUTES: dict[str, Route] = {
    route.name: route
    for route in [
        Route("healthz", personas=(ANON,)),
        Route("readyz", personas=(ANON, ADMIN)),
        Route("metrics", personas=(ANON,)),
        Route("login", raw=("next",), personas=(ANON,)),
        Route("logout", personas=(VIEWER,)),
        Route("password_change", personas=(VIEWER,)),
        Route("password_change_done", personas=(VIEWER,)),
        Route("password_reset", personas=(ANON,)),
        Route("password_reset_done", personas=(ANON,)),
        Route("password_reset_confirm", personas=(ANON,)),
        Route("password_reset_complete", personas=(ANON,)),
        Route("oidc_authentication_callback", raw=("code", "state", "error"), personas=(ANON,)),
        Route("oidc_authentication_init", raw=("next",), personas=(ANON,)),
        Route("oidc_logout", personas=(VIEWER,)),
        Route("registry:home"),
        # The deploy-gate API (session auth for a signed-in person; tests/api fuzz it with tokens too).
        Route("api-v1:api-root"),
        Route("api-v1:openapi-json"),
        Route("api-v1:groups", raw=("source", "limit", "cursor")),
        Route("api-v1:packages", raw=("source", "status", "since", "limit", "cursor")),
        Route("api-v1:package", raw=SOURCE),
        Route("api-v1:latest_approved", raw=SOURCE),
        Route("api-v1:check", raw=("arn",)),
        Route("registry:group_list", forms=(GroupFilterForm,)),
        Route("registry:group_detail", raw=SOURCE),
        Route("registry:group_compare", forms=(compare_views.CompareForm,), raw=SOURCE, base=(("versions", "1,2"),)),
        Route("registry:group_watch", raw=SOURCE),  # POST only: a GET is 405
        Route("registry:group_archive", raw=SOURCE, personas=(COMPLIANCE,)),
        Route("registry:package_detail", raw=(*SOURCE, "part")),
        Route("registry:signoff", raw=SOURCE),
        Route("registry:revoke", raw=SOURCE),
        Route("registry:policy_exception", raw=SOURCE),
        Route("registry:signoff_withdraw", raw=SOURCE),
        Route("registry:revalidation_signoff", raw=SOURCE),  # POST only: a GET is 405
        Route("registry:revalidation_start", raw=SOURCE),  # POST only: a GET is 405
        Route("registry:finding_raise", raw=SOURCE),  # POST only: a GET is 405
        Route("registry:finding_action"),  # POST only: a GET is 405
        Route("registry:push_retry"),
        Route("registry:queue", forms=(queue_views.QueueFilterForm,)),
        Route("registry:profile"),
        Route("registry:sync_status", personas=(ADMIN,)),
        Route("registry:sync_run", personas=(ADMIN,)),
        Route("registry:sync_run_status"),
        Route("registry:sync_run_list", forms=(sync_views.RunListForm,)),
        Route("registry:notifications_retry", personas=(ADMIN,)),  # POST only: a GET is 405
        Route("registry:package_audit", forms=AUDIT_TIMELINE, raw=SOURCE, personas=(VIEWER, COMPLIANCE)),
        Route("registry:package_audit_pack", raw=SOURCE, personas=(COMPLIANCE,)),
        Route("registry:group_audit", forms=AUDIT_TIMELINE, raw=SOURCE, personas=(VIEWER, COMPLIANCE)),
        Route("registry:endpoint_list", forms=(endpoint_views.EndpointListForm,)),
        Route("registry:endpoint_detail", forms=AUDIT_TIMELINE, personas=(VIEWER, COMPLIANCE)),
        Route("registry:audit_search", forms=(audit_views.SearchForm,), personas=(VIEWER, COMPLIANCE)),
        Route("registry:audit_bypasses", forms=(audit_views.BypassForm,), personas=(VIEWER, COMPLIANCE)),
        Route("registry:audit_period_pack", forms=(audit_views.PeriodForm,), personas=(COMPLIANCE,)),
        Route("registry:lineage", forms=(lineage_views.ImpactForm,)),
        Route(
            "registry:as_of",
            forms=(audit_views.AsOfForm,),
            personas=(VIEWER, COMPLIANCE),
            base=(("endpoint", "@name"), ("at", "2025-01-01")),
        ),
    ]
}


# --------------------------------------------------------------------------------------------- the URLconf


def url_patterns() -> dict[str, URLPattern]:
    """Every named route (the first of a name wins, as ``reverse`` picks it), admin's apart."""
    found: dict[str, URLPattern] = {}

    def walk(patterns: list[Any], namespace: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else entry.namespace
                walk(entry.url_patterns, inner or namespace)
            elif entry.name:
                found.setdefault(f"{namespace}:{entry.name}" if namespace else entry.name, entry)

    walk(get_resolver().url_patterns, "")
    return {name: pattern for name, pattern in found.items() if not name.startswith("admin:")}


@dataclass(frozen=True)
class AdminRoute:
    url_name: str
    params: tuple[str, ...] = field(default=())


def admin_changelists() -> list[AdminRoute]:
    routes = []
    for model, model_admin in admin.site._registry.items():
        params = ["q", "o", "p", "e", "all", "_to_field", "_popup"]
        for entry in model_admin.list_filter:
            if isinstance(entry, str):
                params += [
                    f"{entry}__exact",
                    f"{entry}__isnull",
                    f"{entry}__id__exact",
                    f"{entry}__gte",
                    f"{entry}__lt",
                ]
            elif getattr(entry, "parameter_name", None):
                params.append(entry.parameter_name)
        if model_admin.date_hierarchy:
            params += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
        url_name = f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
        routes.append(AdminRoute(url_name, tuple(params)))
    return routes


# --------------------------------------------------------------------------------------------- values

_OFFSETS = st.integers(min_value=-1439, max_value=1439).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
_MOMENTS = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59), timezones=_OFFSETS
)
_EDGE_MOMENTS = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(1, 1, 2), timezones=_OFFSETS
) | st.datetimes(
    min_value=dt.datetime(9999, 12, 30), max_value=dt.datetime(9999, 12, 31, 23, 59, 59), timezones=_OFFSETS
)
ISO_TEXT = st.one_of(
    _MOMENTS.map(lambda moment: moment.isoformat()),
    _EDGE_MOMENTS.map(lambda moment: moment.isoformat()),
    st.dates().map(lambda day: day.isoformat()),
    _MOMENTS.map(lambda moment: moment.strftime("%Y-%m-%dT%H:%MZ")),
)


def cursor(at: str, source: str, ident: str) -> str:
    return base64.urlsafe_b64encode(f"{at}|{source}|{ident}".encode("utf-8", "surrogatepass")).decode().rstrip("=")


CURSOR_SOURCES = [*SOURCES, "outside", "", "x", "AUDIT", "push.sent\x00"]
CURSORS = st.builds(
    cursor,
    st.one_of(ISO_TEXT, st.text(max_size=30)),
    st.one_of(st.sampled_from(CURSOR_SOURCES), st.text(max_size=12)),
    st.one_of(
        st.integers(min_value=-(10**25), max_value=10**25).map(lambda n: f"{n:020d}"),
        st.uuids().map(lambda u: u.hex),
        st.text(max_size=40),
    ),
)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)

# Values each kind of parameter must survive: every one is also sent alone to every parameter of its kind.
_WHEN = "2025-01-01T00:00:00+00:00"
_ONE = "00000000000000000001"
_HEX = "0123456789abcdef0123456789abcdef"
EDGES: dict[str, tuple[str, ...]] = {
    "when": (
        "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01", "9999-12-31", "1899-12-31T23:59:59Z",
        "9000-01-01T00:00:01Z", "2025-02-30", "2025-01-01T00:00:00+24:00", "2025-01-01T25:00", "+002025-01-01",
        "20250101T000000", "2025-W01-1", "1e309", "\u0662\u0660\u0662\u0665-\u0660\u0661-\u0660\u0661",
    ),
    "cursor": (
        "MjAyNS0wMS0wMVQwMDowMDowMCswMDowMHxhdWRpdHwnJycnJycnJycn",  # the probe's, ident: ten quotes
        cursor("0001-01-01T00:00:00+00:00", "audit", _ONE), cursor("0001-01-01T00:00:00+01:00", "audit", _ONE),
        cursor("9999-12-31T23:59:59.999999+00:00", "observation", _ONE), cursor(_WHEN, "audit", "9" * 20),
        cursor(_WHEN, "audit", _HEX), cursor(_WHEN, "push.sent", _ONE), cursor(_WHEN, "push.sent", _HEX),
        cursor(_WHEN, "outside", _ONE), cursor(_WHEN, "outside", _HEX), cursor(_WHEN, "outside", "9" * 20),
        cursor(_WHEN, "nosuchsource", _ONE),
        cursor("2025-01-01T00:00:00", "audit", _ONE),
        cursor(_WHEN, "audit", "-" + _ONE[1:]), cursor(_WHEN, "audit", "\u0663"), "=", "!!!!", "A" * 399, "A" * 401,
    ),
    "int": ("0", "-1", "1000001", "9" * 30, "1e3", "NaN", " 1", "\u0661"),
    "choice": ("BOGUS", "\u0130", "json ", "JSON"),
    "text": ("' OR 1=1 --", "\u202e", "%", "\\", "\n", "\u00e9" * 3000),
}  # fmt: skip
COMMON_EDGES = ("", " ", "\x00", "a\x00b", "x" * 5000, "\U0001f600")
_KIND_VALUES = {
    "when": ISO_TEXT,
    "cursor": CURSORS,
    "int": st.integers(min_value=-(10**30), max_value=10**30).map(str),
    "choice": TEXT,
    "text": TEXT,
}


def edges(kind: str) -> tuple[str, ...]:
    return EDGES[kind] + COMMON_EDGES


def value_strategy(kind: str, valid: list[str]) -> st.SearchStrategy[str]:
    options = [st.sampled_from(edges(kind)), _KIND_VALUES[kind], TEXT]
    if valid:
        options.append(st.sampled_from(valid))
    return st.one_of(options)


def query_strategy(
    params: tuple[str, ...], kinds: dict[str, str], valid: dict[str, list[str]]
) -> st.SearchStrategy[dict[str, list[str]]]:
    """Any subset of the parameters (plus an unknown one), each once or repeated, with any values."""
    per_param = {
        name: st.lists(value_strategy(kinds.get(name, "text"), valid.get(name, [])), min_size=1, max_size=2)
        for name in params
    }
    return st.fixed_dictionaries({}, optional={**per_param, "zz": st.lists(TEXT, min_size=1, max_size=1)})


HEADERS = st.sampled_from([{}, {}, {"HX-Request": "true"}, {"Accept": "application/json"}])


def path_strategy(pattern: URLPattern, real: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The route's path arguments: mostly the site's real objects (so the view reaches its parameters),
    sometimes anything the converter matches."""
    fuzz: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
        "StringConverter": lambda: st.text(
            st.characters(exclude_categories=("Cs",), exclude_characters="/"), min_size=1
        ),
        "IntConverter": lambda: st.integers(min_value=0, max_value=10**25),
        "UUIDConverter": st.uuids,
        "SlugConverter": lambda: st.from_regex(r"[-a-zA-Z0-9_]+", fullmatch=True),
        "PathConverter": lambda: st.text(st.characters(exclude_categories=("Cs",)), min_size=1),
    }
    arguments = {}
    for name, converter in pattern.pattern.converters.items():
        options = [fuzz[type(converter).__name__]()]
        if name in real:
            options = [st.just(real[name]), st.just(real[name]), *options]
        arguments[name] = st.one_of(options)
    return st.fixed_dictionaries(arguments)
