"""Errors of the image subsystem.

    ImageError                     anything the image store or registry client reports
    ├── InvalidReference           a string that is not an image reference (also a ValueError)
    ├── RegistryError              the registry answered with an error, or could not be reached
    │   └── NotFoundError          manifest or blob unknown (HTTP 404)
    ├── DigestMismatch             content does not hash to the digest that names it
    ├── LayerError                 a layer tar that is malformed or unsafe to unpack
    ├── ImageNotFound              no such image in the local store
    └── ImagePullError             what the kubelet reports on a container: ``reason`` is
                                   ErrImagePull | ErrImageNeverPull | InvalidImageName

``ImagePullError`` carries a Kubernetes waiting reason so the kubelet can put it on the container
status unchanged (and turn ``ErrImagePull`` into ``ImagePullBackOff`` on retries).
"""

from __future__ import annotations

ERR_IMAGE_PULL = "ErrImagePull"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
INVALID_IMAGE_NAME = "InvalidImageName"


class ImageError(Exception):
    """Base class: a human-readable ``message`` (also ``str(err)``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidReference(ImageError, ValueError):
    """The string does not parse as an image reference."""


class RegistryError(ImageError):
    """A registry request failed; ``status`` is the HTTP status (0 when no response arrived)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(RegistryError):
    """The registry does not know the manifest or blob."""


class DigestMismatch(ImageError):
    """Downloaded or imported content does not match its digest (or its declared size)."""


class LayerError(ImageError):
    """A layer archive cannot be unpacked safely."""


class ImageNotFound(ImageError):
    """The local store has no image by that reference or id."""


class ImagePullError(ImageError):
    """An image could not be made available for a container; ``reason`` is the kubelet's reason."""

    def __init__(self, message: str, reason: str = ERR_IMAGE_PULL) -> None:
        super().__init__(message)
        self.reason = reason

    def __repr__(self) -> str:
        return f"ImagePullError(reason={self.reason!r}, message={self.message!r})"
