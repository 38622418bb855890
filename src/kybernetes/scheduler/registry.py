"""Plugin name -> factory, and the default profile (which plugins run, with what score weight)
as data, matching upstream's v1 defaults for 1.32 (of the storage plugins only VolumeBinding, and
no DRA)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kybernetes.scheduler.framework.interfaces import PluginConfig
from kybernetes.scheduler.framework.runtime import Framework
from kybernetes.scheduler.plugins import (
    balanced_allocation,
    default_preemption,
    inter_pod_affinity,
    node_affinity,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    scheduling_gates,
    taint_toleration,
    volume_binding,
)

DEFAULT_SCHEDULER_NAME = "default-scheduler"

Factory = Callable[[Any], Any]

REGISTRY: dict[str, Factory] = {
    scheduling_gates.NAME: scheduling_gates.new,
    node_unschedulable.NAME: node_unschedulable.new,
    node_name.NAME: node_name.new,
    taint_toleration.NAME: taint_toleration.new,
    node_affinity.NAME: node_affinity.new,
    node_ports.NAME: node_ports.new,
    node_resources_fit.NAME: node_resources_fit.new,
    pod_topology_spread.NAME: pod_topology_spread.new,
    inter_pod_affinity.NAME: inter_pod_affinity.new,
    default_preemption.NAME: default_preemption.new,
    balanced_allocation.NAME: balanced_allocation.new,
    volume_binding.NAME: volume_binding.new,
}

# Upstream order (filters run in this order) and score weights.
DEFAULT_PLUGINS: tuple[PluginConfig, ...] = (
    PluginConfig(scheduling_gates.NAME, 0),
    PluginConfig(node_unschedulable.NAME, 0),
    PluginConfig(node_name.NAME, 0),
    PluginConfig(taint_toleration.NAME, 3),
    PluginConfig(node_affinity.NAME, 2),
    PluginConfig(node_ports.NAME, 0),
    PluginConfig(node_resources_fit.NAME, 1),
    PluginConfig(volume_binding.NAME, 0),
    PluginConfig(pod_topology_spread.NAME, 2),
    PluginConfig(inter_pod_affinity.NAME, 2),
    PluginConfig(default_preemption.NAME, 0),
    PluginConfig(balanced_allocation.NAME, 1),
)


def new_framework(plugins: Sequence[PluginConfig] = DEFAULT_PLUGINS,
                  scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                  percentage_of_nodes_to_score: int = 0,
                  registry: Mapping[str, Factory] | None = None,
                  rng: random.Random | None = None) -> Framework:
    """Instantiate a profile; ``KeyError`` names an unknown plugin."""
    reg = registry if registry is not None else REGISTRY
    built = []
    for cfg in plugins:
        if cfg.name not in reg:
            raise KeyError(f"plugin {cfg.name!r} is not registered")
        built.append((reg[cfg.name](dict(cfg.args) or None), cfg.weight))
    return Framework(built, scheduler_name, percentage_of_nodes_to_score, rng)
