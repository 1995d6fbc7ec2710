"""Verify Sigil access tokens with PyJWT against the served JWKS (discovery -> jwks_uri).

Usage: python3 verify_pyjwt.py ISSUER AUDIENCE TOKEN...   (exit 0 when every token verifies)
"""
import json
import sys
import urllib.request

import jwt  # PyJWT


def main() -> int:
    issuer, audience, tokens = sys.argv[1], sys.argv[2], sys.argv[3:]
    with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as resp:
        jwks_uri = json.load(resp)["jwks_uri"]
    client = jwt.PyJWKClient(jwks_uri)
    for token in tokens:
        key = client.get_signing_key_from_jwt(token)
        header = jwt.get_unverified_header(token)
        assert header["typ"] == "at+jwt", header
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[header["alg"]],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
        assert claims["client_id"] == claims["sub"], claims
        print(f"pyjwt: {header['alg']} token verified (kid {header['kid']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
