"""Default policy reconciliation and ClusterRole aggregation (pure)."""

from __future__ import annotations

import copy

from kybernetes.apiserver.authz import bootstrap as b
from kybernetes.apiserver.authz.aggregation import compute_aggregated_rules
from kybernetes.apiserver.authz.policy import compile_rules, covers


def test_every_default_is_labelled_and_annotated() -> None:
    objs = b.cluster_roles() + b.cluster_role_bindings() + b.roles() + b.role_bindings()
    names = [o["metadata"]["name"] for o in objs]
    for want in ("cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
                 "system:public-info-viewer", "system:kube-scheduler", "system:kube-controller-manager",
                 "system:node", "system:node-proxier", "system:kybernetes:controller-manager"):
        assert want in names
    for o in objs:
        assert o["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] == "true"
    roles = {o["metadata"]["name"] for o in b.cluster_roles()}
    for crb in b.cluster_role_bindings():
        assert crb["roleRef"]["name"] in roles


def test_reconcile_role_adds_missing_rules_and_keeps_extra() -> None:
    desired = b.cluster_role("system:x", [b.r([""], ["pods"], ["get"]), b.r([""], ["nodes"], ["list"])])
    assert b.reconcile_role(copy.deepcopy(desired), desired) is None
    existing = copy.deepcopy(desired)
    existing["rules"] = [b.r([""], ["pods"], ["get", "list"]), b.r(["x.io"], ["widgets"], ["*"])]   # admin changed it
    out = b.reconcile_role(existing, desired)
    assert out is not None
    assert b.r(["x.io"], ["widgets"], ["*"]) in out["rules"]                       # extra kept
    assert covers(compile_rules(out["rules"]), desired["rules"])[0]               # default restored
    existing["metadata"]["annotations"][b.AUTOUPDATE] = "false"
    assert b.reconcile_role(existing, desired) is None                             # opted out


def test_reconcile_aggregated_role_only_touches_selectors() -> None:
    desired = b.cluster_role("view", [], aggregate_from=b.AGG_VIEW)
    existing = copy.deepcopy(desired)
    existing["rules"] = [b.r([""], ["pods"], ["get"])]                               # filled by aggregation
    existing["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"extra": "true"}}]}
    out = b.reconcile_role(existing, desired)
    assert out is not None and out["rules"] == existing["rules"]
    assert out["aggregationRule"]["clusterRoleSelectors"] == [{"matchLabels": {"extra": "true"}},
                                                              {"matchLabels": {b.AGG_VIEW: "true"}}]


def test_reconcile_binding() -> None:
    desired = b.cluster_role_binding("system:discovery", "system:discovery", [b.group("system:authenticated")])
    assert b.reconcile_binding(copy.deepcopy(desired), desired) == ("none", None)
    existing = copy.deepcopy(desired)
    existing["subjects"] = [b.user("someone")]
    action, out = b.reconcile_binding(existing, desired)
    assert action == "update" and out is not None
    assert out["subjects"] == [b.user("someone"), b.group("system:authenticated")]
    existing["roleRef"]["name"] = "other"
    assert b.reconcile_binding(existing, desired)[0] == "recreate"


def role(name: str, labels: dict[str, str], rules: list[dict[str, object]], agg: str | None = None) -> dict[str, object]:
    return b.cluster_role(name, rules, labels=labels, aggregate_from=agg)


def test_compute_aggregated_rules() -> None:
    pods = b.r([""], ["pods"], ["get"])
    nodes = b.r([""], ["nodes"], ["get"])
    roles = [
        role("view", {b.AGG_EDIT: "true"}, [], agg=b.AGG_VIEW),
        role("z-widgets", {b.AGG_VIEW: "true"}, [nodes, pods]),
        role("a-pods", {b.AGG_VIEW: "true"}, [pods]),
        role("unrelated", {}, [b.r(["*"], ["*"], ["*"])]),
    ]
    assert compute_aggregated_rules(roles[0], roles) == [pods, nodes]       # by role name, each rule once
    assert compute_aggregated_rules(roles[1], roles) is None                # not aggregated
    everything = role("all", {}, [], agg=None)
    everything["aggregationRule"] = {"clusterRoleSelectors": [{}]}          # an empty selector matches all
    assert b.r(["*"], ["*"], ["*"]) in (compute_aggregated_rules(everything, roles) or [])


def test_default_edit_and_view_through_aggregation() -> None:
    roles = b.cluster_roles()
    by = {r["metadata"]["name"]: r for r in roles}
    for _ in range(3):   # view feeds edit feeds admin: settle
        for r in roles:
            want = compute_aggregated_rules(r, roles)
            if want is not None:
                r["rules"] = want
    view, edit, admin = (compile_rules(by[n]["rules"]) for n in ("view", "edit", "admin"))
    assert covers(view, [b.r([""], ["pods"], ["get", "list", "watch"])])[0]
    assert covers(view, [b.r(["metrics.k8s.io"], ["pods"], ["list"])])[0]   # kubectl top
    assert not covers(view, [b.r([""], ["secrets"], ["get"])])[0]
    assert covers(edit, by["view"]["rules"])[0] and covers(edit, [b.r([""], ["secrets"], ["create"])])[0]
    assert not covers(edit, [b.r([b.GROUP], ["roles"], ["create"])])[0]
    assert covers(admin, by["edit"]["rules"])[0] and covers(admin, [b.r([b.GROUP], ["rolebindings"], ["create"])])[0]
