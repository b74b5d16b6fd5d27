"""A service account key file whose token_uri points at a local token endpoint."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def write_service_account(path: Path, token_uri: str) -> Path:
    """A fresh RSA key in a service account key file (chmod 600) that asks ``token_uri``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "edge-test", "private_key_id": "k1",
        "private_key": pem, "client_email": "agent@edge-test.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": token_uri,
    }))
    path.chmod(0o600)
    return path
