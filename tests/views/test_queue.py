"""The review queue: what waits for me, all pending, recently decided; filters, SLA, paging, nav counts, queries.

The pending tabs read the stored review state; the builders of ``test_review_support`` refresh it
as the services and the sync do, and a test that edits rows by hand refreshes it itself.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry_app.models import ApprovalPolicy, Decision, ModelPackage, PushOutbox, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.review.queue import PAGE_SIZE, QueueFilters, queue_counts, queue_for_user, queue_page
from registry_app.review.queue_state import review_state_refresh
from tests.factories import ModelPackageGroupFactory, user_context
from tests.views.test_review_support import (
    XSS,
    ago,
    client_for,
    failed_push,
    make_user,
    package_in_state,
    persona_user,
    signoff_row,
)

pytestmark = pytest.mark.django_db

QUEUE = "/queue/"


def queue_html(user: Any, query: str = "", **headers: str) -> str:
    response = client_for(user).get(QUEUE + query, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def listed(body: str) -> list[str]:
    """``group/vN`` of every row of the queue list, in order."""
    return [f"{g}/v{v}" for g, v in re.findall(r'href="/packages/([^/]+)/(\d+)/\?source=[^"#]*(?:#review)?"', body)]


def pending(version: int, *, group: str = "credit-risk", hours: float = 10, **fields: Any) -> ModelPackage:
    return package_in_state("pending", group_name=group, version=version, created_at=ago(hours=hours), **fields)


# --------------------------------------------------------------------------------------------- my queue


def test_my_queue_lists_what_needs_my_role_oldest_first() -> None:
    mlead, fair = persona_user("mlead"), persona_user("fair")
    newest = pending(1, hours=1)
    oldest = pending(2, hours=50)
    middle = pending(3, hours=20)
    signoff_row(middle, fair, "fairness")  # another role signed: ml-lead still missing
    done = pending(4, hours=30)
    signoff_row(done, make_user("other-lead", "ml-lead"), "ml-lead")  # my role is complete
    mine = pending(5, hours=40)
    signoff_row(mine, mlead, "ml-lead")  # I signed already
    package_in_state("approved", version=6)
    package_in_state("rejected", version=7)
    package_in_state("deleted", group_name="gone", version=1)

    items = queue_for_user(mlead)

    assert [i.package_id for i in items] == [oldest.pk, middle.pk, newest.pk]
    assert items[1].missing_roles == ["ml-lead", "compliance"]
    assert all(i.signable_roles == ["ml-lead"] for i in items)
    assert listed(queue_html(mlead)) == ["credit-risk/v2", "credit-risk/v3", "credit-risk/v1"]


def test_a_stale_signoff_puts_the_package_back_in_my_queue() -> None:
    mlead = persona_user("mlead")
    marked = pending(1)
    signoff_row(marked, mlead, "ml-lead", stale_at=ago(minutes=5))
    changed = pending(2)
    SignOff.objects.filter(pk=signoff_row(changed, mlead, "ml-lead").pk).update(fingerprint="f" * 64)
    review_state_refresh([changed.pk])  # the row was edited by hand
    current = pending(3)
    signoff_row(current, mlead, "ml-lead")

    assert {i.package_id for i in queue_for_user(mlead)} == {marked.pk, changed.pk}


def test_separation_of_duties_and_registrants_are_respected() -> None:
    user = make_user("dual", "ml-lead", "fairness")
    signed_other_role = pending(1)
    signoff_row(signed_other_role, user, "fairness")
    registered = pending(2, created_by=user_context("dual"))
    open_both = pending(3)

    items = queue_for_user(user)

    assert [i.package_id for i in items] == [open_both.pk]
    assert items[0].signable_roles == ["ml-lead", "fairness"]
    assert queue_counts(user) == {"ml-lead": 1, "fairness": 1}
    assert registered.pk not in {i.package_id for i in items}


def test_decided_but_not_yet_pushed_packages_wait_for_nobody() -> None:
    mlead = persona_user("mlead")
    rejected_here = pending(1)
    decision = Decision.objects.create(package=rejected_here, kind="rejection", status=ApprovalStatus.REJECTED)
    PushOutbox.objects.create(
        package=rejected_here,
        decision=decision,
        kind=PushOutbox.Kind.DECISION,
        target_status=ApprovalStatus.REJECTED,
        expected_status=ApprovalStatus.PENDING,
    )
    signoff_row(rejected_here, persona_user("fair"), "fairness", decision="reject", comment="no")  # refreshes

    assert queue_for_user(mlead) == []
    [item] = queue_for_user(mlead, tab="all")
    assert item.outcome == ApprovalStatus.REJECTED
    assert "Decided — pushing" in queue_html(mlead, "?tab=all")  # the one status replaced "Rejected, awaiting push"


def test_viewers_and_people_without_roles_have_an_empty_queue() -> None:
    pending(1)
    for name in ("viewer", "nobody", "staff"):
        user = persona_user(name)
        assert queue_for_user(user) == []
        assert queue_counts(user) == {}
        body = queue_html(user)
        assert "You hold no sign-off role" in body
        assert 'class="nav-role"' not in body


# --------------------------------------------------------------------------------------------- SLA and filters


def test_sla_badges_follow_the_group_policy() -> None:
    ApprovalPolicy.objects.create(name="fast", group_name="fast-track", spec={"name": "fast", "sla_hours": 10})
    pending(1, hours=2)  # default 72 h: ok
    pending(2, hours=60)  # 60/72 >= 75%: due soon
    pending(3, hours=80)  # overdue
    pending(1, group="fast-track", hours=8)  # 8/10: due soon under the group's 10 h SLA
    mlead = persona_user("mlead")

    by_key = {f"{i.group_name}/v{i.version}": (i.sla, i.sla_hours) for i in queue_for_user(mlead)}

    assert by_key == {
        "credit-risk/v1": ("ok", 72),
        "credit-risk/v2": ("due_soon", 72),
        "credit-risk/v3": ("overdue", 72),
        "fast-track/v1": ("due_soon", 10),
    }
    body = queue_html(mlead)
    assert body.count('<span class="badge sla-badge sla-overdue" title="Review SLA 72 h">Overdue</span>') == 1
    assert body.count(">Due soon</span>") == 2
    assert body.count('sla-ok" title="Review SLA 72 h">OK</span>') == 1
    assert "3.3 d" in body  # the age of the overdue one


def test_filters_by_group_and_group_tag() -> None:
    pending(1, group="credit-risk", hours=30)  # tagged RiskTier=High by package_in_state
    ModelPackageGroupFactory(source=ModelPackage.objects.get().source, name="churn", tags={"RiskTier": "Low"})
    pending(1, group="churn", hours=20)
    ModelPackageGroupFactory(source=ModelPackage.objects.first().source, name="fraud", tags={"team": "x"})
    pending(1, group="fraud", hours=10)
    mlead = persona_user("mlead")

    assert listed(queue_html(mlead, "?group=churn")) == ["churn/v1"]
    assert listed(queue_html(mlead, "?tag=RiskTier:High")) == ["credit-risk/v1"]
    assert listed(queue_html(mlead, "?tag=RiskTier")) == ["credit-risk/v1", "churn/v1"]
    assert listed(queue_html(mlead, "?tab=all&tag=RiskTier:Low&group=churn")) == ["churn/v1"]
    assert listed(queue_html(mlead, "?tag=RiskTier:Medium")) == []
    assert "Nothing waits for your sign-off for these filters." in queue_html(mlead, "?tag=RiskTier:Medium")
    # Junk input is refused with a 400 naming each field.
    refused = client_for(mlead).get(QUEUE + "?tab=bogus&group=" + "x" * 500)
    assert refused.status_code == 400
    assert {"tab", "group"} <= set(refused.context["errors"])


def test_filters_by_missing_role_sla_and_registrant() -> None:
    mlead, fair = persona_user("mlead"), persona_user("fair")
    fresh = pending(1, hours=2)
    soon = pending(2, hours=60)
    signoff_row(soon, fair, "fairness")
    late = pending(3, hours=80, created_by=user_context("mlead"))  # mlead registered it

    def keys(**filters: Any) -> list[int]:
        return [i.package_id for i in queue_page(mlead, tab="all", filters=QueueFilters(**filters)).items]

    assert keys(role="fairness") == [late.pk, fresh.pk]
    assert keys(role="compliance") == [late.pk, soon.pk, fresh.pk]
    assert keys(sla="overdue") == [late.pk]
    assert keys(sla="due_soon") == [soon.pk]
    assert keys(sla="ok") == [fresh.pk]
    assert keys(not_mine=True) == [soon.pk, fresh.pk]
    assert keys(role="fairness", sla="ok") == [fresh.pk]
    # The registrant's own package never waits for them, and the page says what is filtered.
    assert late.pk not in [i.package_id for i in queue_for_user(mlead)]
    body = queue_html(mlead, "?tab=all&role=fairness&sla=overdue")
    assert listed(body) == ["credit-risk/v3"]
    assert "1 pending version" in body and "missing fairness, SLA overdue" in body
    assert listed(queue_html(mlead, "?tab=all&not_mine=1")) == ["credit-risk/v2", "credit-risk/v1"]
    # Hostile or mistyped filters are refused with a 400 that names the field, never ignored silently.
    refused = client_for(mlead).get(QUEUE + "?sla=bogus&role=" + "r" * 100)
    assert refused.status_code == 400
    assert ">sla</span>" in refused.content.decode() and ">role</span>" in refused.content.decode()


def test_pages_of_fifty_oldest_first_with_next_link_and_load_more() -> None:
    mlead = persona_user("mlead")
    made = [pending(v, hours=200 - v) for v in range(1, 2 * PAGE_SIZE + 11)]  # v1 is the oldest
    order = [f"credit-risk/v{p.version}" for p in made]

    body = queue_html(mlead)
    assert listed(body) == order[:PAGE_SIZE]
    assert f"{len(made)} versions waiting for your sign-off" in body  # the total, not the page
    cursor = queue_page(mlead).next_cursor
    assert f'href="/queue/?after={cursor}"' in body
    assert f'hx-get="/queue/?after={cursor}&amp;more=1"' in body

    second = queue_html(mlead, f"?after={cursor}")  # the plain "next" link: the whole page
    assert listed(second) == order[PAGE_SIZE : 2 * PAGE_SIZE]
    assert "back to the first page" in second
    more = client_for(mlead).get(QUEUE + f"?after={cursor}&more=1", headers={"HX-Request": "true"})
    rows = more.content.decode()
    assert rows.lstrip().startswith("<tr") and "queue-list" not in rows and "result-count" not in rows
    assert listed(rows) == order[PAGE_SIZE : 2 * PAGE_SIZE]
    last = queue_page(mlead, after=queue_page(mlead, after=cursor).next_cursor)
    assert [f"credit-risk/v{i.version}" for i in last.items] == order[2 * PAGE_SIZE :]
    assert last.next_cursor == "" and last.total == len(made)
    # A forged cursor starts over rather than failing.
    assert listed(queue_html(mlead, "?after=x' OR 1=1")) == order[:PAGE_SIZE]


def test_decided_tab_pages_newest_first() -> None:
    comp = persona_user("comp")
    package = package_in_state("approved", version=1)
    decisions = [Decision.objects.create(package=package, kind="policy", status="Approved") for _ in range(60)]
    Decision.objects.filter(pk__in=[d.pk for d in decisions[:5]]).update(created_at=ago(days=1))  # ties on time

    first = queue_page(comp, tab="decided")
    second = queue_page(comp, tab="decided", after=first.next_cursor)
    shown = [i.decision.pk for i in first.items + second.items]
    assert len(first.items) == PAGE_SIZE and first.total == 60 and second.next_cursor == ""
    assert shown == [d.pk for d in reversed(decisions[5:])] + [d.pk for d in reversed(decisions[:5])]
    assert queue_page(comp, tab="decided", after="nonsense-1").items == first.items


# --------------------------------------------------------------------------------------------- other tabs


def test_all_pending_tab_lists_everything_pending() -> None:
    mlead = persona_user("mlead")
    signed = pending(1, hours=30)
    signoff_row(signed, mlead, "ml-lead")
    pending(2, hours=10)
    package_in_state("approved", version=3)

    body = queue_html(mlead, "?tab=all")

    assert listed(body) == ["credit-risk/v1", "credit-risk/v2"]
    assert '<a href="/queue/?tab=all" class="active" aria-current="page">All pending</a>' in body
    assert '<span class="subtle">signed</span>' in body
    assert '<span class="chip chip-mine">ml-lead</span>' in body


def test_recently_decided_tab_newest_first_with_push_state() -> None:
    comp = persona_user("comp")
    older = package_in_state("approved", version=1)
    newer = package_in_state("rejected", version=2)
    ancient = package_in_state("rejected", version=3)
    first = Decision.objects.create(package=older, kind="policy", status="Approved", decided_by=comp)
    second = Decision.objects.create(package=newer, kind="revocation", status="Rejected", decided_by=comp)
    old = Decision.objects.create(package=ancient, kind="archive", status="Rejected")
    Decision.objects.filter(pk=first.pk).update(created_at=ago(days=2))
    Decision.objects.filter(pk=old.pk).update(created_at=ago(days=31))
    failed_push(older, decision=first, kind="decision", state=PushOutbox.State.SENT, attempts=1)
    failed_push(newer, decision=second, kind="decision", state=PushOutbox.State.CONFLICT, attempts=2)

    items = queue_for_user(persona_user("viewer"), tab="decided")
    assert [i.decision.pk for i in items if i.decision] == [second.pk, first.pk]

    body = queue_html(persona_user("viewer"), "?tab=decided")
    assert listed(body) == ["credit-risk/v2", "credit-risk/v1"]
    assert "Approval revoked" in body and "Sign-off policy satisfied" in body
    assert '<span class="badge push-conflict">Conflict</span> <span class="subtle">2 attempts</span>' in body
    assert '<span class="badge push-sent">Sent</span>' in body
    assert ">comp<" in body
    assert "2 decisions in the last 30 days" in body


# --------------------------------------------------------------------------------------------- htmx


def test_list_partial_refreshes_every_30s_and_on_signoff() -> None:
    pending(1)
    mlead = persona_user("mlead")
    body = queue_html(mlead, "?group=credit-risk")

    assert re.search(
        r'<div id="queue-list"[^>]*hx-get="/queue/\?[^"]*group=credit-risk[^"]*"[^>]*'
        r'hx-trigger="every 30s, signoff-recorded from:body"',
        body,
        flags=re.S,
    )
    partial = client_for(mlead).get(QUEUE + "?group=credit-risk", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    text = partial.content.decode()
    assert text.lstrip().startswith('<div id="queue-list"')
    assert "<html" not in text
    assert "HX-Request" in partial["Vary"]


def test_queue_needs_login() -> None:
    from django.test import Client

    response = Client().get(QUEUE)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={QUEUE}"


def test_queue_escapes_names() -> None:
    comp = make_user(f"comp{XSS}", "compliance")
    package = package_in_state("approved", version=1)
    Decision.objects.create(package=package, kind="policy", status="Approved", decided_by=comp)
    ApprovalPolicy.objects.create(name=f"p{XSS}", is_default=True, spec={"name": f"p{XSS}"[:128]})
    pending(2)

    for query in ("", "?tab=all", "?tab=decided", f"?group={XSS}&tag={XSS}"):
        body = queue_html(comp, query)
        assert "<script>alert(1)" not in body, query
    assert "comp&lt;script&gt;" in queue_html(comp, "?tab=decided")


# --------------------------------------------------------------------------------------------- nav counts


def test_nav_counts_per_role_on_every_page() -> None:
    user = make_user("dual", "ml-lead", "fairness")
    for version in (1, 2, 3):
        pending(version)
    signoff_row(ModelPackage.objects.get(version=3), persona_user("fair"), "fairness")

    for target in (QUEUE, reverse("registry:group_list"), reverse("registry:sync_status")):
        body = client_for(user).get(target).content.decode()
        nav = re.search(r'<a id="nav-queue" href="/queue/">(.*?)</a>', body, flags=re.S)
        assert nav, target
        text = re.sub(r"<[^>]+>", "", nav.group(1))
        assert re.sub(r"\s+", " ", text).strip() == "Queue·ml-lead 3·fairness 2"


def test_nav_shows_zero_counts_for_a_role_with_nothing_waiting() -> None:
    body = queue_html(persona_user("comp"))
    assert 'compliance <span class="nav-count">0</span>' in body


# --------------------------------------------------------------------------------------------- queries


def _count(user: Any, target: str, **headers: str) -> tuple[int, list[str]]:
    client = client_for(user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(target, headers=headers)
    assert response.status_code == 200
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


def _pile(packages: int, signoffs: int, *, group: str) -> None:
    made = [pending(v, group=group, hours=v) for v in range(1, packages + 1)]
    signers = [make_user(f"{group}-fair-{i}", "fairness") for i in range(signoffs)]
    for i, user in enumerate(signers):
        signoff_row(made[i % len(made)], user, "fairness", comment="fine")
    for package in made[:3]:
        failed_push(package)
    for package in made[:2]:
        decided = Decision.objects.create(package=package, kind="policy", status="Approved")
        failed_push(package, decision=decided, kind="decision", state=PushOutbox.State.SENT)


# Session, user, the user's roles, the tab's COUNT, its page of rows, the nav's COUNT ... GROUP BY role
# ("decided": the decisions' COUNT and page, their newest push's state selected with them, and the
# approvals' conditions).
TARGETS = {
    QUEUE: 6,
    QUEUE + "?tab=all": 6,
    QUEUE + "?tab=decided": 7,
    QUEUE + "?tag=RiskTier:High&group=credit-risk": 6,
    QUEUE + "?tab=all&role=compliance&sla=ok&not_mine=1": 6,
}


@pytest.mark.parametrize("target", TARGETS)
def test_queue_query_count_does_not_grow_with_packages(target: str) -> None:
    user = make_user("dual", "ml-lead", "compliance")
    _pile(2, 0, group="credit-risk")
    few = _count(user, target)
    _pile(40, 0, group="credit-risk-2")
    many = _count(user, target)

    assert few[0] == many[0] == TARGETS[target], "\n".join(many[1])


@pytest.mark.parametrize("target", TARGETS)
def test_queue_query_count_does_not_grow_with_signoffs(target: str) -> None:
    user = make_user("dual", "ml-lead", "compliance")
    _pile(5, 0, group="credit-risk")
    few = _count(user, target)
    for i, package in enumerate(ModelPackage.objects.all()):
        for j in range(12):  # 60 sign-offs in all
            signoff_row(package, make_user(f"signer-{i}-{j}", "fairness"), "fairness", comment="ok")
    many = _count(user, target)

    assert SignOff.objects.count() == 60
    assert few[0] == many[0] == TARGETS[target], "\n".join(many[1])


def test_a_deep_page_and_load_more_cost_the_same_queries() -> None:
    user = make_user("dual", "ml-lead", "compliance")
    _pile(PAGE_SIZE + 10, 0, group="credit-risk")
    cursor = queue_page(user, tab="all").next_cursor
    assert cursor
    assert _count(user, f"{QUEUE}?tab=all&after={cursor}")[0] == 6
    # htmx "load more": the rows only, no COUNT and no nav.
    count, sql = _count(user, f"{QUEUE}?tab=all&after={cursor}&more=1", HX_Request="true")
    assert count == 4, "\n".join(sql)


def test_nav_counts_cost_one_query_on_other_pages() -> None:
    user = make_user("dual", "ml-lead", "compliance")
    viewer = persona_user("viewer")
    _pile(2, 0, group="credit-risk")
    target = reverse("registry:group_list")
    few, viewer_few = _count(user, target), _count(viewer, target)
    _pile(40, 30, group="credit-risk-2")
    many, viewer_many = _count(user, target), _count(viewer, target)

    assert few[0] == many[0], "\n".join(many[1])
    assert viewer_few[0] == viewer_many[0]
    # Role holders pay one COUNT ... GROUP BY role for the nav; others only their roles, as everyone.
    assert many[0] - viewer_many[0] == 1, "\n".join(many[1])
    assert sum(1 for sql in many[1] if "GROUP BY" in sql and "reviewstaterole" in sql) == 1


def test_the_stored_row_is_the_review_pages_verdict() -> None:
    from registry_app.models import ReviewState
    from registry_app.review.panel import review_state

    package = pending(1)
    mlead, fair = persona_user("mlead"), persona_user("fair")
    signoff_row(package, mlead, "ml-lead", comment="a")
    signoff_row(package, fair, "fairness", decision="reject", comment="b", stale_at=ago(hours=1))

    row = ReviewState.objects.get(package=package)
    panel = review_state(package, persona_user("comp"))
    assert row.fingerprint == panel.fingerprint
    assert row.missing_roles == panel.result.missing_roles == ["fairness", "compliance"]
    assert row.outcome == "Pending" and row.policy_name == panel.policy.name
    assert row.signers == f"|{mlead.pk}|"  # the stale rejection holds nothing


def test_nav_counts_are_exact_at_once_without_a_cache() -> None:
    """A sign-off elsewhere shows in the next page's counts: nothing is cached between requests."""
    from registry_app.review.signoffs import signoff_create

    user = make_user("dual", "ml-lead", "fairness")
    package = pending(1)
    pending(2)

    def nav() -> str:
        body = client_for(user).get(reverse("registry:group_list")).content.decode()
        found = re.search(r'<a id="nav-queue" href="/queue/">(.*?)</a>', body, flags=re.S)
        assert found
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()

    assert nav() == "Queue·ml-lead 2·fairness 2"
    signoff_create(user=persona_user("fair"), package_id=package.pk, role="fairness", decision="approve", comment="")
    assert nav() == "Queue·ml-lead 2·fairness 1"


def test_queue_pages_keep_working_while_the_cache_server_is_down(settings) -> None:  # type: ignore[no-untyped-def]
    """Redis down (nothing listens on port 9): the queue and the nav counts need no cache; no page answers 500."""
    from registry_app.review.queue import queue_cache_clear

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    # (pytest-django's settings fixture sends setting_changed: Django rebuilds the cache handlers.)
    user = make_user("cacheless", "ml-lead")
    pending(1)
    for target in (QUEUE, reverse("registry:group_list")):
        response = client_for(user).get(target)
        assert response.status_code == 200, target
        nav = re.search(r'<a id="nav-queue" href="/queue/">(.*?)</a>', response.content.decode(), flags=re.S)
        assert nav and re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", nav.group(1))).strip() == "Queue·ml-lead 1"
    queue_cache_clear(user)  # no exception
