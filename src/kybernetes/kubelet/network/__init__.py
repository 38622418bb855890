"""Pod networking for the runc runtime.

    cni.py   CniNetwork: the standard CNI plugins (bridge + host-local IPAM, portmap, loopback)
             invoked per the CNI spec for each pod sandbox's network namespace

The runtime calls ``setup(netns_path, sandbox_id, port_mappings=...)`` after making a sandbox's
network namespace and ``teardown(netns_path, sandbox_id)`` before removing it.
"""
