"""Client certificates for the real node's components, signed by the cluster's own CA (openssl)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml


def issue_client_cert(
    ca_dir: Path, out_dir: Path, name: str, *, common_name: str, organization: str | None = None
) -> tuple[Path, Path]:
    """`name.crt`/`name.key` in `out_dir`: a one-year client certificate for `common_name`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    key, csr, cert = (out_dir / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    subject = (f"/O={organization}" if organization else "") + f"/CN={common_name}"
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-subj", subject, "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "ca.crt"), "-CAkey",
        str(ca_dir / "ca.key"), "-CAcreateserial", "-days", "365", "-out", str(cert),
    )  # fmt: skip
    key.chmod(0o600)
    csr.unlink()
    return cert, key


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def write_kubeconfig(
    path: Path, *, server: str, ca: Path, cert: Path, key: Path, user: str
) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
