"""The kubelet: registers a Node, keeps its Lease fresh, and runs the pods bound to it.

    main.py       ``kyb kubelet --runtime runc|process``: assembles the parts below
    agent.py      Kubelet: registration, Lease, pod informer, PLEG-like relist, orphans, static pods
    podworker.py  one worker per pod UID (sync -> terminating -> terminated; latest update wins)
    podsync.py    one pod's sync / terminate / cleanup against the runtime
    actions.py    compute_pod_actions: what to start, kill, restart, and the back-off (pure)
    podstatus.py  the API PodStatus from runtime state and probe results (pure)
    prober.py     liveness / readiness / startup probes; hooks.py: postStart / preStop
    volumes.py    volume set-up and refresh; envvars.py: env and command; podfiles.py: DNS, hosts
    source.py     ConfigMaps, Secrets, PVCs, Services and tokens for a pod (the ObjectSource)
    static.py     static pods from a manifest directory and their mirror pods
    server.py     the kubelet's HTTPS server (logs, exec, attach, port-forward, stats); logs.py
    stats.py      CPU and memory of the node and its containers (Summary API)
    nodeinfo.py   the real Node's capacity, nodeInfo and conditions from /proc
    runtime/      the CRI-like protocol and the runc, process and in-memory runtimes
    images/       registry client and content-addressed image store
    network/      CNI networking
    node.py, lease.py, status.py, fake.py   the Node object and Lease helpers, and the fake
                  (simulated) kubelet: ``python -m kybernetes.kubelet.fake --kubeconfig F --nodes N``

Nothing is imported here, so ``python -m kybernetes.kubelet.fake`` runs cleanly.
"""
