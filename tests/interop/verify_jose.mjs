// Verify Sigil access tokens with `jose` (panva) against the served JWKS.
// Usage: node verify_jose.mjs ISSUER AUDIENCE TOKEN...   (exit 0 when every token verifies)
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from "jose";

const [issuer, audience, ...tokens] = process.argv.slice(2);
const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
for (const token of tokens) {
  const header = decodeProtectedHeader(token);
  const { payload } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: "at+jwt",
    algorithms: [header.alg],
    requiredClaims: ["exp", "iat", "sub", "jti"],
  });
  if (payload.client_id !== payload.sub) throw new Error("client_id != sub");
  console.log(`jose: ${header.alg} token verified (kid ${header.kid})`);
}
