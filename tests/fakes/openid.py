"""A fake Bot Framework OpenID metadata endpoint and a key to sign channel tokens with.

botbuilder fetches the metadata and keys with a blocking ``requests.get`` inside a
coroutine, so a fake served by the test's own event loop would deadlock: this one runs
``http.server`` in its own thread.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://api.botframework.com"
APP_ID = "00000000-aaaa-4bbb-8ccc-123456789abc"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class OpenIdServer:
    url: str
    key: rsa.RSAPrivateKey
    kid: str

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def token(
        self,
        service_url: str,
        *,
        key: Any = None,
        audience: str = APP_ID,
        issuer: str = ISSUER,
        expires_in: int = 3600,
        kid: str | None = None,
        algorithm: str = "RS256",
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "serviceurl": service_url,
            "nbf": now - 60,
            "iat": now - 60,
            "exp": now + expires_in,
        }
        signing_key = key or self.key
        return jwt.encode(
            claims, signing_key, algorithm=algorithm, headers={"kid": kid or self.kid}
        )


def unsigned_token(service_url: str) -> str:
    """``alg: none``: a token anyone can write."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": APP_ID,
        "serviceurl": service_url,
        "nbf": now - 60,
        "exp": now + 3600,
    }
    return jwt.encode(claims, None, algorithm="none")


@contextmanager
def openid_server(
    endorsements: tuple[str, ...] = ("msteams", "emulator", "webchat"),
) -> Iterator[OpenIdServer]:
    key = new_key()
    kid = uuid.uuid4().hex
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "endorsements": list(endorsements)})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path.endswith("/.well-known/openid-configuration"):
                body = {
                    "issuer": ISSUER,
                    "jwks_uri": f"{base}/keys",
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                }
            elif self.path == "/keys":
                body = {"keys": [jwk]}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield OpenIdServer(f"http://127.0.0.1:{server.server_address[1]}", key, kid)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
