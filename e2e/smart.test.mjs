// SMART on FHIR with clients this project did not write, against the demo:
// the SMART JS client (npm fhirclient) in Chromium runs a standalone
// launch with PKCE; Maria signs in with her password and authenticator,
// unticks her medicines on the authorization screen, and the app reads
// her Patient and her A1c results and is refused her medicines (403); she
// disconnects it on her connected apps page and the app's next request
// fails. openid-client (npm) runs the code flow as a confidential app,
// validates the ID token, refreshes twice, introspects and revokes.
// axe-core on the authorization screen and the connected apps page in
// English and Spanish, at 375 and 1280 px.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { startServer, newDataDir, addClient, launchBrowser, watchConsole, axeViolations, totp } from './harness.mjs';

let server, browser, app, diary, confidential;

// A tiny app server: the SMART JS client's browser build, a launch page
// and the page it returns to, at an origin of its own.
function startApp() {
  const bundle = readFileSync(new URL('./node_modules/fhirclient/build/fhir-client.js', import.meta.url));
  const pages = {};
  const srv = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/fhir-client.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(bundle);
    } else if (pages[path]) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(pages[path]());
    } else {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('back at the app');
    }
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    const origin = `http://127.0.0.1:${srv.address().port}`;
    resolve({ origin, pages, close: () => srv.close() });
  }));
}

before(async () => {
  app = await startApp();
  const dir = newDataDir();
  diary = addClient(dir, ['--name', 'Health Diary', '--public', '--redirect-uri', `${app.origin}/app.html`, '--origin', app.origin]);
  confidential = addClient(dir, ['--name', 'Care Summary', '--secret', '--redirect-uri', `${app.origin}/cb`]);
  server = await startServer(['--demo'], dir);
  browser = await launchBrowser();
  const iss = `${server.url}fhir/R4`;
  app.pages['/launch.html'] = () => `<!doctype html><html lang="en"><head><title>Health Diary</title><script src="/fhir-client.js"></script></head>
<body><main><h1>Health Diary</h1></main><script>
FHIR.oauth2.authorize({ clientId: ${JSON.stringify(diary.id)}, scope: 'openid fhirUser launch/patient offline_access patient/*.rs',
  redirectUri: '/app.html', iss: ${JSON.stringify(iss)}, pkceMode: 'required' });
</script></body></html>`;
  app.pages['/app.html'] = () => `<!doctype html><html lang="en"><head><title>Health Diary</title><script src="/fhir-client.js"></script></head>
<body><main><h1>Health Diary</h1><pre id="out"></pre></main><script>
FHIR.oauth2.ready().then(async (client) => {
  const out = { patient: client.patient.id, scope: client.state.tokenResponse.scope, token: client.state.tokenResponse.access_token };
  const me = await client.patient.read();
  out.family = me.name && me.name[0].family;
  const a1c = await client.request('Observation?patient=' + client.patient.id + '&code=4548-4');
  out.a1c = (a1c.entry || []).map((e) => e.resource.code.coding[0].code);
  try { await client.request('MedicationRequest?patient=' + client.patient.id); out.medicines = 'allowed'; }
  catch (e) { out.medicines = e.status || e.statusCode || String(e); }
  document.getElementById('out').textContent = JSON.stringify(out);
}).catch((e) => { document.getElementById('out').textContent = JSON.stringify({ error: String(e) }); });
</script></body></html>`;
});

after(async () => {
  await browser?.close();
  await server?.stop();
  app?.close();
});

async function accessible(page, what) {
  assert.deepEqual(await axeViolations(page), [], `${what}: axe-core violations`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${what}: the page scrolls sideways by ${overflow}px`);
}

// signInForApp answers the sign-in an app's request leads to: password,
// then the authenticator code, back to the authorization screen.
async function signInForApp(page, email) {
  await page.waitForURL(/\/signin\?return=/);
  await page.fill('#email', email);
  await page.fill('#password', 'demo portal passphrase');
  await page.click('form[action^="/signin"] button[type=submit]');
  await page.waitForURL(/\/signin\/verify\?return=/);
  await page.fill('#code', totp('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'));
  await page.click('#stepup-form button[type=submit]');
  await page.waitForURL(/\/oauth\/consent\?request=/);
}

test('the SMART JS client connects with what Maria leaves ticked, and stops when she disconnects it', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 900 }, locale: 'en-US' });
  const page = await context.newPage();
  const problems = watchConsole(page);
  await page.goto(`${app.origin}/launch.html`);
  await signInForApp(page, 'maria@demo.carefront.example');
  const screen = page.url();
  await page.getByRole('heading', { name: 'Health Diary wants to see your health record' }).waitFor();
  assert.ok(await page.getByText('Reviewed by your clinic').isVisible());
  for (const kind of ['profile', 'medications', 'results', 'conditions']) {
    assert.ok(await page.locator(`#kind-${kind}`).isChecked(), `${kind} starts ticked`);
  }
  await accessible(page, 'authorization screen at 375 px');
  await page.goto(`${screen}&lang=es`);
  await page.getByRole('heading', { name: 'Health Diary quiere ver su expediente de salud' }).waitFor();
  await accessible(page, 'authorization screen in Spanish');
  await page.setViewportSize({ width: 1280, height: 900 });
  await accessible(page, 'authorization screen in Spanish at 1280 px');
  await page.goto(`${screen}&lang=en`);

  // With the keyboard: untick medicines, then Allow.
  await page.locator('#kind-medications').focus();
  await page.keyboard.press('Space');
  assert.equal(await page.locator('#kind-medications').isChecked(), false);
  await page.getByRole('button', { name: 'Allow' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(`${app.origin}/app.html**`);
  await page.locator('#out:not(:empty)').waitFor();
  const out = JSON.parse(await page.locator('#out').textContent());
  assert.equal(out.error, undefined, `the app failed: ${out.error}`);
  assert.equal(out.patient, 'demo-maria');
  assert.equal(out.family, 'Ortega-Demo');
  assert.ok(out.a1c.length > 0 && out.a1c.every((c) => c === '4548-4'), `A1c results: ${out.a1c}`);
  assert.equal(out.medicines, 403, 'her medicines, unticked, are refused');
  assert.ok(!/MedicationRequest|patient\/\*\.rs/.test(out.scope), `granted ${out.scope}`);

  // The connected apps page lists it; Disconnect stops it at once.
  await page.goto(`${server.url}sharing/apps`);
  await page.getByRole('heading', { name: 'Health Diary' }).waitFor();
  await accessible(page, 'connected apps page');
  await page.goto(`${server.url}sharing/apps?lang=es`);
  await accessible(page, 'connected apps page in Spanish');
  await page.setViewportSize({ width: 375, height: 900 });
  await accessible(page, 'connected apps page in Spanish at 375 px');
  await page.goto(`${server.url}sharing/apps?lang=en`);
  await page.getByRole('button', { name: /Disconnect/ }).click();
  await page.waitForURL(/done=disconnected/);
  await page.getByText('Earlier connections').waitFor();

  // The app's next request with the token it holds fails.
  const res = await fetch(`${server.url}fhir/R4/Patient/demo-maria`, { headers: { Authorization: `Bearer ${out.token}` } });
  const status = res.status;
  assert.equal(status, 401, 'the access token after disconnecting');
  assert.deepEqual(problems.filter((p) => !/401|403|Failed to load resource/.test(p)), [], 'console errors');
  await context.close();
});

test('openid-client runs the code flow, validates the ID token, refreshes twice, introspects and revokes', async () => {
  const config = await oidc.discovery(new URL(server.url), confidential.id, confidential.secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: `${app.origin}/cb`, scope: 'openid fhirUser launch/patient offline_access patient/Observation.rs patient/Patient.rs',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce, aud: `${server.url}fhir/R4`,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(url.href);
  await signInForApp(page, 'walter@demo.carefront.example');
  await page.getByRole('heading', { name: 'Care Summary wants to see your health record' }).waitFor();
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${app.origin}/cb**`);
  const back = new URL(page.url());
  await context.close();

  const tokens = await oidc.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  const claims = tokens.claims();
  assert.equal(claims.fhirUser, `${server.url}fhir/R4/Patient/demo-walter`);
  assert.equal(tokens.patient, 'demo-walter');
  assert.ok(tokens.refresh_token, 'a refresh token');
  let current = tokens;
  for (let i = 0; i < 2; i++) {
    const next = await oidc.refreshTokenGrant(config, current.refresh_token);
    assert.notEqual(next.refresh_token, current.refresh_token, 'the refresh token rotates');
    assert.notEqual(next.access_token, current.access_token);
    current = next;
  }
  const info = await oidc.tokenIntrospection(config, current.access_token);
  assert.equal(info.active, true);
  assert.equal(info.client_id, confidential.id);
  assert.equal(info.patient, 'demo-walter');
  assert.match(info.scope, /patient\/Observation\.rs/);
  // Revoking the refresh token (RFC 7009) ends its access token too.
  await oidc.tokenRevocation(config, current.refresh_token);
  assert.equal((await oidc.tokenIntrospection(config, current.access_token)).active, false, 'revoked');
  await assert.rejects(oidc.refreshTokenGrant(config, current.refresh_token), (e) => e.error === 'invalid_grant');
});
