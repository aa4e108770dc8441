// Caregivers in a real browser, on the demo population: Walter invites
// Linda to see his medicines, appointments and visits; she accepts with
// her account and sees his medicines and not his results; Walter stops it
// and her very next page says so; his access log shows her views. Dana
// switches between her children's records: Sam's (15) sensitive visit is
// hidden from her in pages, views and the download, Lily's (8) record is
// whole. axe-core on every new page in English and Spanish at 375 and
// 1280 px.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, watchConsole, axeViolations, newMail, signInAs } from './harness.mjs';

let server, browser;

before(async () => {
  server = await startServer(['--demo']);
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
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${what}: the page scrolls sideways by ${overflow}px`);
}

const signIn = (page, email) => signInAs(page, server, email);

test('Walter invites Linda, she sees his medicines and not his results, he stops it, his log shows her views', async () => {
  const walter = await open(375);
  const problems = watchConsole(walter);
  await signIn(walter, 'walter@demo.carefront.example');
  await walter.getByRole('link', { name: 'Sharing' }).click();
  await walter.waitForURL(/\/sharing$/);
  await accessible(walter, 'sharing page');
  // The demo's standing grant to Linda goes first: Walter invites her anew.
  await walter.getByRole('button', { name: /Stop sharing/ }).click();
  await walter.waitForURL(/done=revoked/);
  await walter.getByRole('link', { name: 'Invite a caregiver' }).click();
  await walter.waitForURL(/\/sharing\/caregivers\/new$/);
  await accessible(walter, 'invitation form');
  // Bad input first: his own address is refused with the reason.
  await walter.fill('#email', 'walter@demo.carefront.example');
  await walter.click('form[action="/sharing/caregivers/new"] button[type=submit]');
  await walter.getByText('that is your own email address').waitFor();
  await accessible(walter, 'invitation form with an error');
  await walter.fill('#email', 'linda@demo.carefront.example');
  await walter.check('#preset-medications-visits');
  await walter.click('form[action="/sharing/caregivers/new"] button[type=submit]');
  await walter.waitForURL(/done=invited/);
  assert.match(await walter.textContent('main'), /waiting for them to accept/);

  const mail = await newMail(walter, server, 'invited you');
  assert.doesNotMatch(mail, /Walter|Brooks/, 'the invitation names the patient');
  const link = /http:\/\/\S+\/caregiver\/accept\?code=[0-9a-f]{64}/.exec(mail)[0];

  const linda = await open(1280);
  watchConsole(linda);
  await signIn(linda, 'linda@demo.carefront.example');
  await linda.goto(link);
  assert.match(await linda.textContent('main'), /Walter Brooks-Demo invited you/);
  await accessible(linda, 'accept page');
  await linda.getByRole('button', { name: 'Accept' }).click();
  await linda.waitForURL(/\?for=demo-walter$/);
  assert.match(await linda.textContent('body'), /Viewing: Walter Brooks-Demo's record/);
  await accessible(linda, "Walter's home for Linda");
  const nav = await linda.locator('nav.cf-recordnav').textContent();
  assert.match(nav, /Medicines/);
  assert.doesNotMatch(nav, /Test results/);
  await linda.locator('nav.cf-recordnav').getByRole('link', { name: 'Medicines' }).click();
  await linda.waitForURL(/\/medications\?for=demo-walter$/);
  assert.match(await linda.textContent('main'), /apixaban/);
  const refused = await linda.goto(`${server.url}results?for=demo-walter`);
  assert.equal(refused.status(), 403);
  await linda.goto(`${server.url}visits?for=demo-walter`);
  assert.match(await linda.textContent('main'), /Annual/);

  // Walter stops it; Linda's next page is refused.
  await walter.goto(`${server.url}sharing`);
  await walter.getByRole('button', { name: /Stop sharing/ }).click();
  await walter.waitForURL(/done=revoked/);
  await linda.goto(`${server.url}medications?for=demo-walter`);
  await linda.waitForURL(/\?ended=demo-walter$/);
  assert.match(await linda.textContent('main'), /You no longer have access to Walter Brooks-Demo's record/);
  assert.doesNotMatch(await linda.textContent('main'), /apixaban/);

  await walter.goto(`${server.url}sharing/access-log?who=caregiver`);
  const log = await walter.textContent('main');
  assert.match(log, /Caregiver: linda@demo.carefront.example/);
  assert.match(log, /Medicines/);
  await accessible(walter, 'access log');
  await walter.goto(`${server.url}sharing/access-log?lang=es`);
  await accessible(walter, 'access log, Spanish');
  await walter.goto(`${server.url}sharing?lang=es`);
  await accessible(walter, 'sharing page, Spanish');
  await walter.goto(`${server.url}sharing/caregivers/new?lang=es`);
  await accessible(walter, 'invitation form, Spanish');
  assert.deepEqual(problems.filter((p) => !/status of 422/.test(p)), []); // the refused invitation
});

test("Dana switches between her children's records; Sam's sensitive visit stays hidden from her", async () => {
  for (const [width, lang] of [[375, 'en'], [1280, 'es']]) {
    const page = await open(width, lang);
    const problems = watchConsole(page);
    page.on('response', (r) => { if (r.status() === 404) problems.push(`404 ${r.url()}`); });
    await signIn(page, 'dana@demo.carefront.example');
    if (lang === 'es') await page.goto(`${server.url}?lang=es`);
    await accessible(page, `Dana's records (${lang} ${width})`);
    await page.locator('main a[href="/?for=demo-sam"]').click();
    await page.waitForURL(/\?for=demo-sam$/);
    await accessible(page, `Sam's home for Dana (${lang} ${width})`);
    for (const p of ['visits', 'timeline', 'summary', 'documents']) {
      await page.goto(`${server.url}${p}?for=demo-sam`);
      const text = await page.textContent('main');
      assert.doesNotMatch(text, /Confidential adolescent visit|Contraception|reproductive/i, `${p} shows Sam's sensitive visit`);
      await accessible(page, `Sam's ${p} for Dana (${lang} ${width})`);
    }
    const view = await page.request.get(`${server.url}api/views/timeline?for=demo-sam`);
    assert.equal(view.status(), 200);
    assert.doesNotMatch(await view.text(), /Confidential|Contraception|reproductive/i);
    await page.goto(`${server.url}record/download?for=demo-sam`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a[href^="/record/download/fhir"]').click()]);
    const file = readFileSync(await download.path(), 'utf8');
    assert.match(file, /"resourceType": "Bundle"/);
    assert.doesNotMatch(file, /demo-sam-visit-confidential|demo-sam-counseling|Contraception/);
    // The switcher takes her to Lily's whole record.
    await page.locator('.cf-viewing a[href="/?for=demo-lily"]').click();
    await page.waitForURL(/\?for=demo-lily$/);
    await page.goto(`${server.url}summary?for=demo-lily`);
    assert.match(await page.textContent('main'), /Asthma/);
    assert.deepEqual(problems.filter((p) => !p.endsWith('/record/download/fhir?for=demo-sam')), []);
    await page.context().close();
    // A code works once: the next sign-in waits for the next 30-second step.
    await new Promise((r) => setTimeout(r, 30000 - (Date.now() % 30000) + 300));
  }
});
