// Sign-in and activation in a real browser: activation with an invite
// code, date of birth and last name, then an authenticator app; sign-in
// with password and a code; keyboard-only sign-in; axe-core on every
// identity page in English and Spanish on a 375 px phone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchConsole, axeViolations, totp, invite, newMail, outboxTexts } from './harness.mjs';

const DEMO_KEY = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const DEMO_PASSWORD = 'demo portal passphrase';
let server, browser;

before(async () => {
  // Each test is another person: behind a trusted proxy, each context
  // comes from an address of its own, so one test's sign-ins do not
  // spend the next one's sign-in budget (10 at once, then one every 2 s
  // per address).
  server = await startServer(['--demo', '--trusted-proxies', '127.0.0.1/32,::1/128']);
  browser = await launchBrowser();
});

let people = 0;

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function phone(lang) {
  people += 1;
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, locale: lang === 'es' ? 'es-MX' : 'en-US',
    extraHTTPHeaders: { 'X-Forwarded-For': `203.0.113.${people}` } });
  return context.newPage();
}

// Chromium logs a form answered with 401 or 422 as a failed load; those
// answers are expected here, anything else is a problem.
const unexpected = (problems) => problems.filter((p) => !/status of (401|422) /.test(p));

async function accessible(page, what) {
  const v = await axeViolations(page);
  assert.deepEqual(v, [], `${what}: axe-core violations`);
}

// The demo accounts share one authenticator key, and a code works once:
// each test signs in a different account.
const signins = [
  { lang: 'en', email: 'maria@demo.carefront.example', signout: 'Sign out', wrong: 'The email address or password is not right.' },
  { lang: 'es', email: 'walter@demo.carefront.example', signout: 'Cerrar sesión', wrong: 'El correo electrónico o la contraseña no son correctos.' },
];

for (const { lang, email, signout, wrong } of signins) {
  test(`sign in with password and authenticator code (${lang})`, async () => {
    const page = await phone(lang);
    const problems = watchConsole(page);
    await page.goto(`${server.url}signin`);
    assert.equal(await page.getAttribute('html', 'lang'), lang);
    await accessible(page, `sign-in page (${lang})`);

    await page.fill('#email', email);
    await page.fill('#password', 'not the password');
    await page.click('form[action="/signin"] button[type=submit]');
    assert.equal((await page.textContent('main .usa-alert--error .usa-alert__text')).trim(), wrong);
    await accessible(page, `sign-in error (${lang})`);

    await page.fill('#email', email);
    await page.fill('#password', DEMO_PASSWORD);
    await page.click('form[action="/signin"] button[type=submit]');
    await page.waitForURL(/\/signin\/verify$/);
    await accessible(page, `code page (${lang})`);
    await page.fill('#code', totp(DEMO_KEY));
    await page.click('form[action="/signin/verify"] button[type=submit]');
    await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
    assert.ok(await page.getByRole('button', { name: signout }).isVisible(), 'signed in: sign-out button shown');
    await page.goto(`${server.url}account/security`);
    assert.equal(await page.locator('tbody tr').count(), 1, 'one session listed');
    await accessible(page, `account security (${lang})`);
    await page.goto(`${server.url}account/password`);
    assert.ok(await page.locator('#password').isVisible(), 'password change form shown right after sign-in (no step-up)');
    await accessible(page, `change password (${lang})`);
    assert.deepEqual(unexpected(problems), []);
    await page.context().close();
  });
}

test('keyboard only: sign in without a mouse', async () => {
  const page = await phone('en');
  await page.goto(`${server.url}signin`);
  await page.focus('#email');
  await page.keyboard.type('linda@demo.carefront.example');
  await page.keyboard.press('Tab');
  await page.keyboard.type(DEMO_PASSWORD);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/signin\/verify$/);
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'BODY');
  await page.keyboard.press('Tab'); // skip link
  await page.focus('#code');
  await page.keyboard.type(totp(DEMO_KEY));
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  assert.ok(await page.getByRole('button', { name: 'Sign out' }).isVisible());
  await page.context().close();
});

for (const lang of ['en', 'es']) {
  test(`activation with an invite code, then an authenticator app (${lang})`, async () => {
    const code = invite(server, lang === 'en' ? 'Patient/demo-sam' : 'Patient/demo-lily');
    const page = await phone(lang);
    const problems = watchConsole(page);
    await page.goto(`${server.url}activate?code=${code}`);
    await accessible(page, `activation page (${lang})`);
    // The demo population's birth dates are placed around today.
    const now = new Date();
    const years = lang === 'en' ? 15 : 8;
    const dob = new Date(Date.UTC(now.getUTCFullYear() - years, now.getUTCMonth() - 3, now.getUTCDate() - 11));
    await page.fill('#family', 'Lee-Demo');
    await page.fill('#month', String(dob.getUTCMonth() + 1));
    await page.fill('#day', String(dob.getUTCDate()));
    await page.fill('#year', String(dob.getUTCFullYear()));
    await page.fill('#email', `${lang}-activation@example.com`);
    await page.fill('#password', 'password');
    const meter = page.locator('#password-strength');
    assert.equal((await meter.textContent()).trim(), lang === 'en' ? 'Weak: easy to guess' : 'Débil: fácil de adivinar');
    await page.fill('#password2', 'password');
    await page.click('form[action="/activate"] button[type=submit]');
    assert.ok(await page.locator('#password-error').isVisible(), 'common password refused beside its field');
    await accessible(page, `activation error (${lang})`);
    await page.fill('#password', 'four unrelated words here');
    assert.equal((await page.locator('#password-strength').textContent()).trim(), lang === 'en' ? 'Strong' : 'Fuerte');
    await accessible(page, `strength meter (${lang})`);
    await page.fill('#password2', 'four unrelated words here');
    await page.click('form[action="/activate"] button[type=submit]');
    // The address is proven first, with a code sent to it.
    await page.waitForURL(/\/activate\/email$/);
    await accessible(page, `email confirmation (${lang})`);
    const outbox = await page.context().newPage();
    const mail = await newMail(outbox, server, `${lang}-activation@example.com`);
    await outbox.close();
    await page.fill('#code', '000000' === /\b(\d{6})\b/.exec(mail)[1] ? '111111' : '000000');
    await page.click('form[action="/activate/email"] button[type=submit]');
    assert.ok(await page.locator('#code-error').isVisible(), 'a wrong code is refused beside its field');
    await accessible(page, `email confirmation error (${lang})`);
    await page.fill('#code', /\b(\d{6})\b/.exec(mail)[1]);
    await page.click('form[action="/activate/email"] button[type=submit]');
    await page.waitForURL(/\/mfa\/setup$/);
    await accessible(page, `authenticator setup (${lang})`);
    assert.ok(await page.locator('img.cf-qr').isVisible(), 'QR code shown');
    const secret = (await page.textContent('#secret')).replace(/\s/g, '');
    await page.fill('#code', totp(secret));
    await page.click('form[action="/mfa/setup"] button[type=submit]');
    await page.locator('.cf-codes li').first().waitFor();
    assert.equal(await page.locator('.cf-codes li').count(), 10);
    await accessible(page, `recovery codes (${lang})`);
    assert.deepEqual(unexpected(problems), []);
    await page.context().close();
  });
}

test('idle timeout: a warning two minutes before, and staying signed in', async () => {
  const page = await phone('en');
  const problems = watchConsole(page);
  await page.clock.install();
  await page.goto(`${server.url}signin`);
  await page.fill('#email', 'dana@demo.carefront.example');
  await page.fill('#password', DEMO_PASSWORD);
  await page.click('form[action="/signin"] button[type=submit]');
  await page.waitForURL(/\/signin\/verify$/);
  await page.fill('#code', totp(DEMO_KEY));
  await page.click('form[action="/signin/verify"] button[type=submit]');
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
  assert.equal(await page.getAttribute('body', 'data-idle-seconds'), '900');
  const dialog = page.getByRole('dialog', { name: 'Are you still there?' });
  assert.equal(await dialog.isVisible(), false);
  await page.clock.fastForward('12:50');
  assert.equal(await dialog.isVisible(), false, 'no warning before 13 minutes');
  await page.clock.fastForward('00:11');
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'idle-stay', 'focus moves to "Stay signed in"');
  await accessible(page, 'idle warning');
  const keepalive = page.waitForResponse((r) => r.url().endsWith('/session/keepalive'));
  await page.keyboard.press('Enter');
  assert.equal((await keepalive).status(), 204);
  await dialog.waitFor({ state: 'hidden' });
  assert.deepEqual(unexpected(problems), []);
  await page.context().close();
});

for (const lang of ['en', 'es']) {
  test(`forgot password: link by email, opened in the same browser (${lang})`, async () => {
    const page = await phone(lang);
    const problems = watchConsole(page);
    const seen = await outboxTexts(page, server);
    await page.goto(`${server.url}forgot`);
    await accessible(page, `forgot password (${lang})`);
    await page.fill('#email', 'clinician@demo.carefront.example');
    await page.click('form[action="/forgot"] button[type=submit]');
    await page.locator('main .usa-alert--info').waitFor();
    await accessible(page, `forgot password sent (${lang})`);
    // Demo mode keeps mail in the development outbox.
    const text = await newMail(page, server, '/reset?token=', seen);
    await accessible(page, `outbox (${lang})`);
    const link = /(http:\/\/\S+\/reset\?token=[\w-]+)/.exec(text)[1];
    await page.goto(link);
    assert.ok(await page.locator('form[action="/reset"]').isVisible(), 'reset form shown in the asking browser');
    await accessible(page, `reset password (${lang})`);
    assert.deepEqual(unexpected(problems), []);
    await page.context().close();
  });
}
