"""Kubernetes operator for the AssistenteDigital custom resource."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("assistente-operator")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

GROUP = "assistente.digital"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "AssistenteDigital"
PLURAL = "assistentesdigitais"
SINGULAR = "assistentedigital"
FIELD_MANAGER = "assistente-operator"
