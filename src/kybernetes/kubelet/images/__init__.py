"""OCI images for the kubelet: references, a registry v2 client, a content-addressed store
shared by all pods, layer unpacking into overlayfs lower directories, import, build, push and GC.

    store = ImageStore(data_dir / "images")
    image = await store.ensure("127.0.0.1:5000/busybox:1", policy="IfNotPresent",
                               auths=auths_from_dockerconfig(secret_data))
    image.layer_dirs   # overlayfs lowerdirs, lowest first
    image.config       # entrypoint, cmd, env, working_dir, user
"""

from .auth import RegistryAuth, auths_from_dockerconfig
from .errors import (ERR_IMAGE_NEVER_PULL, ERR_IMAGE_PULL, INVALID_IMAGE_NAME, DigestMismatch,
                     ImageError, ImageNotFound, ImagePullError, InvalidReference, LayerError,
                     NotFoundError, RegistryError)
from .gc import DiskUsage
from .manifest import Platform, host_platform
from .model import Image, ImageConfig
from .reference import (Reference, default_pull_policy, is_loopback_registry, normalize_ref,
                        parse_reference, should_pull)
from .store import PULL_POLICIES, ImageStore

__all__ = [
    "DigestMismatch", "DiskUsage", "ERR_IMAGE_NEVER_PULL", "ERR_IMAGE_PULL", "INVALID_IMAGE_NAME",
    "Image", "ImageConfig", "ImageError", "ImageNotFound", "ImagePullError", "ImageStore",
    "InvalidReference", "LayerError", "NotFoundError", "PULL_POLICIES", "Platform", "Reference",
    "RegistryAuth", "RegistryError", "auths_from_dockerconfig", "default_pull_policy",
    "host_platform", "is_loopback_registry", "normalize_ref", "parse_reference", "should_pull",
]
