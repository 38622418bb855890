"""Tests for kybernetes.api.protobuf (Kubernetes protobuf bodies <-> JSON dicts).

``KUBECTL_BODIES`` are real request bodies captured from kubectl v1.32.4 (the gcloud
dispatcher's built-in kubectl) pointed at a throw-away capture server on 127.0.0.1, with the
JSON each must decode to. They exercise the Go encoder's habits: every non-pointer field is
written, empty strings as ``12 00``, zero times as ``42 00``, empty sub-messages, zero ints.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kybernetes.api import protobuf as pb
from kybernetes.api.protobuf import MAGIC, ProtobufError, decode, encode
from kybernetes.api.resources import BUILTIN

KUBECTL_BODIES = [
    pytest.param(
        "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412bc010a210a047765623212001a002200"
        "2a003200380042005a0b0a036170701204776562321288010802120d0a0b0a036170701204776562321a6d0a"
        "1d0a0012001a0022002a003200380042005a0b0a03617070120477656232124c122e0a056e67696e7812056e"
        "67696e782a00320a0a001000185022002a0042006a007200800100880100900100a201001a00320042004a00"
        "52005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a00"
        "2200",
        {'apiVersion': 'apps/v1',
         'kind': 'Deployment',
         'metadata': {'name': 'web2', 'labels': {'app': 'web2'}},
         'spec': {'replicas': 2,
                  'selector': {'matchLabels': {'app': 'web2'}},
                  'template': {'metadata': {'labels': {'app': 'web2'}},
                               'spec': {'containers': [{'name': 'nginx',
                                                        'image': 'nginx',
                                                        'ports': [{'containerPort': 80}]}]}}}},
        id="deployment-1",
    ),
    pytest.param(
        "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412af010a210a047a65726f12001a002200"
        "2a003200380042005a0b0a0361707012047a65726f127c0800120d0a0b0a0361707012047a65726f1a610a1d"
        "0a0012001a0022002a003200380042005a0b0a0361707012047a65726f124012220a056e67696e7812056e67"
        "696e782a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01"
        "009a0100c2010022020a00280038001a0c0800100018002000280038001a002200",
        {'apiVersion': 'apps/v1',
         'kind': 'Deployment',
         'metadata': {'name': 'zero', 'labels': {'app': 'zero'}},
         'spec': {'replicas': 0,
                  'selector': {'matchLabels': {'app': 'zero'}},
                  'template': {'metadata': {'labels': {'app': 'zero'}},
                               'spec': {'containers': [{'name': 'nginx', 'image': 'nginx'}]}}}},
        id="deployment-2",
    ),
    pytest.param(
        "6b3873000a0f0a0276311209436f6e6669674d617012250a130a0363666712001a0022002a00320038004200"
        "12060a016112016212060a01631201641a002200",
        {'apiVersion': 'v1',
         'kind': 'ConfigMap',
         'metadata': {'name': 'cfg'},
         'data': {'a': 'b', 'c': 'd'}},
        id="configmap-1",
    ),
    pytest.param(
        "6b3873000a0c0a027631120653656372657412360a130a0373656312001a0022002a00320038004200120e0a"
        "0762696e2e64617412030001ff120d0a0475736572120561646d696e1a001a002200",
        {'apiVersion': 'v1',
         'kind': 'Secret',
         'metadata': {'name': 'sec'},
         'data': {'bin.dat': 'AAH/', 'user': 'YWRtaW4='}},
        id="secret-1",
    ),
    pytest.param(
        "6b3873000a0f0a02763112094e616d657370616365121b0a130a036e733112001a0022002a00320038004200"
        "12001a020a001a002200",
        {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'ns1'}},
        id="namespace-1",
    ),
    pytest.param(
        "6b3873000a0d0a027631120753657276696365126c0a210a047376633112001a0022002a003200380042005a"
        "0b0a0361707012047376633112430a1b0a0738302d38303830120354435018502207080010903f1a00280012"
        "0b0a036170701204737663311a002209436c757374657249503a00420052005a00600068001a020a001a0022"
        "00",
        {'apiVersion': 'v1',
         'kind': 'Service',
         'metadata': {'name': 'svc1', 'labels': {'app': 'svc1'}},
         'spec': {'ports': [{'name': '80-8080',
                             'protocol': 'TCP',
                             'port': 80,
                             'targetPort': 8080}],
                  'selector': {'app': 'svc1'},
                  'type': 'ClusterIP'}},
        id="service-1",
    ),
    pytest.param(
        "6b3873000a0d0a027631120753657276696365126b0a1f0a036e703112001a0022002a003200380042005a0a"
        "0a0361707012036e703112440a1e0a0738302d6874747012035443501850220a080110001a04687474702800"
        "120a0a0361707012036e70311a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200",
        {'apiVersion': 'v1',
         'kind': 'Service',
         'metadata': {'name': 'np1', 'labels': {'app': 'np1'}},
         'spec': {'ports': [{'name': '80-http',
                             'protocol': 'TCP',
                             'port': 80,
                             'targetPort': 'http'}],
                  'selector': {'app': 'np1'},
                  'type': 'NodePort'}},
        id="service-2",
    ),
    pytest.param(
        "6b3873000a0f0a0862617463682f763112034a6f621284010a120a026a3112001a0022002a00320038004200"
        "126432620a100a0012001a0022002a00320038004200124e122b0a026a31120762757379626f781a04656368"
        "6f1a0268692a0042006a007200800100880100900100a201001a054e65766572320042004a00520058006000"
        "68008201008a01009a0100c201001a082000280030003a001a002200",
        {'apiVersion': 'batch/v1',
         'kind': 'Job',
         'metadata': {'name': 'j1'},
         'spec': {'template': {'spec': {'containers': [{'name': 'j1',
                                                        'image': 'busybox',
                                                        'command': ['echo', 'hi']}],
                                        'restartPolicy': 'Never'}}}},
        id="job-1",
    ),
    pytest.param(
        "6b3873000a130a0862617463682f7631120743726f6e4a6f6212ac010a130a03636a3112001a0022002a0032"
        "00380042001292010a0b2a2f35202a202a202a202a1a002a80010a130a03636a3112001a0022002a00320038"
        "004200126932670a100a0012001a0022002a003200380042001253122c0a03636a31120762757379626f781a"
        "046563686f1a0268692a0042006a007200800100880100900100a201001a094f6e4661696c75726532004200"
        "4a0052005800600068008201008a01009a0100c201001a001a002200",
        {'apiVersion': 'batch/v1',
         'kind': 'CronJob',
         'metadata': {'name': 'cj1'},
         'spec': {'schedule': '*/5 * * * *',
                  'jobTemplate': {'metadata': {'name': 'cj1'},
                                  'spec': {'template': {'spec': {'containers': [{'name': 'cj1',
                                                                                 'image': 'busybox',
                                                                                 'command': ['echo',
                                                                                             'hi']}],
                                                                 'restartPolicy': 'OnFailure'}}}}}},
        id="cronjob-1",
    ),
    pytest.param(
        "6b3873000a140a027631120e536572766963654163636f756e7412150a130a0373613112001a0022002a0032"
        "00380042001a002200",
        {'apiVersion': 'v1', 'kind': 'ServiceAccount', 'metadata': {'name': 'sa1'}},
        id="serviceaccount-1",
    ),
    pytest.param(
        "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f6c651229"
        "0a120a02723112001a0022002a0032003800420012130a036765740a046c69737412001a04706f64731a0022"
        "00",
        {'apiVersion': 'rbac.authorization.k8s.io/v1',
         'kind': 'Role',
         'metadata': {'name': 'r1'},
         'rules': [{'verbs': ['get', 'list'], 'apiGroups': [''], 'resources': ['pods']}]},
        id="role-1",
    ),
    pytest.param(
        "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f6c654269"
        "6e64696e671288010a130a0372623112001a0022002a0032003800420012280a04557365721219726261632e"
        "617574686f72697a6174696f6e2e6b38732e696f1a03626f62220012200a0e536572766963654163636f756e"
        "7412001a03736131220764656661756c741a250a19726261632e617574686f72697a6174696f6e2e6b38732e"
        "696f1204526f6c651a0272311a002200",
        {'apiVersion': 'rbac.authorization.k8s.io/v1',
         'kind': 'RoleBinding',
         'metadata': {'name': 'rb1'},
         'subjects': [{'kind': 'User', 'apiGroup': 'rbac.authorization.k8s.io', 'name': 'bob'},
                      {'kind': 'ServiceAccount', 'name': 'sa1', 'namespace': 'default'}],
         'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role', 'name': 'r1'}},
        id="rolebinding-1",
    ),
    pytest.param(
        "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b436c75737465"
        "72526f6c6512260a130a0363723112001a0022002a00320038004200120f0a036765742a082f6865616c7468"
        "7a1a002200",
        {'apiVersion': 'rbac.authorization.k8s.io/v1',
         'kind': 'ClusterRole',
         'metadata': {'name': 'cr1'},
         'rules': [{'verbs': ['get'], 'nonResourceURLs': ['/healthz']}]},
        id="clusterrole-1",
    ),
    pytest.param(
        "6b3873000a130a027631120d5265736f7572636551756f746112420a120a02713112001a0022002a00320038"
        "004200122a0a0a0a0363707512030a01310a0f0a066d656d6f727912050a033147690a0b0a04706f64731203"
        "0a01321a001a002200",
        {'apiVersion': 'v1',
         'kind': 'ResourceQuota',
         'metadata': {'name': 'q1'},
         'spec': {'hard': {'cpu': '1', 'memory': '1Gi', 'pods': '2'}}},
        id="resourcequota-1",
    ),
    pytest.param(
        "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e427564676574123b0a140a04"
        "7064623112001a0022002a0032003800420012170a09080110001a03353025120a0a080a036170701201781a"
        "0a080018002000280030001a002200",
        {'apiVersion': 'policy/v1',
         'kind': 'PodDisruptionBudget',
         'metadata': {'name': 'pdb1'},
         'spec': {'minAvailable': '50%', 'selector': {'matchLabels': {'app': 'x'}}}},
        id="poddisruptionbudget-1",
    ),
    pytest.param(
        "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c61737312"
        "350a130a0370633012001a0022002a003200380042001000180022047a65726f2a14507265656d70744c6f77"
        "65725072696f726974791a002200",
        {'apiVersion': 'scheduling.k8s.io/v1',
         'kind': 'PriorityClass',
         'metadata': {'name': 'pc0'},
         'value': 0,
         'description': 'zero',
         'preemptionPolicy': 'PreemptLowerPriority'},
        id="priorityclass-1",
    ),
    pytest.param(
        "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e677265737312600a140a0469"
        "6e673112001a0022002a00320038004200124412120a07666f6f2e636f6d12076d792d636572741a2e0a0766"
        "6f6f2e636f6d12230a210a1f0a042f626172120f220d0a047376633112050a0010903f1a065072656669781a"
        "020a001a002200",
        {'apiVersion': 'networking.k8s.io/v1',
         'kind': 'Ingress',
         'metadata': {'name': 'ing1'},
         'spec': {'tls': [{'hosts': ['foo.com'], 'secretName': 'my-cert'}],
                  'rules': [{'host': 'foo.com',
                             'http': {'paths': [{'path': '/bar',
                                                 'pathType': 'Prefix',
                                                 'backend': {'service': {
                                                     'name': 'svc1',
                                                     'port': {'number': 8080}}}}]}}]}},
        id="ingress-1",
    ),
    pytest.param(
        "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374"
        "416363657373526576696577123f0a100a0012001a0022002a0032003800420012210a1f0a0764656661756c"
        "7412066372656174651a0022002a04706f647332003a001a08080012001a0020001a002200",
        {'apiVersion': 'authorization.k8s.io/v1',
         'kind': 'SelfSubjectAccessReview',
         'spec': {'resourceAttributes': {'namespace': 'default',
                                         'verb': 'create',
                                         'resource': 'pods'}}},
        id="selfsubjectaccessreview-1",
    ),
    pytest.param(
        "6b3873000a310a17617574686f72697a6174696f6e2e6b38732e696f2f7631121653656c665375626a656374"
        "52756c657352657669657712230a100a0012001a0022002a0032003800420012090a0764656661756c741a04"
        "180022001a002200",
        {'apiVersion': 'authorization.k8s.io/v1',
         'kind': 'SelfSubjectRulesReview',
         'spec': {'namespace': 'default'}},
        id="selfsubjectrulesreview-1",
    ),
    pytest.param(
        "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a6563"
        "74526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200",
        {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'},
        id="selfsubjectreview-1",
    ),
    pytest.param(
        "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e5265717565"
        "7374121d0a100a0012001a0022002a00320038004200120320901c1a040a0012001a002200",
        {'apiVersion': 'authentication.k8s.io/v1',
         'kind': 'TokenRequest',
         'spec': {'expirationSeconds': 3600}},
        id="tokenrequest-1",
    ),
    pytest.param(
        "6b3873000a130a027631120d44656c6574654f7074696f6e73120208051a002200",
        {'apiVersion': 'v1', 'kind': 'DeleteOptions', 'gracePeriodSeconds': 5},
        id="deleteoptions-1",
    ),
    pytest.param(
        "6b3873000a130a027631120d44656c6574654f7074696f6e73120208071a002200",
        {'apiVersion': 'v1', 'kind': 'DeleteOptions', 'gracePeriodSeconds': 7},
        id="deleteoptions-2",
    ),
    pytest.param(
        "6b3873000a330a166365727469666963617465732e6b38732e696f2f76311219436572746966696361746553"
        "69676e696e675265717565737412e3010a1f0a046373723112001a0022002a0263313201373800420808a584"
        "d8bb06100012590a0568656c6c6f1203626f621a00221473797374656d3a61757468656e746963617465642a"
        "0b636c69656e7420617574683a236b756265726e657465732e696f2f6b7562652d6170697365727665722d63"
        "6c69656e7440901c1a650a630a08417070726f766564120e4b75626563746c417070726f76651a3554686973"
        "204353522077617320617070726f766564206279206b75626563746c20636572746966696361746520617070"
        "726f76652e22080893fe89d80610002a003204547275651a002200",
        {'apiVersion': 'certificates.k8s.io/v1',
         'kind': 'CertificateSigningRequest',
         'metadata': {'name': 'csr1',
                      'uid': 'c1',
                      'resourceVersion': '7',
                      'creationTimestamp': '2025-01-02T03:04:05Z'},
         'spec': {'request': 'aGVsbG8=',
                  'signerName': 'kubernetes.io/kube-apiserver-client',
                  'expirationSeconds': 3600,
                  'usages': ['client auth'],
                  'username': 'bob',
                  'groups': ['system:authenticated']},
         'status': {'conditions': [{'type': 'Approved',
                                    'status': 'True',
                                    'reason': 'KubectlApprove',
                                    'message': 'This CSR was approved by kubectl certificate '
                                               'approve.',
                                    'lastUpdateTime': '2026-11-22T05:35:15Z'}]}},
        id="certificatesigningrequest-1",
    ),
    pytest.param(
        "6b3873000a0c0a0276311206536563726574128b010a120a02643112001a0022002a0032003800420012550a"
        "112e646f636b6572636f6e6669676a736f6e12407b226175746873223a7b22722e696f223a7b22757365726e"
        "616d65223a2275222c2270617373776f7264223a2270222c2261757468223a2264547077227d7d7d1a1e6b75"
        "6265726e657465732e696f2f646f636b6572636f6e6669676a736f6e1a002200",
        {'apiVersion': 'v1',
         'kind': 'Secret',
         'metadata': {'name': 'd1'},
         'data': {'.dockerconfigjson': 'eyJhdXRocyI6eyJyLmlvIjp7InVzZXJuYW1lIjoidSIsInBhc3N3b3Jk'
                                       'IjoicCIsImF1dGgiOiJkVHB3In19fQ=='},
         'type': 'kubernetes.io/dockerconfigjson'},
        id="secret-2",
    ),
    pytest.param(
        "6b3873000a290a0e6175746f7363616c696e672f76311217486f72697a6f6e74616c506f644175746f736361"
        "6c657212410a140a047765623212001a0022002a0032003800420012230a1b0a0a4465706c6f796d656e7412"
        "04776562321a07617070732f76311001180520501a04180020001a002200",
        {'apiVersion': 'autoscaling/v1',
         'kind': 'HorizontalPodAutoscaler',
         'metadata': {'name': 'web2'},
         'spec': {'scaleTargetRef': {'kind': 'Deployment',
                                     'name': 'web2',
                                     'apiVersion': 'apps/v1'},
                  'minReplicas': 1,
                  'maxReplicas': 5,
                  'targetCPUUtilizationPercentage': 80}},
        id="horizontalpodautoscaler-1",
    ),
]


@pytest.mark.parametrize(("body_hex", "expected"), KUBECTL_BODIES)
def test_decode_real_kubectl_bodies(body_hex: str, expected: dict[str, Any]) -> None:
    assert decode(bytes.fromhex(body_hex)) == expected


@pytest.mark.parametrize(("body_hex", "expected"), KUBECTL_BODIES)
def test_reencoded_kubectl_bodies_decode_the_same(body_hex: str, expected: dict[str, Any]) -> None:
    assert decode(encode(expected)) == expected


# ----------------------------------------------------------------------------- hand-built
def _key(number: int, wire: int) -> bytes:
    return pb._varint((number << 3) | wire)


def ld(number: int, *parts: bytes | str) -> bytes:
    """A length-delimited field built from parts (str parts are UTF-8 encoded)."""
    data = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
    return _key(number, 2) + pb._varint(len(data)) + data


def vi(number: int, value: int) -> bytes:
    return _key(number, 0) + pb._varint(value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + ld(1, ld(1, api_version), ld(2, kind)) + ld(2, raw) + ld(3) + ld(4)


def go_object_meta(name: str, labels: dict[str, str]) -> bytes:
    """ObjectMeta as the Go encoder writes it: every non-pointer field, empty or not."""
    label_entries = b"".join(ld(11, ld(1, k), ld(2, v)) for k, v in labels.items())
    return (ld(1, name) + ld(2) + ld(3) + ld(4) + ld(5) + ld(6) + vi(7, 0) + ld(8)
            + label_entries + ld(15))


def test_decode_hand_built_kubectl_create_deployment() -> None:
    """Appendix A: `kubectl create deployment web2 --image=nginx --replicas=2 --port=80`."""
    labels = {"app": "web2"}
    port = ld(1) + vi(2, 0) + vi(3, 80) + ld(4) + ld(5)
    container = (ld(1, "nginx") + ld(2, "nginx") + ld(5) + ld(6, port) + ld(8)
                 + ld(13) + ld(14) + vi(16, 0) + vi(17, 0) + vi(18, 0) + ld(20))
    pod_spec = ld(2, container) + ld(3) + ld(6) + ld(8) + ld(9) + ld(10) + vi(11, 0)
    template = ld(1, go_object_meta("", labels)) + ld(2, pod_spec)
    spec = (vi(1, 2) + ld(2, ld(1, ld(1, "app"), ld(2, "web2"))) + ld(3, template)
            + ld(4, ld(1)) + vi(5, 0) + vi(7, 0))
    status = vi(1, 0) + vi(2, 0) + vi(3, 0) + vi(4, 0) + vi(5, 0)
    raw = ld(1, go_object_meta("web2", labels)) + ld(2, spec) + ld(3, status)
    body = envelope("apps/v1", "Deployment", raw)
    assert body.startswith(bytes.fromhex("6b3873000a150a07617070732f7631120a4465706c6f796d656e74"))
    # Appendix A's clean JSON, minus the empty `resources: {}` / `strategy: {}` (the zero-value
    # rule drops empty non-pointer messages; they mean the same after defaulting).
    assert decode(body) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web2", "labels": {"app": "web2"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web2"}},
                 "template": {"metadata": {"labels": {"app": "web2"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                       "ports": [{"containerPort": 80}]}]}}},
    }


def test_pointer_zero_values_are_kept_and_non_pointer_zeros_dropped() -> None:
    # DeploymentSpec: replicas (1) is *int32; minReadySeconds (5) is int32,omitempty;
    # paused (7) is bool,omitempty; revisionHistoryLimit (6) is *int32.
    raw = ld(2, vi(1, 0) + vi(5, 0) + vi(6, 0) + vi(7, 0))
    assert decode(envelope("apps/v1", "Deployment", raw)) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "spec": {"replicas": 0, "revisionHistoryLimit": 0},
    }


def test_non_omitempty_zero_kept_in_significant_message_dropped_in_empty_one() -> None:
    # PriorityClass.value is `json:"value"` (no omitempty): 0 is a real value at top level.
    pc = envelope("scheduling.k8s.io/v1", "PriorityClass", ld(1, ld(1, "pc")) + vi(2, 0))
    assert decode(pc) == {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                          "metadata": {"name": "pc"}, "value": 0}
    # SubjectAccessReviewStatus.allowed is `json:"allowed"` too, but an all-zero status is noise.
    ssar = ld(2, ld(1, ld(2, "get"))) + ld(3, vi(1, 0) + ld(2) + ld(3) + vi(4, 0))
    assert decode(envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", ssar)) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "get"}},
    }


def test_present_empty_pointer_message_is_kept() -> None:
    # Volume{name 1, inline VolumeSource 2{emptyDir 2: *EmptyDirVolumeSource}}
    volume = ld(1, "cache") + ld(2, ld(2, b""))
    raw = ld(2, ld(1, volume) + ld(2, ld(1, "c") + ld(2, "img")))
    assert decode(envelope("v1", "Pod", raw))["spec"] == {
        "volumes": [{"name": "cache", "emptyDir": {}}],
        "containers": [{"name": "c", "image": "img"}],
    }


def test_unknown_fields_are_skipped_of_every_wire_type() -> None:
    unknown = vi(90, 7) + ld(91, "x") + _key(92, 1) + b"\x00" * 8 + _key(93, 5) + b"\x00" * 4
    raw = unknown + ld(1, ld(1, "cm") + unknown) + ld(2, ld(1, "k"), ld(2, "v"))
    assert decode(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}}


def test_packed_and_unpacked_repeated_scalars() -> None:
    # PodSecurityContext.supplementalGroups (4) is repeated int64; Go writes it unpacked.
    packed = ld(4, pb._varint(1000) + pb._varint(2000))
    unpacked = vi(4, 3000)
    raw = ld(2, ld(2, ld(1, "c")) + ld(14, packed + unpacked))
    spec = decode(envelope("v1", "Pod", raw))["spec"]
    assert spec["securityContext"] == {"supplementalGroups": [1000, 2000, 3000]}


def test_negative_integers_round_trip_as_ten_byte_varints() -> None:
    obj = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
           "metadata": {"name": "low"}, "value": -1000}
    body = encode(obj)
    assert bytes.fromhex("10" + "98f8ffffffffffffff01") in body
    assert decode(body) == obj


def test_last_value_wins_for_repeated_singular_field() -> None:
    raw = ld(1, ld(1, "first") + ld(1, "second"))
    assert decode(envelope("v1", "Namespace", raw))["metadata"] == {"name": "second"}


def test_map_entry_with_missing_value_gives_zero_value() -> None:
    raw = ld(1, ld(1, "q")) + ld(2, ld(1, ld(1, "cpu")))  # spec.hard{"cpu": <no value>}
    assert decode(envelope("v1", "ResourceQuota", raw))["spec"] == {"hard": {"cpu": "0"}}


def test_nested_envelope_in_raw_extension() -> None:
    inner = encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "in"}})
    raw = ld(1, ld(1, "rev")) + ld(2, ld(1, inner)) + vi(3, 4)
    assert decode(envelope("apps/v1", "ControllerRevision", raw)) == {
        "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "rev"},
        "data": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "in"}},
        "revision": 4,
    }


def test_meta_kinds_are_accepted_under_any_group_version() -> None:
    body = envelope("apps/v1", "DeleteOptions", vi(1, 30) + ld(4, "Foreground") + ld(5, "All"))
    assert decode(body) == {"apiVersion": "apps/v1", "kind": "DeleteOptions",
                            "gracePeriodSeconds": 30, "propagationPolicy": "Foreground",
                            "dryRun": ["All"]}
    assert pb.message_for("meta.k8s.io/v1", "DeleteOptions") is not None
    assert pb.message_for("v1", "NoSuchKind") is None


# ----------------------------------------------------------------------------- coverage
EXTRA_KINDS = [
    ("v1", "DeleteOptions"), ("policy/v1", "Eviction"),
    ("authentication.k8s.io/v1", "TokenRequest"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"), ("authentication.k8s.io/v1", "TokenReview"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
    ("authorization.k8s.io/v1", "SubjectAccessReview"), ("autoscaling/v1", "Scale"),
    ("v1", "Binding"), ("certificates.k8s.io/v1", "CertificateSigningRequest"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
]
ALL_KINDS = sorted({(r.api_version, r.kind) for r in BUILTIN} | set(EXTRA_KINDS))


@pytest.mark.parametrize(("api_version", "kind"), ALL_KINDS)
def test_every_served_kind_has_a_schema_and_round_trips(api_version: str, kind: str) -> None:
    assert pb.message_for(api_version, kind) is not None
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    if "metadata" in pb._json_keys(pb.message_for(api_version, kind) or ""):
        obj["metadata"] = {"name": "x", "labels": {"a": "b"}, "annotations": {"n": "1"}}
    assert decode(encode(obj)) == obj


# ----------------------------------------------------------------------------- round trips
T0 = "2024-05-01T10:00:00Z"

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
        "name": "web-1", "namespace": "default", "uid": "6f0c1d3e-0000-4000-8000-000000000001",
        "resourceVersion": "42", "generation": 3, "creationTimestamp": T0,
        "deletionTimestamp": "2024-05-01T11:00:00Z", "deletionGracePeriodSeconds": 0,
        "labels": {"app": "web", "tier": "fe"}, "annotations": {"note": "hi"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-rs",
                             "uid": "u-1", "controller": True, "blockOwnerDeletion": True}],
        "finalizers": ["example.com/f"],
        "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                           "time": T0, "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}],
    },
    "spec": {
        "volumes": [
            {"name": "cache", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a.txt"}],
                                          "defaultMode": 420, "optional": False}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
            {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "pvc", "readOnly": True}},
            {"name": "tok", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                {"downwardAPI": {"items": [{"path": "labels",
                                            "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            ]}},
        ],
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
        "containers": [{
            "name": "app", "image": "nginx:1.27", "args": ["--port", "8080"],
            "workingDir": "/srv", "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "b",
                                                                "optional": True}}},
                {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s", "key": "c"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                            "fieldPath": "spec.nodeName"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                   "divisor": "1Mi"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cfg"}},
                        {"prefix": "S_", "secretRef": {"name": "s", "optional": False}}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                          "requests": {"cpu": "100m", "memory": "64Mi"}},
            "volumeMounts": [{"name": "cache", "mountPath": "/cache"},
                             {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True,
                              "subPath": "a.txt"}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP",
                                          "httpHeaders": [{"name": "X", "value": "y"}]},
                              "initialDelaySeconds": 5, "periodSeconds": 10,
                              "failureThreshold": 3},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "timeoutSeconds": 2},
            "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]},
                             "terminationGracePeriodSeconds": 0},
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}},
                          "postStart": {"httpGet": {"path": "/started", "port": 8080}}},
            "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "privileged": False,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "stdin": True, "tty": True,
        }],
        "ephemeralContainers": [{"name": "debug", "image": "busybox", "stdin": True,
                                 "targetContainerName": "app"}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 0,
        "activeDeadlineSeconds": 600, "dnsPolicy": "ClusterFirst",
        "nodeSelector": {"kubernetes.io/os": "linux"}, "serviceAccountName": "default",
        "automountServiceAccountToken": False, "nodeName": "node-1", "hostNetwork": True,
        "securityContext": {"fsGroup": 2000, "runAsUser": 1000,
                            "sysctls": [{"name": "net.ipv4.ip_forward", "value": "1"}]},
        "imagePullSecrets": [{"name": "regcred"}], "hostname": "web", "subdomain": "svc",
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "topologyKey": "kubernetes.io/hostname"}}]},
        },
        "schedulerName": "default-scheduler",
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                         "effect": "NoExecute", "tolerationSeconds": 300}],
        "priorityClassName": "high", "priority": 0, "enableServiceLinks": False,
        "dnsConfig": {"nameservers": ["1.1.1.1"], "options": [{"name": "ndots", "value": "2"}]},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                       "whenUnsatisfiable": "DoNotSchedule",
                                       "labelSelector": {"matchExpressions": [
                                           {"key": "app", "operator": "Exists"}]}}],
    },
    "status": {
        "phase": "Running", "podIP": "10.244.0.7", "podIPs": [{"ip": "10.244.0.7"}],
        "hostIP": "192.168.1.10", "startTime": T0, "qosClass": "Burstable",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": T0}],
        "containerStatuses": [{
            "name": "app", "ready": True, "restartCount": 0, "started": True,
            "image": "nginx:1.27", "imageID": "docker.io/library/nginx@sha256:abc",
            "containerID": "containerd://123", "state": {"running": {"startedAt": T0}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                         "startedAt": T0, "finishedAt": "2024-05-01T10:05:00Z"}},
        }],
    },
}

REALISTIC = [
    pytest.param(POD, id="pod"),
    pytest.param({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                 "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Local",
                 "healthCheckNodePort": 30001, "sessionAffinity": "ClientIP",
                 "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                 "allocateLoadBalancerNodePorts": True,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP",
                            "nodePort": 30080, "appProtocol": "http"},
                           {"name": "metrics", "port": 9090, "targetPort": 9091}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ports": [
            {"port": 80, "protocol": "TCP"}]}]}},
    }, id="service"),
    pytest.param({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
        "data": {"password": base64.b64encode(b"s3cr3t\x00\xff").decode(), "empty": ""},
        "stringData": {"plain": "text"}, "immutable": True,
    }, id="secret"),
    pytest.param({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
        "data": {"app.properties": "a=1\nb=2\n", "unicode": "héllo ☃"},
        "binaryData": {"logo.png": base64.b64encode(bytes(range(256))).decode()},
        "immutable": False,
    }, id="configmap"),
    pytest.param({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default",
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
                 "minReadySeconds": 5, "revisionHistoryLimit": 10, "paused": True,
                 "progressDeadlineSeconds": 600},
        "status": {"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3,
                   "readyReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 1,
                   "conditions": [{"type": "Available", "status": "True",
                                   "lastUpdateTime": T0, "lastTransitionTime": T0,
                                   "reason": "MinimumReplicasAvailable", "message": "ok"}]},
    }, id="deployment"),
    pytest.param({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u",
             "controller": True}]},
        "spec": {"replicas": 0, "minReadySeconds": 10,
                 "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f"}},
                 "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "5d4f"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}}},
        "status": {"replicas": 0, "observedGeneration": 2},
    }, id="replicaset"),
    pytest.param({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 1, "podManagementPolicy": "Parallel",
                 "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                     "resources": {"requests": {"storage": "1Gi"}}}}],
                 "updateStrategy": {"type": "RollingUpdate",
                                    "rollingUpdate": {"partition": 0}},
                 "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                          "whenScaled": "Delete"}},
    }, id="statefulset"),
    pytest.param({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "a", "image": "agent"}]}},
                 "updateStrategy": {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
        "status": {"desiredNumberScheduled": 2, "numberReady": 2, "currentNumberScheduled": 2,
                   "numberMisscheduled": 0},
    }, id="daemonset"),
    pytest.param({
        "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "rev-1"},
        "data": {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}, "n": [1, 2.5]},
        "revision": 1,
    }, id="controllerrevision"),
    pytest.param({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
        "spec": {"parallelism": 2, "completions": 4, "backoffLimit": 0, "suspend": False,
                 "activeDeadlineSeconds": 100, "ttlSecondsAfterFinished": 0,
                 "completionMode": "Indexed", "manualSelector": False,
                 "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {
                     "operator": "In", "values": [42]}}]},
                 "template": {"spec": {"restartPolicy": "Never", "containers": [
                     {"name": "pi", "image": "perl", "command": ["perl", "-e", "print 1"]}]}}},
        "status": {"active": 1, "succeeded": 2, "startTime": T0,
                   "completedIndexes": "0-1", "ready": 1},
    }, id="job"),
    pytest.param({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC",
                 "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 30, "suspend": True,
                 "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                 "jobTemplate": {"metadata": {"labels": {"cron": "tick"}}, "spec": {
                     "template": {"spec": {"restartPolicy": "OnFailure", "containers": [
                         {"name": "t", "image": "busybox"}]}}}}},
        "status": {"lastScheduleTime": T0,
                   "active": [{"kind": "Job", "name": "tick-1", "namespace": "default"}]},
    }, id="cronjob"),
    pytest.param({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing"},
        "spec": {"ingressClassName": "nginx",
                 "defaultBackend": {"service": {"name": "default", "port": {"name": "http"}}},
                 "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
                 "rules": [
                     {"host": "a.example.com", "http": {"paths": [
                         {"path": "/", "pathType": "Prefix",
                          "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                         {"path": "/static", "pathType": "ImplementationSpecific",
                          "backend": {"resource": {"apiGroup": "k8s.example.com",
                                                   "kind": "StorageBucket", "name": "b"}}}]}},
                     {"host": "b.example.com"},
                 ]},
        "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}},
    }, id="ingress"),
    pytest.param({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}},
                                       {"ipBlock": {"cidr": "10.0.0.0/8",
                                                    "except": ["10.1.0.0/16"]}}],
                              "ports": [{"protocol": "TCP", "port": 5432, "endPort": 5440}]}]},
    }, id="networkpolicy"),
    pytest.param({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"],
                   "resourceNames": ["web-1"]}],
    }, id="role"),
    pytest.param({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "agg"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]},
        "rules": [{"nonResourceURLs": ["/healthz", "/version"], "verbs": ["get"]}],
    }, id="clusterrole"),
    pytest.param({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "read", "namespace": "default"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"},
                     {"kind": "ServiceAccount", "name": "sa", "namespace": "default"},
                     {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                      "name": "devs"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
    }, id="rolebinding"),
    pytest.param({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "admins"},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                      "name": "system:masters"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
    }, id="clusterrolebinding"),
    pytest.param({
        "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u-1", "resourceVersion": "7"}, "orphanDependents": False,
        "propagationPolicy": "Background", "dryRun": ["All"],
    }, id="deleteoptions"),
    pytest.param({
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": "web-1", "namespace": "default"},
        "deleteOptions": {"gracePeriodSeconds": 30},
    }, id="eviction"),
    pytest.param({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}},
                 "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        "status": {"currentHealthy": 3, "desiredHealthy": 3, "disruptionsAllowed": 0,
                   "expectedPods": 3, "observedGeneration": 1,
                   "disruptedPods": {"web-1": T0}},
    }, id="pdb"),
    pytest.param({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "create",
                                        "group": "apps", "resource": "deployments",
                                        "subresource": "scale", "name": "web",
                                        "labelSelector": {"rawSelector": "a=b"}}},
        "status": {"allowed": True, "reason": "RBAC: allowed"},
    }, id="selfsubjectaccessreview"),
    pytest.param({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"},
                 "user": "bob", "groups": ["devs"], "uid": "1",
                 "extra": {"scopes": ["a", "b"], "empty": []}},
        "status": {"allowed": False, "denied": True, "evaluationError": "x"},
    }, id="subjectaccessreview"),
    pytest.param({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": "default"},
        "status": {"incomplete": True, "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                                         "resources": ["*"]}],
                   "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api"]}]},
    }, id="selfsubjectrulesreview"),
    pytest.param({
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
        "status": {"userInfo": {"username": "kubernetes-admin", "uid": "0",
                                "groups": ["system:masters", "system:authenticated"],
                                "extra": {"authentication.kubernetes.io/credential-id": ["X"]}}},
    }, id="selfsubjectreview"),
    pytest.param({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": "abc.def", "audiences": ["api"]},
        "status": {"authenticated": True, "user": {"username": "bob"}, "audiences": ["api"]},
    }, id="tokenreview"),
    pytest.param({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "metadata": {"name": "sa", "namespace": "default"},
        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600,
                 "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-1",
                                    "uid": "u-1"}},
        "status": {"token": "eyJ...", "expirationTimestamp": "2024-05-01T11:00:00Z"},
    }, id="tokenrequest"),
    pytest.param({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "5"},
        "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web"},
    }, id="scale"),
    pytest.param({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-1"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
    }, id="binding"),
    pytest.param({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "csr"},
        "spec": {"request": base64.b64encode(b"-----BEGIN CERTIFICATE REQUEST-----").decode(),
                 "signerName": "kubernetes.io/kube-apiserver-client",
                 "usages": ["client auth"], "expirationSeconds": 86400,
                 "username": "bob", "groups": ["devs"], "extra": {"k": ["v"]}},
        "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "ok",
                                   "lastUpdateTime": T0}],
                   "certificate": base64.b64encode(b"CERT").decode()},
    }, id="csr"),
    pytest.param({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 10,
                 "metrics": [
                     {"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 80}}},
                     {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {
                         "type": "AverageValue", "averageValue": "1k"}}},
                     {"type": "External", "external": {
                         "metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
                         "target": {"type": "Value", "value": "30"}}},
                 ],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300,
                                            "selectPolicy": "Max",
                                            "policies": [{"type": "Percent", "value": 10,
                                                          "periodSeconds": 60}]}}},
        "status": {"currentReplicas": 2, "desiredReplicas": 3, "lastScaleTime": T0,
                   "currentMetrics": [{"type": "Resource", "resource": {
                       "name": "cpu", "current": {"averageUtilization": 95,
                                                  "averageValue": "950m"}}}]},
    }, id="hpa-v2"),
    pytest.param({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80},
    }, id="hpa-v1"),
    pytest.param({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-1.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u",
                           "apiVersion": "v1", "resourceVersion": "4",
                           "fieldPath": "spec.containers{app}"},
        "reason": "Pulled", "message": "Successfully pulled image", "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": T0, "lastTimestamp": T0, "count": 2,
        "eventTime": "2024-05-01T10:00:00.123456Z", "reportingComponent": "kubelet",
        "reportingInstance": "node-1", "action": "Pull",
        "series": {"count": 2, "lastObservedTime": "2024-05-01T10:00:01.000001Z"},
    }, id="event-core"),
    pytest.param({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
        "eventTime": "2024-05-01T10:00:00.500000Z", "reportingController": "kubelet",
        "reportingInstance": "node-1", "action": "Pull", "reason": "Pulled", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "web-1"}, "note": "pulled",
        "deprecatedCount": 1,
    }, id="event-events"),
    pytest.param({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                 "acquireTime": "2024-05-01T10:00:00.000000Z",
                 "renewTime": "2024-05-01T10:00:30.654321Z", "leaseTransitions": 0},
    }, id="lease"),
    pytest.param({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True,
                                                                 "serving": True,
                                                                 "terminating": False},
                       "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": "web-1"},
                       "zone": "a"}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }, id="endpointslice"),
    pytest.param({
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1", "nodeName": "node-1",
                                    "targetRef": {"kind": "Pod", "name": "web-1"}}],
                     "notReadyAddresses": [{"ip": "10.0.0.2"}],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}],
    }, id="endpoints"),
    pytest.param({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"],
                 "unschedulable": True,
                 "taints": [{"key": "k", "value": "v", "effect": "NoSchedule",
                             "timeAdded": T0}]},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "allocatable": {"cpu": "3800m", "memory": "7Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastHeartbeatTime": T0, "lastTransitionTime": T0,
                                   "reason": "KubeletReady", "message": "ok"}],
                   "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                   "nodeInfo": {"kubeletVersion": "v1.32.0", "architecture": "amd64",
                                "operatingSystem": "linux", "machineID": "m",
                                "systemUUID": "s", "bootID": "b", "kernelVersion": "6",
                                "osImage": "Debian", "containerRuntimeVersion": "c",
                                "kubeProxyVersion": "v1.32.0"},
                   "images": [{"names": ["nginx:1.27"], "sizeBytes": 12345678901}]},
    }, id="node"),
    pytest.param({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/data"}, "persistentVolumeReclaimPolicy": "Retain",
                 "storageClassName": "manual", "volumeMode": "Filesystem",
                 "claimRef": {"namespace": "default", "name": "pvc"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchFields": [
                     {"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]}}},
        "status": {"phase": "Bound"},
    }, id="persistentvolume"),
    pytest.param({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pvc"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv"},
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}},
    }, id="pvc"),
    pytest.param({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"},
                             "defaultRequest": {"cpu": "100m"}, "max": {"memory": "1Gi"}}]},
    }, id="limitrange"),
    pytest.param({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
        "spec": {"hard": {"pods": "10", "requests.cpu": "4"}, "scopes": ["NotTerminating"],
                 "scopeSelector": {"matchExpressions": [
                     {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}},
        "status": {"hard": {"pods": "10"}, "used": {"pods": "0"}},
    }, id="resourcequota"),
    pytest.param({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"},
        "secrets": [{"name": "sa-token"}], "imagePullSecrets": [{"name": "regcred"}],
        "automountServiceAccountToken": False,
    }, id="serviceaccount"),
    pytest.param({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Terminating", "conditions": [
            {"type": "NamespaceDeletionContentFailure", "status": "False",
             "lastTransitionTime": T0, "reason": "ContentDeleted", "message": "done"}]},
    }, id="namespace"),
    pytest.param({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
        "spec": {"replicas": 0, "selector": {"app": "rc"}, "template": {
            "metadata": {"labels": {"app": "rc"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }, id="replicationcontroller"),
    pytest.param({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
        "provisioner": "kubernetes.io/no-provisioner", "parameters": {"type": "ssd"},
        "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True, "mountOptions": ["ro"],
        "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]}],
    }, id="storageclass"),
    pytest.param({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "hi"},
        "value": 1000000, "globalDefault": True, "description": "high",
        "preemptionPolicy": "Never",
    }, id="priorityclass"),
    pytest.param({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
        "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {
            "apiGroup": "k8s.example.com", "kind": "Params", "name": "p", "scope": "Cluster"}},
    }, id="ingressclass"),
]

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "listKind": "WidgetList", "shortNames": ["wd"], "categories": ["all"]},
        "conversion": {"strategy": "None"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}, "scale": {
                "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector"}},
            "additionalPrinterColumns": [{"name": "Size", "type": "integer",
                                          "jsonPath": ".spec.size", "priority": 1}],
            "selectableFields": [{"jsonPath": ".spec.color"}],
            "schema": {"openAPIV3Schema": {
                "type": "object", "description": "A widget",
                "required": ["spec"],
                "x-kubernetes-preserve-unknown-fields": False,
                "properties": {
                    "spec": {
                        "type": "object",
                        "properties": {
                            "size": {"type": "integer", "minimum": 0, "maximum": 1.5e3,
                                     "default": 3, "multipleOf": 0.5},
                            "color": {"type": "string", "enum": ["red", "green", None],
                                      "pattern": "^[a-z]+$", "maxLength": 10,
                                      "nullable": True, "example": "red"},
                            "replicas": {"type": "integer", "format": "int32"},
                            "tags": {"type": "array", "items": {"type": "string"},
                                     "x-kubernetes-list-type": "set"},
                            "pair": {"type": "array",
                                     "items": [{"type": "string"}, {"type": "integer"}]},
                            "labels": {"type": "object",
                                       "additionalProperties": {"type": "string"},
                                       "x-kubernetes-map-type": "granular"},
                            "closed": {"type": "object", "additionalProperties": False},
                            "port": {"x-kubernetes-int-or-string": True,
                                     "anyOf": [{"type": "integer"}, {"type": "string"}]},
                            "raw": {"type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                    "x-kubernetes-embedded-resource": True},
                            "cfg": {"type": "object", "default": {"a": [1, {"b": None}]}},
                        },
                        "dependencies": {"color": ["size"], "size": {"required": ["color"]}},
                        "x-kubernetes-validations": [
                            {"rule": "self.size <= 10", "message": "too big",
                             "reason": "FieldValueInvalid", "fieldPath": ".size"}],
                    },
                    "status": {"type": "object", "properties": {
                        "replicas": {"type": "integer"}, "selector": {"type": "string"}}},
                },
                "$schema": "http://json-schema.org/draft-04/schema#",
            }},
        }],
    },
    "status": {"acceptedNames": {"plural": "widgets", "kind": "Widget"},
               "storedVersions": ["v1"],
               "conditions": [{"type": "Established", "status": "True",
                               "lastTransitionTime": T0}]},
}
REALISTIC.append(pytest.param(CRD, id="crd"))
_WEBHOOK = {
    "name": "check.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None", "timeoutSeconds": 5,
    "failurePolicy": "Ignore", "matchPolicy": "Equivalent",
    "clientConfig": {"service": {"namespace": "wh", "name": "hook", "path": "/check", "port": 443}, "caBundle": "Y2E="},
    "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods", "pods/status"],
               "scope": "Namespaced"}],
    "namespaceSelector": {"matchLabels": {"team": "a"}}, "objectSelector": {},
    "matchConditions": [{"name": "not-system", "expression": "request.namespace != 'kube-system'"}],
}
REALISTIC.append(pytest.param({
    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "m"},
    "webhooks": [{**_WEBHOOK, "reinvocationPolicy": "IfNeeded"}]}, id="mutatingwebhookconfiguration"))
REALISTIC.append(pytest.param({
    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"},
    "webhooks": [{**_WEBHOOK, "clientConfig": {"url": "https://hook.example.com/check"}}]}, id="validatingwebhookconfiguration"))

REALISTIC.append(pytest.param({
    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "p"},
    "spec": {"failurePolicy": "Fail", "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
             "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                     "operations": ["CREATE", "UPDATE"], "resources": ["deployments"],
                                                     "resourceNames": ["web"]}],
                                  "namespaceSelector": {"matchLabels": {"env": "test"}}, "matchPolicy": "Equivalent"},
             "matchConditions": [{"name": "big", "expression": "object.spec.replicas > 1"}],
             "variables": [{"name": "n", "expression": "object.spec.replicas"}],
             "validations": [{"expression": "variables.n <= int(params.data.max)", "message": "too many",
                              "messageExpression": "'at most ' + params.data.max", "reason": "Forbidden"}]},
    "status": {"observedGeneration": 1}}, id="validatingadmissionpolicy"))
REALISTIC.append(pytest.param({
    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "b"},
    "spec": {"policyName": "p", "validationActions": ["Deny", "Audit"],
             "paramRef": {"name": "limits", "namespace": "default", "parameterNotFoundAction": "Deny"},
             "matchResources": {"objectSelector": {"matchLabels": {"checked": "yes"}}}}},
    id="validatingadmissionpolicybinding"))


@pytest.mark.parametrize("obj", REALISTIC)
def test_round_trip_realistic_objects(obj: dict[str, Any]) -> None:
    original = copy.deepcopy(obj)
    body = encode(obj)
    assert body.startswith(MAGIC)
    assert obj == original  # encode does not mutate
    assert decode(body) == obj


def test_round_trip_covers_every_table_kind() -> None:
    covered = {(p.values[0]["apiVersion"], p.values[0]["kind"]) for p in REALISTIC}
    missing = {(r.api_version, r.kind) for r in BUILTIN if r.kind not in (
        "LocalSubjectAccessReview", "PodTemplate")} - covered
    assert not missing


def test_inline_fields_are_flattened_on_the_wire_shape() -> None:
    """Volume sources, probe handlers, ingress rule values, secret refs sit in sub-messages."""
    body = encode({"apiVersion": "v1", "kind": "Pod", "spec": {"volumes": [
        {"name": "cfg", "configMap": {"name": "cm"}}]}})
    # PodSpec 2 > volumes 1 > {name 1, volumeSource 2 > configMap 19 > localObjectReference 1
    # > name 1}
    volume = ld(1, "cfg") + ld(2, ld(19, ld(1, ld(1, "cm"))))
    assert ld(1, volume) in body
    ingress = encode({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "spec": {"rules": [
        {"host": "h", "http": {"paths": [{"path": "/"}]}}]}})
    assert ld(3, ld(1, "h") + ld(2, ld(1, ld(1, ld(1, "/"))))) in ingress


def test_time_conversions() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "n", "creationTimestamp": "2024-05-01T12:00:00.75+02:00"}}
    assert decode(encode(obj))["metadata"]["creationTimestamp"] == "2024-05-01T10:00:00Z"
    old = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "n", "creationTimestamp": "1960-01-01T00:00:00Z"}}
    assert decode(encode(old)) == old
    # Time{seconds=0} is the Go zero value as written by kubectl: omitted
    raw = ld(1, ld(1, "n") + ld(8, vi(1, 0)))
    assert decode(envelope("v1", "Namespace", raw))["metadata"] == {"name": "n"}
    lease = ld(2, ld(3, vi(1, 1714557600) + vi(2, 1500)))  # acquireTime with 1.5 µs
    assert decode(envelope("coordination.k8s.io/v1", "Lease", lease))["spec"] == {
        "acquireTime": "2024-05-01T10:00:00.000001Z"}


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (1_000_000, "1ms"), (1_500_000_000, "1.5s"),
    (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"), (3723 * 10**9 + 5 * 10**8, "1h2m3.5s"),
    (-2 * 10**9, "-2s"), (100 * 3600 * 10**9, "100h0m0s"),
])
def test_duration_text(ns: int, text: str) -> None:
    assert pb.format_duration(ns) == text
    assert pb.parse_duration(text) == ns


@pytest.mark.parametrize(("text", "ns"), [
    ("1h", 3600 * 10**9), ("1.5h", 5400 * 10**9), ("2h45m", 9900 * 10**9), ("300ms", 3 * 10**8),
    ("1us", 1000), ("+5s", 5 * 10**9), ("0", 0), (".5s", 5 * 10**8),
])
def test_parse_duration_accepts_go_forms(text: str, ns: int) -> None:
    assert pb.parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "5", "1x", "h", "1h-2m", "-"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ProtobufError):
        pb.parse_duration(text)


def test_int_or_string_and_quantity_wire_forms() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "spec": {"ports": [
        {"port": 80, "targetPort": 8080}, {"port": 81, "targetPort": "web"}]}}
    body = encode(svc)
    assert ld(4, vi(1, 0) + vi(2, 8080)) in body
    assert ld(4, vi(1, 1) + ld(3, "web")) in body
    assert decode(body) == svc
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "spec": {"hard": {"cpu": 2}}}
    assert decode(encode(quota))["spec"]["hard"] == {"cpu": "2"}


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("body", "message"), [
    (b"", "magic"),
    (b"{\"kind\":\"Pod\"}", "magic"),
    (MAGIC + b"\x0a", "truncated"),
    (MAGIC + b"\x0a\x05ab", "runs past the end"),
    (MAGIC + b"\x0b", "wire type"),
    (MAGIC + b"\x00", "field number"),
    (MAGIC + b"\x08\x01", "typeMeta"),
    (MAGIC, "apiVersion/kind"),
    (MAGIC + b"\x0a" + b"\xff" * 11, "varint"),
    (envelope("v1", "Nope", b""), "no protobuf schema"),
    (MAGIC + ld(1, ld(1, "v1"), ld(2, "Pod")) + ld(3, "gzip"), "contentEncoding"),
    (MAGIC + ld(1, ld(1, "v1"), ld(2, "Pod")) + ld(4, "application/json"), "contentType"),
    (envelope("v1", "Pod", ld(1, ld(1, b"\xff\xfe"))), "UTF-8"),
    (envelope("v1", "Pod", vi(1, 5)), "wire type"),
    (envelope("v1", "Pod", ld(2, ld(4, "x"))), "wire type"),  # int64 sent as bytes
    (envelope("apps/v1", "ControllerRevision", ld(2, ld(1, "{nope"))), "not valid JSON"),
    (envelope("v1", "Namespace", ld(1, ld(8, vi(1, 2**62)))), "out of range"),
    (envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition",
              ld(2, ld(7, ld(4, ld(1, _key(9, 1) + b"\x00" * 7))))), "truncated"),
])
def test_malformed_bodies_raise_protobuf_error(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode(body)


def test_not_bytes_is_rejected() -> None:
    with pytest.raises(ProtobufError):
        decode("k8s\x00")  # type: ignore[arg-type]


def test_deep_nesting_is_rejected_not_a_crash() -> None:
    props = b""
    for _ in range(400):  # JSONSchemaProps.not (28) nested 400 times
        props = ld(28, props)
    body = envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                    ld(2, ld(7, ld(4, ld(1, props)))))
    with pytest.raises(ProtobufError, match="too deep"):
        decode(body)


def test_nan_double_is_rejected() -> None:
    nan = _key(9, 1) + bytes.fromhex("000000000000f87f")
    body = envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                    ld(2, ld(7, ld(4, ld(1, nan)))))
    with pytest.raises(ProtobufError, match="JSON"):
        decode(body)


@pytest.mark.parametrize(("obj", "message"), [
    ({"kind": "Pod"}, "apiVersion and kind"),
    ({"apiVersion": "v1", "kind": "Nope"}, "no protobuf schema"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": []}, "metadata: expected an object"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": 5}}, "metadata.name"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"generation": "x"}}, "integer"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"generation": 1.5}}, "integer"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": ["a"]}}, "object"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"finalizers": "a"}}, "list"),
    ({"apiVersion": "v1", "kind": "Pod", "spec": {"hostNetwork": "yes"}}, "boolean"),
    ({"apiVersion": "v1", "kind": "Secret", "data": {"a": "!!"}}, "base64"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"creationTimestamp": "May"}},
     "RFC 3339"),
    ({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"targetPort": [1]}]}},
     "integer"),
])
def test_encode_rejects_ill_typed_objects(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        encode(obj)


def test_encode_ignores_unknown_keys_and_nulls() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "bogus": 1},
           "data": None, "extra": {"x": 1}}
    assert decode(encode(obj)) == {"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "c"}}


# ----------------------------------------------------------------------------- fuzzing
_FUZZ = settings(max_examples=300, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


def _decode_or_protobuf_error(body: bytes) -> None:
    try:
        out = decode(body)
    except ProtobufError:
        return
    assert isinstance(out, dict) and "apiVersion" in out and "kind" in out


@_FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_after_magic(tail: bytes) -> None:
    _decode_or_protobuf_error(MAGIC + tail)


@_FUZZ
@given(st.sampled_from(["v1/Pod", "apps/v1/Deployment", "v1/Secret",
                        "apiextensions.k8s.io/v1/CustomResourceDefinition",
                        "networking.k8s.io/v1/Ingress", "coordination.k8s.io/v1/Lease"]),
       st.binary(max_size=300))
def test_fuzz_random_raw_inside_a_valid_envelope(gvk: str, raw: bytes) -> None:
    api_version, kind = gvk.rsplit("/", 1)
    _decode_or_protobuf_error(envelope(api_version, kind, raw))


_SAMPLE = bytes.fromhex(KUBECTL_BODIES[0].values[0])


@_FUZZ
@given(st.integers(min_value=len(MAGIC), max_value=len(_SAMPLE) - 1),
       st.integers(min_value=0, max_value=255), st.integers(min_value=0, max_value=40))
def test_fuzz_mutated_kubectl_body(position: int, byte: int, cut: int) -> None:
    mutated = bytearray(_SAMPLE)
    mutated[position] = byte
    _decode_or_protobuf_error(bytes(mutated[:len(mutated) - cut]))
