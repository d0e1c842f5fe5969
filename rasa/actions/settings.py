"""Every setting the action server reads from the environment, in one place.

In Kubernetes these come from the Deployment's env; the DataJud API key comes from a Secret
(``secretKeyRef``), never from a ConfigMap or the custom resource.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATAJUD_BASE_URL = "https://api-publica.datajud.cnj.jus.br"
# Next to the actions package in the repo and in the action-server image (/app/knowledge).
DEFAULT_KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"


@dataclass(frozen=True)
class Settings:
    datajud_base_url: str
    datajud_api_key: str
    datajud_timeout_s: float
    datajud_attempts: int
    knowledge_dir: Path
    knowledge_threshold: float

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            datajud_base_url=env.get("DATAJUD_BASE_URL", DEFAULT_DATAJUD_BASE_URL).rstrip("/"),
            datajud_api_key=env.get("DATAJUD_API_KEY", ""),
            datajud_timeout_s=float(env.get("DATAJUD_TIMEOUT_SECONDS", "8")),
            datajud_attempts=int(env.get("DATAJUD_ATTEMPTS", "3")),
            knowledge_dir=Path(env.get("KNOWLEDGE_DIR", str(DEFAULT_KNOWLEDGE_DIR))),
            knowledge_threshold=float(env.get("KNOWLEDGE_MIN_CONFIDENCE", "0.55")),
        )
