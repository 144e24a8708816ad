"""Verifies a warrant with PyJWT against a Probity JWKS file.

usage: pyjwt_verify.py JWKS_FILE AUDIENCE TOKEN

Exit 0 and prints the claims as JSON when PyJWT accepts the token; exit 1 with PyJWT's reason
otherwise.
"""
import json
import sys

import jwt  # PyJWT

REQUIRED = ["iss", "sub", "aud", "jti", "iat", "nbf", "exp"]


def main() -> int:
    jwks_file, audience, token = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(jwks_file, encoding="utf-8") as f:
        jwks = jwt.PyJWKSet.from_json(f.read())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    try:
        claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience=audience,
                            options={"require": REQUIRED})
    except jwt.InvalidTokenError as error:
        print("PyJWT refused: %s" % error, file=sys.stderr)
        return 1
    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
