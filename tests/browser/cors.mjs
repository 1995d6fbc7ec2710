// CORS in a real browser: a page served from another loopback origin (a browser app registered
// as a --public client) fetches discovery and the JWKS, signs in through Sigil's login page,
// exchanges the code at /token (authorization code + PKCE) and calls /userinfo, all with fetch()
// from its own origin. The same page served from an unregistered origin may still read discovery
// and the JWKS, but its /token request is refused by the browser.
//
// Usage: node cors.mjs ISSUER CLIENT_ID PAGE_PORT USERNAME PASSWORD
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";

const [issuer, clientId, pagePort, username, password] = process.argv.slice(2);
const appOrigin = `http://127.0.0.1:${pagePort}`; // registered: the redirect URI's origin
const otherOrigin = `http://localhost:${pagePort}`; // same page, an origin nobody registered
const callback = `${appOrigin}/cb`;
const b64url = (buf) => buf.toString("base64url");
const verifier = b64url(randomBytes(32));
const challenge = b64url(createHash("sha256").update(verifier).digest());
const state = b64url(randomBytes(12));

let failures = 0;
let checks = 0;
const check = (ok, what) => {
  checks += 1;
  console.log(`${ok ? "ok" : "FAILED"}: ${what}`);
  if (!ok) failures += 1;
};

// The browser app: one empty page, at / and at the callback.
const server = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end("<!doctype html><title>browser app</title><p>browser app</p>");
});
await new Promise((resolve) => server.listen(Number(pagePort), "127.0.0.1", resolve));

// Runs in the page: fetch and report what the page could read (a CORS refusal is a TypeError).
const tryFetch = async ([url, init]) => {
  try {
    const resp = await fetch(url, init);
    return { ok: true, status: resp.status, body: await resp.text() };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();

  // From the registered origin: discovery and JWKS.
  await page.goto(`${appOrigin}/`);
  const disco = await page.evaluate(tryFetch, [`${issuer}/.well-known/openid-configuration`]);
  check(disco.ok && disco.status === 200 && JSON.parse(disco.body).issuer === issuer,
    "the app reads discovery cross-origin");
  const jwks = await page.evaluate(tryFetch, [`${issuer}/jwks.json`]);
  check(jwks.ok && jwks.status === 200 && JSON.parse(jwks.body).keys.length > 0,
    "the app reads the JWKS cross-origin");

  // Sign in (top-level navigation, no CORS) and land on the app's callback.
  const authorize = `${issuer}/authorize?response_type=code&client_id=${clientId}` +
    `&redirect_uri=${encodeURIComponent(callback)}&scope=openid%20profile&state=${state}` +
    `&nonce=n1&code_challenge=${challenge}&code_challenge_method=S256`;
  await page.goto(authorize);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${callback}**`);
  const back = new URL(page.url());
  check(back.origin === appOrigin && back.searchParams.get("state") === state,
    "the browser returns to the app's origin with the state");
  const code = back.searchParams.get("code");
  check(!!code, "a code is issued");

  // The public client redeems the code from the page: a preflighted POST (no secret).
  const tokenResp = await page.evaluate(tryFetch, [`${issuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: callback,
      client_id: clientId, code_verifier: verifier }).toString(),
  }]);
  const tokens = tokenResp.ok ? JSON.parse(tokenResp.body) : {};
  check(tokenResp.ok && tokenResp.status === 200 && !!tokens.access_token && !!tokens.id_token,
    `the app exchanges the code at /token from its origin (${tokenResp.error ?? tokenResp.status})`);

  const info = await page.evaluate(tryFetch, [`${issuer}/userinfo`, {
    headers: { authorization: `Bearer ${tokens.access_token}` },
  }]);
  check(info.ok && info.status === 200 && JSON.parse(info.body).preferred_username === username,
    "the app calls /userinfo with the bearer token (preflighted)");

  // The same page from an origin no client registered.
  await page.goto(`${otherOrigin}/`);
  const otherDisco = await page.evaluate(tryFetch, [`${issuer}/jwks.json`]);
  check(otherDisco.ok && otherDisco.status === 200, "any origin may read the JWKS");
  const refused = await page.evaluate(tryFetch, [`${issuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: "x", redirect_uri: callback,
      client_id: clientId, code_verifier: verifier }).toString(),
  }]);
  check(!refused.ok, `an unregistered origin cannot call /token (${refused.error ?? refused.status})`);
  const refusedInfo = await page.evaluate(tryFetch, [`${issuer}/userinfo`, {
    headers: { authorization: `Bearer ${tokens.access_token}` },
  }]);
  check(!refusedInfo.ok, "an unregistered origin cannot read /userinfo, even with a valid token");
} finally {
  await browser.close();
  server.close();
}
console.log(`browser cors: ${checks - failures} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
