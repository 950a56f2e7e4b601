"""A sealed-transport client of coffer in a few lines of Python, with
pyhpke (an HPKE implementation independent of coffer's) and the standard
library: writes a value sealed to the server's transport key, and reads
one sealed to a one-time key of its own.

    sealed_client.py put ADDR NAMESPACE NAME VALUE   (token in COFFER_TOKEN)
    sealed_client.py get ADDR NAMESPACE NAME
"""

import base64
import json
import os
import sys
import time
import urllib.request

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

SUITE = CipherSuite.new(
    KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM
)
b64, unb64 = base64.b64encode, base64.b64decode


def call(method, url, body=None, headers=None):
    request = urllib.request.Request(url, method=method, data=body)
    request.add_header("Authorization", "Bearer " + os.environ["COFFER_TOKEN"])
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def put(addr, namespace, name, value):
    key = call("GET", f"{addr}/v1/sys/transport-key")
    path, now = f"/v1/secrets/{namespace}/{name}", int(time.time())
    aad = f"coffer.sealed-request.v1\nPUT\n{path}\n{now}\n{key['kid']}".encode()
    server = SUITE.kem.deserialize_public_key(unb64(key["public_key"]))
    enc, sender = SUITE.create_sender_context(server, info=b"coffer sealed request v1")
    ciphertext = sender.seal(json.dumps({"value": value}).encode(), aad=aad)
    sealed = {"kid": key["kid"], "enc": b64(enc).decode(), "timestamp": now,
              "ciphertext": b64(ciphertext).decode()}
    body = json.dumps({"sealed": sealed}).encode()
    print(call("PUT", addr + path, body)["version"])


def get(addr, namespace, name):
    keys = call("GET", f"{addr}/v1/sys/transport-key")
    servers = {k["kid"]: k["public_key"] for k in [keys] + keys["previous"]}
    mine = X25519PrivateKey.generate()  # one read, one key
    public = KEMKey.from_pyca_cryptography_key(mine.public_key()).to_public_bytes()
    path = f"/v1/secrets/{namespace}/{name}"
    answer = call("GET", addr + path, headers={"Coffer-Seal-To": b64(public).decode()})
    sealed = answer["sealed"]
    aad = f"coffer.sealed-response.v1\nGET\n{path}\n{answer['version']}\n{sealed['kid']}"
    server = SUITE.kem.deserialize_public_key(unb64(servers[sealed["kid"]]))
    recipient = SUITE.create_recipient_context(
        unb64(sealed["enc"]), KEMKey.from_pyca_cryptography_key(mine),
        info=b"coffer sealed response v1", pks=server)
    print(recipient.open(unb64(sealed["ciphertext"]), aad=aad.encode()).decode())


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"put": put, "get": get}[command](*args)
