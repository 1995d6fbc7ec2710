// A real browser logs in through Sigil's login page: wrong password first (generic error shown,
// tied to the fields), then the right one; the browser lands on the client's callback with a
// code, which is exchanged for tokens. Saves a screenshot of the login page under target/.
//
// Usage: node login.mjs ISSUER CLIENT_ID CLIENT_SECRET USERNAME PASSWORD SCREENSHOT_DIR
import { chromium } from "playwright-core";
import { createHash, randomBytes } from "node:crypto";

const [issuer, clientId, clientSecret, username, password, shots] = process.argv.slice(2);
const callback = "http://127.0.0.1:9/cb";
const b64url = (buf) => buf.toString("base64url");
const verifier = b64url(randomBytes(32));
const challenge = b64url(createHash("sha256").update(verifier).digest());
const state = b64url(randomBytes(12));
const url = `${issuer}/authorize?response_type=code&client_id=${clientId}` +
  `&redirect_uri=${encodeURIComponent(callback)}&scope=openid%20profile&state=${state}` +
  `&nonce=n1&code_challenge=${challenge}&code_challenge_method=S256`;

let failures = 0;
let passed = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok" : "FAILED"}: ${what}`);
  if (ok) passed += 1;
  else failures += 1;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  // The callback host does not exist; answer it here and remember what arrived.
  let landed = null;
  await page.route(`${callback}**`, (route) => {
    landed = route.request().url();
    route.fulfill({ status: 200, contentType: "text/plain", body: "callback reached" });
  });

  const first = await page.goto(url);
  check(first.status() === 200, "login page loads");
  check(first.headers()["content-security-policy"]?.includes("frame-ancestors 'none'"), "CSP forbids framing");
  await page.screenshot({ path: `${shots}/login-page.png`, fullPage: true });
  check(await page.getByLabel("Username").isVisible(), "username field has a label");
  check(await page.getByLabel("Password").isVisible(), "password field has a label");

  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password + "-wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForLoadState();
  const alert = page.getByRole("alert");
  check(await alert.isVisible(), "a wrong password shows an error");
  check((await alert.textContent()).includes("Incorrect username or password"), "the error is the generic one");
  check(await page.getByLabel("Username").getAttribute("aria-describedby") === "login-error", "the error is tied to the fields");
  await page.screenshot({ path: `${shots}/login-page-error.png`, fullPage: true });

  // Every text on the page stays readable in both colour schemes (WCAG 2.1 AA: 4.5:1).
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    const ratios = await page.evaluate(() => {
      const rgb = (s) => s.match(/[\d.]+/g).slice(0, 3).map(Number);
      const lum = ([r, g, b]) => {
        const c = [r, g, b].map((v) => {
          v /= 255;
          return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
      };
      const bg = rgb(getComputedStyle(document.body).backgroundColor);
      const out = {};
      for (const sel of ["h1", "p.for", "label", ".error"]) {
        const fg = rgb(getComputedStyle(document.querySelector(sel)).color);
        const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
        out[sel] = Math.round(((a + 0.05) / (b + 0.05)) * 100) / 100;
      }
      return out;
    });
    for (const [sel, ratio] of Object.entries(ratios)) {
      check(ratio >= 4.5, `${scheme} scheme: "${sel}" contrast ${ratio}:1 >= 4.5:1`);
    }
    await page.screenshot({ path: `${shots}/login-page-error-${scheme}.png`, fullPage: true });
  }
  await page.emulateMedia({ colorScheme: null });

  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${callback}**`);
  check(landed !== null, "the browser is redirected to the client's callback");
  const back = new URL(landed);
  check(back.searchParams.get("state") === state, "state is echoed");
  check(back.searchParams.get("iss") === issuer, "iss is sent (RFC 9207)");
  const code = back.searchParams.get("code");
  check(!!code, "a code is issued");

  const resp = await fetch(`${issuer}/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: "Basic " + Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64"),
    },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: callback, code_verifier: verifier }),
  });
  const tokens = await resp.json();
  check(resp.status === 200 && !!tokens.id_token && !!tokens.access_token, "the code is exchanged for tokens");
} finally {
  await browser.close();
}
console.log(`browser: ${passed} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
