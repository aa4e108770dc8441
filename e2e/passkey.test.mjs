// Passkeys and step-up in a real browser. Chromium's virtual authenticator
// (DevTools protocol WebAuthn.addVirtualAuthenticator) stands in for a
// phone's platform authenticator: it holds discoverable credentials and
// verifies the user. The server runs with a 10-second step-up window so
// the step-up test does not wait five minutes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchConsole, axeViolations, totp, newMail } from './harness.mjs';

const DEMO_KEY = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const DEMO_PASSWORD = 'demo portal passphrase';
let server, browser;

before(async () => {
  server = await startServer(['--demo', '--step-up-age', '10s']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// Answers with 401/403/422 are expected where a test provokes them.
const unexpected = (problems) => problems.filter((p) => !/status of (401|403|422) /.test(p));

async function accessible(page, what) {
  const v = await axeViolations(page);
  assert.deepEqual(v, [], `${what}: axe-core violations`);
}

async function phoneWithAuthenticator(lang) {
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, locale: lang === 'es' ? 'es-MX' : 'en-US' });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return { page, cdp, authenticatorId };
}

// A code works once per account: wait for the next 30-second step.
async function nextCode(after) {
  const step = (t) => Math.floor(t / 30000);
  while (step(Date.now()) <= step(after)) await new Promise((r) => setTimeout(r, 250));
  return totp(DEMO_KEY);
}

async function signIn(page, email) {
  await page.goto(`${server.url}signin`);
  await page.fill('#email', email);
  await page.fill('#password', DEMO_PASSWORD);
  await page.click('form[action="/signin"] button[type=submit]');
  await page.waitForURL(/\/signin\/verify$/);
  const at = Date.now();
  await page.fill('#code', totp(DEMO_KEY, at));
  await page.click('#stepup-form button[type=submit]');
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  return at;
}

test('passkey: add one, sign in with it alone, and use it as the second step', async () => {
  const { page, cdp, authenticatorId } = await phoneWithAuthenticator('en');
  const problems = watchConsole(page);
  await signIn(page, 'dana@demo.carefront.example');

  await page.goto(`${server.url}account/security`);
  assert.ok(await page.locator('.cf-passkey-unsupported').isHidden(), 'a WebAuthn browser is not told passkeys are unsupported');
  await page.fill('#passkey-name', 'Test phone');
  await page.click('form[data-passkey-register] button[type=submit]');
  await page.waitForSelector('tbody th:has-text("Test phone")');
  await accessible(page, 'account security with a passkey');
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1, 'one credential on the authenticator');
  assert.ok(credentials[0].isResidentCredential, 'the passkey is discoverable');

  // Sign out, then sign in with the passkey alone from the email field's
  // autofill (conditional mediation): Chromium's virtual authenticator
  // picks the only passkey as a person would from the list.
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  await page.goto(`${server.url}signin`);
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  assert.ok(await page.getByRole('button', { name: 'Sign out' }).first().isVisible(), 'signed in from the autofill');

  // The button, as in browsers without passkey autofill.
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  await page.addInitScript(() => { PublicKeyCredential.isConditionalMediationAvailable = async () => false; });
  await page.goto(`${server.url}signin`);
  await accessible(page, 'sign-in page with the passkey button');
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  assert.ok(await page.getByRole('button', { name: 'Sign out' }).first().isVisible(), 'signed in with the passkey alone');
  await page.goto(`${server.url}account/security`);
  assert.equal(await page.locator('tbody tr:has-text("Test phone") time').count(), 2, 'added and last used are both shown');

  // Password, then the passkey as the second step.
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  await page.goto(`${server.url}signin`);
  await page.fill('#email', 'dana@demo.carefront.example');
  await page.fill('#password', DEMO_PASSWORD);
  await page.click('form[action="/signin"] button[type=submit]');
  await page.waitForURL(/\/signin\/verify$/);
  await accessible(page, 'verify page with the passkey button');
  await page.getByRole('button', { name: 'Use your passkey' }).click();
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  const signCount = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0].signCount;
  assert.ok(signCount >= 3, `the authenticator signed three times (count ${signCount})`);
  assert.deepEqual(unexpected(problems), []);
  await page.context().close();
});

test('step-up returns to the action with what was typed (es)', async () => {
  const { page } = await phoneWithAuthenticator('es');
  const problems = watchConsole(page);
  const at = await signIn(page, 'linda@demo.carefront.example');
  await page.goto(`${server.url}account/email`);
  await accessible(page, 'change email (es)');
  // Past the 10-second step-up window, and into a fresh code's step.
  await new Promise((r) => setTimeout(r, 11000));
  const code = await nextCode(at);
  await page.fill('#email', 'linda.nueva@demo.carefront.example');
  await page.click('form[action="/account/email"] button[type=submit]');
  await page.waitForSelector('h1:has-text("Confirme que es usted")');
  await accessible(page, 'step-up in place (es)');
  assert.equal(await page.inputValue('#stepup-form input[name=email]'), 'linda.nueva@demo.carefront.example', 'the typed address is carried');
  await page.fill('#code', code);
  await page.click('#stepup-form button[type=submit]');
  // Back at the action, which went on: a code was sent to the new address.
  await page.waitForSelector('form[action="/account/email/confirm"]');
  assert.match(await page.textContent('main .usa-alert--info'), /linda\.nueva@demo\.carefront\.example/);
  await accessible(page, 'email code form (es)');

  const outbox = await page.context().newPage();
  const mail = await newMail(outbox, server, 'linda.nueva@demo.carefront.example');
  const emailed = /\b(\d{6})\b/.exec(mail)[1];
  await outbox.close();
  await page.fill('#code', emailed);
  await page.click('form[action="/account/email/confirm"] button[type=submit]');
  await page.waitForSelector('main .usa-alert--success');
  assert.match(await page.textContent('main .usa-alert--success'), /linda\.nueva@demo\.carefront\.example/);
  await accessible(page, 'email changed (es)');
  assert.deepEqual(unexpected(problems), []);
  await page.context().close();
});

test('authenticator setup page offers a passkey first (es), with no axe violations', async () => {
  const { page } = await phoneWithAuthenticator('es');
  await signIn(page, 'walter@demo.carefront.example');
  await page.goto(`${server.url}mfa/setup`);
  assert.ok(await page.locator('form[data-passkey-register]').isVisible(), 'passkey option shown');
  await accessible(page, 'second-factor setup with passkey (es)');
  await page.context().close();
});

test('every identity page has no axe violations, in English and Spanish, on a phone', async () => {
  const { page } = await phoneWithAuthenticator('en');
  const problems = watchConsole(page);
  // Pages for someone signed out, including the answers to bad links.
  const signedOut = ['signin', 'activate', 'forgot', 'reset?token=not-a-token', 'staff/setup?code=not-a-code'];
  for (const lang of ['en', 'es']) {
    for (const path of signedOut) {
      await page.goto(`${server.url}${path}${path.includes('?') ? '&' : '?'}lang=${lang}`);
      assert.equal(await page.getAttribute('html', 'lang'), lang);
      await accessible(page, `${path} (${lang})`);
    }
  }
  await page.goto(`${server.url}signin`);
  assert.equal(await page.getAttribute('#email', 'autocomplete'), 'username webauthn', 'the email field offers passkeys in autofill');
  // The second step, then the pages of a signed-in person.
  await page.goto(`${server.url}signin?lang=en`);
  await page.fill('#email', 'maria@demo.carefront.example');
  await page.fill('#password', DEMO_PASSWORD);
  await page.click('form[action="/signin"] button[type=submit]');
  await page.waitForURL(/\/signin\/verify$/);
  for (const lang of ['en', 'es']) {
    await page.goto(`${server.url}signin/verify?lang=${lang}`);
    await accessible(page, `verify (${lang})`);
  }
  await page.fill('#code', totp(DEMO_KEY));
  await page.click('#stepup-form button[type=submit]');
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  for (const lang of ['en', 'es']) {
    for (const path of ['account/security', 'account/password', 'account/email', 'mfa/setup']) {
      await page.goto(`${server.url}${path}?lang=${lang}`);
      assert.equal(await page.getAttribute('html', 'lang'), lang);
      await accessible(page, `${path} (${lang})`);
    }
  }
  // Step-up in place, in both languages (the window is 10 seconds here).
  await new Promise((r) => setTimeout(r, 11000));
  for (const lang of ['en', 'es']) {
    await page.goto(`${server.url}account/email?lang=${lang}`);
    await page.fill('#email', `maria.${lang}@demo.carefront.example`);
    await page.click('form[action="/account/email"] button[type=submit]');
    await page.waitForSelector('#stepup-form input[name=stepup_code]');
    await accessible(page, `step-up (${lang})`);
  }
  assert.deepEqual(unexpected(problems).filter((p) => !/status of 404 /.test(p)), []);
  await page.context().close();
});
