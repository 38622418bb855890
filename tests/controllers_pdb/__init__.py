"""PodDisruptionBudgets: the disruption controller, the eviction subresource, the pod GC."""
