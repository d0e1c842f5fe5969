"""Real local services for development and tests, started on 127.0.0.1 only.

PostgreSQL, Redis and a Kubernetes control plane (kube-apiserver, etcd, controller-manager,
scheduler and kwok-simulated nodes), all built or installed by the project's own scripts.
"""
