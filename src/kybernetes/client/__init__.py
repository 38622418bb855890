"""The shared client library: the only code that talks HTTP to the API server.

    rest.ApiClient          async REST client (kubeconfig/TLS/token, retries, timeouts, watch)
    resources.Resource      group/version/plural addressing + constants (PODS, NODES, ...)
    errors                  typed ApiError tree (NotFound, Conflict, Expired, ...)
    keys                    "namespace/name" object keys, DeletedFinalStateUnknown
    informer / reflector    shared informers: list+watch into an indexed local cache + handlers
    indexer / lister        the cache and its read helpers (objects are read-only: copy_obj)
    workqueue.WorkQueue     dedup + rate-limited queue for controllers
    controller.Controller   the base control loop (informers -> keys -> workers -> sync(key))
    leaderelection          Lease-based leader election
    events.EventRecorder    core/v1 Events with aggregation of repeats
    fake.FakeApiClient      a recording in-memory client for component tests
"""

from .controller import Controller, Requeue, controller_ref, owner_mapper
from .errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    Expired,
    Forbidden,
    Gone,
    InternalError,
    Invalid,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    ServerTimeout,
    ServiceUnavailable,
    TooManyRequests,
    TransportError,
    Unauthorized,
    WatchInactive,
)
from .events import NORMAL, WARNING, EventRecorder
from .indexer import (
    BY_NODE_NAME,
    BY_OWNER_UID,
    NAMESPACE_INDEX,
    Indexer,
    index_by_field,
    index_by_label,
    index_by_namespace,
    index_by_node_name,
    index_by_owner_uid,
)
from .informer import EventHandler, InformerFactory, SharedInformer
from .keys import DeletedFinalStateUnknown, ObjectKey, key_of, make_key, split_key, tombstone_object
from .leaderelection import LeaderElectionConfig, LeaderElector
from .lister import Lister, copy_obj
from .resources import Resource
from .rest import ApiClient, RetryPolicy
from .workqueue import ShutDown, WorkQueue, default_controller_rate_limiter

__all__ = [
    "BY_NODE_NAME",
    "BY_OWNER_UID",
    "NAMESPACE_INDEX",
    "NORMAL",
    "WARNING",
    "AlreadyExists",
    "ApiClient",
    "ApiError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "Controller",
    "DeletedFinalStateUnknown",
    "EventHandler",
    "EventRecorder",
    "Expired",
    "Forbidden",
    "Gone",
    "Indexer",
    "InformerFactory",
    "InternalError",
    "Invalid",
    "LeaderElectionConfig",
    "LeaderElector",
    "Lister",
    "MethodNotAllowed",
    "NotFound",
    "ObjectKey",
    "RequestTimeout",
    "Requeue",
    "Resource",
    "RetryPolicy",
    "ServerTimeout",
    "ServiceUnavailable",
    "SharedInformer",
    "ShutDown",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "WatchInactive",
    "WorkQueue",
    "controller_ref",
    "copy_obj",
    "default_controller_rate_limiter",
    "index_by_field",
    "index_by_label",
    "index_by_namespace",
    "index_by_node_name",
    "index_by_owner_uid",
    "key_of",
    "make_key",
    "owner_mapper",
    "split_key",
    "tombstone_object",
]
