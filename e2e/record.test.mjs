// The signed-in record in a real browser, on the demo population and on a
// Synthea patient who activates their own account: home, results and a
// trend in at most three steps, a visit summary, the choice to wait for
// review, a download behind step-up; axe-core on every record page in
// English and Spanish at 375 px and 1280 px; a keyboard-only pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, watchConsole, axeViolations, totp, invite, newMail } from './harness.mjs';

const DEMO_KEY = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const DEMO_PASSWORD = 'demo portal passphrase';
const BIN = process.env.CAREFRONT_BIN || new URL('../bin/carefront', import.meta.url).pathname;
const SYNTHEA = process.env.CAREFRONT_SYNTHEA_DIR || new URL('../../shared/fixtures/synthea-r4', import.meta.url).pathname;
let server, browser;

before(async () => {
  server = await startServer(['--demo', '--step-up-age', '10s']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(width, lang = 'en') {
  const context = await browser.newContext({ viewport: { width, height: 900 }, locale: lang === 'es' ? 'es-MX' : 'en-US', acceptDownloads: true });
  return context.newPage();
}

async function accessible(page, what) {
  assert.deepEqual(await axeViolations(page), [], `${what}: axe-core violations`);
}

// nextStep waits for the next 30-second authenticator step: a code is
// accepted once, so a second check needs a new one.
async function nextStep(page) {
  await page.waitForTimeout(30000 - (Date.now() % 30000) + 300);
}

async function signIn(page, email, password = DEMO_PASSWORD, key = DEMO_KEY) {
  await page.goto(`${server.url}signin`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('form[action="/signin"] button[type=submit]');
  await page.waitForURL(/\/signin\/verify$/);
  await page.fill('#code', totp(key));
  await page.click('#stepup-form button[type=submit]');
  await page.waitForURL((u) => u.origin + u.pathname === new URL(server.url).origin + "/");
}

const RECORD_PAGES = ['', 'results', 'results/4548-4', 'results/85354-9', 'visits', 'medications', 'summary', 'documents',
  'timeline', 'profile', 'settings/results', 'record/download'];

test('Maria: her A1c trend from home, a visit summary, the choice to wait for review, a download after step-up', async () => {
  const page = await open(375);
  const problems = watchConsole(page);
  await signIn(page, 'maria@demo.carefront.example');
  assert.ok(await page.getByRole('heading', { name: 'Your health at a glance' }).isVisible());
  assert.ok(await page.getByText('Video visit').first().isVisible(), 'the video visit later today is on home');

  // Step 1: Test results in the navigation; step 2: the A1c.
  await page.getByRole('navigation', { name: 'Your record' }).getByRole('link', { name: 'Test results' }).click();
  await page.waitForURL(/\/results$/);
  assert.equal(await page.getByRole('link', { name: 'Test results' }).first().getAttribute('aria-current'), 'page');
  await page.getByRole('link', { name: 'Hemoglobin A1c' }).first().click();
  await page.waitForURL(/\/results\/4548-4$/);
  assert.ok(await page.getByRole('heading', { level: 1, name: 'Hemoglobin A1c' }).isVisible());
  assert.ok(await page.locator('svg[aria-labelledby="chart-title chart-desc"]').isVisible(), 'the chart is shown');
  assert.equal(await page.locator('table tbody tr').count(), 12, 'every A1c in the table');
  assert.ok(await page.locator('table .cf-interp', { hasText: 'High' }).first().isVisible(), 'status in words');

  // A visit summary.
  await page.getByRole('navigation', { name: 'Your record' }).getByRole('link', { name: 'Visits' }).click();
  await page.getByRole('link', { name: /Visit summary/ }).first().click();
  await page.waitForURL(/\/documents\/demo-maria-visit-6-summary$/);
  assert.ok(await page.getByText('Follow-up for diabetes and blood pressure').isVisible());

  // Wait for review of lab tests: the newest panel (three days old) waits.
  await page.goto(`${server.url}settings/results`);
  await page.selectOption('#wait-lab', '7');
  await page.getByRole('button', { name: 'Save my choices' }).click();
  await page.waitForURL(/saved=1$/);
  await page.goto(`${server.url}results`);
  assert.ok(await page.getByText('Your result is ready. You asked to see it after your care team reviews it.').first().isVisible());
  await accessible(page, 'results with a waiting result');
  await page.getByRole('button', { name: /Show it now/ }).first().click();
  await page.waitForURL(/\/results$/);
  assert.equal(await page.getByText('You asked to see it after').count(), 0, 'shown after Show it now');

  // Download: past the step-up age (10 s since the sign-in, however fast
  // the steps above ran), the file asks for a fresh code first.
  await page.waitForTimeout(10500);
  await nextStep(page);
  await page.goto(`${server.url}record/download`);
  await page.getByRole('link', { name: 'Download the file' }).click();
  await page.waitForURL(/\/signin\/verify\?return=/);
  const download = page.waitForEvent('download');
  await page.fill('#code', totp(DEMO_KEY));
  await page.click('#stepup-form button[type=submit]').catch(() => {}); // the answer is a file, not a page
  const file = await download;
  assert.equal(file.suggestedFilename(), 'my-health-record.json');
  const bundle = JSON.parse(readFileSync(await file.path(), 'utf8'));
  assert.equal(bundle.resourceType, 'Bundle');
  assert.equal(bundle.type, 'collection');
  assert.ok(bundle.entry.length > 50, `${bundle.entry.length} resources`);
  assert.ok(bundle.entry.every((e) => !JSON.stringify(e.resource).includes('demo-walter')), 'nothing of another patient');
  // A navigation that ends in a download is reported as an aborted load.
  assert.deepEqual(problems.filter((p) => !p.endsWith('/record/download/fhir')), []);
  await page.context().close();
});

for (const lang of ['en', 'es']) {
  for (const width of [375, 1280]) {
    test(`axe-core on every record page (${lang}, ${width} px)`, async () => {
      const page = await open(width, lang);
      const problems = watchConsole(page);
      // Each run signs in a different demo patient's account (a code works once).
      const who = { 'en-375': 'walter', 'en-1280': 'walter', 'es-375': 'maria', 'es-1280': 'maria' }[`${lang}-${width}`];
      if (width === 1280) await nextStep(page);
      await signIn(page, `${who}@demo.carefront.example`);
      for (const p of RECORD_PAGES) {
        const target = p.startsWith('results/') && who === 'walter' ? 'results' : p;
        const res = await page.goto(`${server.url}${target}?lang=${lang}`);
        assert.equal(res.status(), 200, `${target}`);
        assert.equal(await page.getAttribute('html', 'lang'), lang);
        await accessible(page, `/${target} (${lang}, ${width} px)`);
        if (width === 375) {
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          assert.ok(overflow <= 0, `/${target} is wider than the phone by ${overflow}px`);
        }
      }
      assert.deepEqual(problems, []);
      await page.context().close();
    });
  }
}

test('keyboard only: home, results and a trend', async () => {
  const page = await open(375);
  await nextStep(page);
  await signIn(page, 'walter@demo.carefront.example');
  // Tab from the top of the page to the record navigation's Test results.
  const tabTo = async (name, tag = '') => {
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press('Tab');
      const [text, el] = await page.evaluate(() => {
        const el = document.activeElement;
        return [(el?.labels?.[0]?.textContent || el?.textContent || '').trim(), el?.tagName];
      });
      if (text === name && (!tag || el === tag)) return;
    }
    assert.fail(`could not reach ${name} with Tab`);
  };
  await page.goto(server.url);
  await tabTo('Test results');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/results$/);
  await tabTo('Medicines');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/medications$/);
  assert.ok(await page.getByText('apixaban').first().isVisible());
  await page.goto(`${server.url}timeline`);
  // Every kind is shown at first: keep only vaccines.
  for (const kind of ['Visits', 'Results', 'Procedures']) {
    await tabTo(kind, 'INPUT');
    await page.keyboard.press('Space');
  }
  await tabTo('Update the list');
  await page.keyboard.press('Enter');
  await page.waitForURL(/kind=immunization/);
  assert.ok(await page.getByText('Pneumococcal').first().isVisible());
  await page.context().close();
});

test('a Synthea patient activates an account, reaches their results and a trend, and downloads their record after step-up', async () => {
  const file = readdirSync(SYNTHEA).find((f) => f.startsWith('Adolph_Smith'));
  assert.ok(file, `Adolph Smith's fixture in ${SYNTHEA}`);
  execFileSync(BIN, ['import', '--data-dir', server.dataDir, join(SYNTHEA, file)], { env: { ...process.env, CAREFRONT_DATABASE_URL: '' } });
  const patient = JSON.parse(readFileSync(join(SYNTHEA, file), 'utf8')).entry.map((e) => e.resource).find((r) => r.resourceType === 'Patient');
  const code = invite(server, `Patient/${patient.id}`);
  const page = await open(375);
  const problems = watchConsole(page);
  await page.goto(`${server.url}activate?code=${code}`);
  const [y, m, d] = patient.birthDate.split('-');
  await page.fill('#family', patient.name[0].family);
  await page.fill('#month', String(Number(m)));
  await page.fill('#day', String(Number(d)));
  await page.fill('#year', y);
  await page.fill('#email', 'adolph@example.com');
  await page.fill('#password', 'four unrelated words here');
  await page.fill('#password2', 'four unrelated words here');
  await page.click('form[action="/activate"] button[type=submit]');
  await page.waitForURL(/\/activate\/email$/);
  const outbox = await page.context().newPage();
  const mail = await newMail(outbox, server, 'adolph@example.com');
  await outbox.close();
  await page.fill('#code', /\b(\d{6})\b/.exec(mail)[1]);
  await page.click('form[action="/activate/email"] button[type=submit]');
  await page.waitForURL(/\/mfa\/setup$/);
  const secret = (await page.textContent('#secret')).replace(/\s/g, '');
  await page.fill('#code', totp(secret));
  await page.click('form[action="/mfa/setup"] button[type=submit]');
  await page.locator('.cf-codes li').first().waitFor();
  await page.goto(server.url);
  assert.ok(await page.getByRole('heading', { name: 'Your health at a glance' }).isVisible());
  await accessible(page, 'Synthea patient home');
  await page.getByRole('navigation', { name: 'Your record' }).getByRole('link', { name: 'Test results' }).click();
  await page.waitForURL(/\/results$/);
  await accessible(page, 'Synthea patient results');
  const trend = page.locator('main table th a[href^="/results/"]').first();
  await trend.click();
  await page.waitForURL(/\/results\/[^/]+$/);
  assert.ok(await page.locator('main table tbody tr').count() >= 1);
  await accessible(page, 'Synthea patient trend');
  for (const p of ['visits', 'medications', 'summary', 'documents', 'timeline', 'profile']) {
    const res = await page.goto(`${server.url}${p}`);
    assert.equal(res.status(), 200, p);
    await accessible(page, `Synthea patient /${p}`);
  }
  // The download after step-up (10 s past the sign-in): their own record,
  // all of it.
  await page.waitForTimeout(10500);
  await nextStep(page);
  await page.goto(`${server.url}record/download`);
  await page.getByRole('link', { name: 'Download the file' }).click();
  await page.waitForURL(/\/signin\/verify\?return=/);
  const download = page.waitForEvent('download');
  await page.fill('#code', totp(secret));
  await page.click('#stepup-form button[type=submit]').catch(() => {});
  const bundle = JSON.parse(readFileSync(await (await download).path(), 'utf8'));
  const fixture = JSON.parse(readFileSync(join(SYNTHEA, file), 'utf8'));
  const fixtureObs = fixture.entry.filter((e) => e.resource.resourceType === 'Observation').length;
  assert.equal(bundle.entry.filter((e) => e.resource.resourceType === 'Observation').length, fixtureObs, 'every observation of theirs');
  assert.ok(bundle.entry.some((e) => e.resource.resourceType === 'Patient' && e.resource.id === patient.id));
  assert.ok(bundle.entry.every((e) => !JSON.stringify(e.resource).includes('demo-maria')), 'nothing of another patient');
  assert.deepEqual(problems.filter((p) => !p.endsWith('/record/download/fhir')), []);
  await page.context().close();
});
