// A certified OpenID Connect relying party that Sigil did not write — panva's openid-client —
// logs in against a real `sigil serve`: discovery, authorization URL with PKCE and nonce, the
// login form (a minimal cookie-keeping browser), code exchange with ID token validation and
// the RFC 9207 `iss` check, userinfo, refresh.
//
// Usage: node openid_client.mjs ISSUER CLIENT_ID CLIENT_SECRET USERNAME PASSWORD
import * as client from "openid-client";

const [issuer, clientId, clientSecret, username, password] = process.argv.slice(2);
const redirectUri = "https://app.example/cb";
let failures = 0;
let passes = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok" : "FAILED"}: ${what}`);
  if (ok) passes += 1; else failures += 1;
};

const config = await client.discovery(new URL(issuer), clientId, clientSecret, undefined, {
  execute: [client.allowInsecureRequests], // loopback http in tests only
});
check(config.serverMetadata().issuer === issuer, "discovery");

const verifier = client.randomPKCECodeVerifier();
const challenge = await client.calculatePKCECodeChallenge(verifier);
const state = client.randomState();
const nonce = client.randomNonce();
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: "openid profile email",
  code_challenge: challenge,
  code_challenge_method: "S256",
  state,
  nonce,
});

// A minimal browser: keep cookies, follow nothing.
const jar = new Map();
const remember = (resp) => {
  for (const c of resp.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const [name, ...rest] = pair.split("=");
    jar.set(name.trim(), rest.join("="));
  }
};
const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
const page = await fetch(url, { redirect: "manual" });
remember(page);
const html = await page.text();
const field = (name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
const posted = await fetch(`${issuer}/login`, {
  method: "POST",
  redirect: "manual",
  headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookieHeader() },
  body: new URLSearchParams({ authz: field("authz"), csrf: field("csrf"), username, password }),
});
check(posted.status === 303, "login form accepted");
const callback = new URL(posted.headers.get("location"));

const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
check(claims.preferred_username === username, "ID token validated, preferred_username");
check(typeof tokens.access_token === "string" && tokens.token_type.toLowerCase() === "bearer", "access token");

const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
check(info.sub === claims.sub && info.email === `${username}@example.com`, "userinfo");

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
check(!!refreshed.access_token && refreshed.refresh_token !== tokens.refresh_token, "refresh rotates");

console.log(`openid-client: ${passes} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
