"""The kubelet: registers a Node, keeps its Lease fresh, and runs the pods bound to it.

    node.py     the Node object: labels, capacity, conditions, nodeInfo (pure)
    lease.py    the node Lease in kube-node-lease (build/renew)
    status.py   simulated pod status and the per-pod decision of the fake runtime (pure)
    fake.py     FakeKubelet: one process simulating many nodes; ``run_fake_kubelet`` entry point,
                ``python -m kybernetes.kubelet.fake --kubeconfig F --nodes N``

Nothing is imported here, so ``python -m kybernetes.kubelet.fake`` runs cleanly.
"""
