"""Issues a warrant with an implementation independent of Probity's.

usage: python_issue.py pyjwt|cryptography JWKS_OUT AUDIENCE NOW

Generates a fresh Ed25519 key with `cryptography`, writes its public JWK (with the issuer as
member "iss") to JWKS_OUT, and prints a token signed either with PyJWT or by assembling the
compact JWS by hand and signing with `cryptography` alone.
"""
import base64
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ISSUER = "python-authority"
KID = "python-key-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def main() -> int:
    mode, jwks_out, audience, now = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    key = Ed25519PrivateKey.generate()
    public_raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(public_raw), "kid": KID, "iss": ISSUER}
    with open(jwks_out, "w", encoding="utf-8") as out:
        json.dump({"keys": [jwk]}, out)
    claims = {
        "iss": ISSUER, "sub": "investigator-py", "aud": [audience, "another-deployment"],
        "jti": "py-" + mode, "iat": now, "nbf": now, "exp": now + 600,
        "case": "CASE-PY-1", "purpose": "interoperability test",
        "collections": ["gallery-a"], "max_queries": 3, "max_k": 7,
    }
    if mode == "pyjwt":
        import jwt  # PyJWT
        token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": KID})
    elif mode == "cryptography":
        header = {"alg": "EdDSA", "typ": "JWT", "kid": KID}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        token = signing_input + "." + b64url(key.sign(signing_input.encode("ascii")))
    else:
        print("unknown mode " + mode, file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
