from tests.e2e.conftest import cluster  # noqa: F401 - CSRs are tested against kyb up with the real kubectl
