"""Admission control: an ordered chain of plugins between validation and storage.

See :mod:`.chain` for the order and the plugin interface; one module per plugin:
:mod:`.namespace_lifecycle`, :mod:`.limitranger`, :mod:`.resourcequota` (with the pure
:mod:`kybernetes.api.quota`), :mod:`.podsecurity` (with :mod:`.podsecurity_checks`), :mod:`.priority`,
:mod:`.webhooks` (with :mod:`.webhook_rules`); :mod:`.cache` keeps their configuration objects.
"""

from .chain import AdmissionChain, Attributes, Plugin, forbidden, request_user

__all__ = ["AdmissionChain", "Attributes", "Plugin", "forbidden", "request_user"]
