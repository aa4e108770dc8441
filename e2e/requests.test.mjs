// Requests to the care team in a real browser, on the demo clinic: Maria
// asks for a refill with the keyboard at 375 px and Dr. Patel completes
// it; Maria asks to correct a result, Dr. Patel denies it with a reason,
// and Maria adds a statement of disagreement; axe-core on every page in
// English and Spanish.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchConsole, axeViolations, signInAs, newMail } from './harness.mjs';

let server, browser;

before(async () => {
  server = await startServer(['--demo']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function noSideScroll(page, what) {
  const width = page.viewportSize().width;
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), width, `${what} scrolls sideways at ${width} px`);
}

test('Maria asks for a refill with the keyboard; Dr. Patel answers from her queue; Maria sees it', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const page = await context.newPage();
  const problems = watchConsole(page);
  await signInAs(page, server, 'maria@demo.carefront.example');
  await page.goto(`${server.url}medications`);
  const ask = page.locator('a[href="/medications/demo-maria-rx-lisinopril/refill"]');
  assert.match(await ask.textContent(), /Ask for a refill: lisinopril 10 mg tablet/);
  await ask.focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/medications\/demo-maria-rx-lisinopril\/refill$/);
  await noSideScroll(page, 'the refill form');
  for (const lang of ['es', 'en']) {
    await page.goto(`${server.url}medications/demo-maria-rx-lisinopril/refill?lang=${lang}`);
    assert.deepEqual(await axeViolations(page), [], `refill form (${lang}): axe-core violations`);
  }
  await page.locator('#pharmacy-demo-pharmacy-3').focus();
  await page.keyboard.press('Space');
  await page.getByRole('button', { name: 'Ask for the refill' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/medications\?done=refill$/);
  assert.match(await page.locator('main').textContent(), /Your request was sent[\s\S]*Requested[\s\S]*Oak Avenue Pharmacy/);

  const staffContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const staff = await staffContext.newPage();
  await signInAs(staff, server, 'clinician@demo.carefront.example');
  await staff.getByRole('link', { name: "Patients' requests" }).click();
  await staff.waitForURL(/\/staff\/requests$/);
  for (const lang of ['es', 'en']) {
    await staff.goto(`${server.url}staff/requests?lang=${lang}`);
    assert.deepEqual(await axeViolations(staff), [], `staff requests (${lang}): axe-core violations`);
  }
  assert.match(await staff.locator('main').textContent(), /Maria Ortega-Demo, born /);
  const card = staff.locator('li.cf-card', { hasText: 'lisinopril' });
  await card.getByLabel('New status').selectOption('completed');
  await card.getByRole('button', { name: 'Save' }).click();
  await staff.waitForURL(/done=1$/);
  await staffContext.close();

  await newMail(page, server, 'Your care team answered a request');
  await page.goto(`${server.url}medications`);
  assert.match(await page.locator('main').textContent(), /Done/);
  for (const lang of ['en', 'es']) {
    await page.goto(`${server.url}medications?lang=${lang}`);
    assert.deepEqual(await axeViolations(page), [], `medications with requests (${lang}): axe-core violations`);
  }
  assert.deepEqual(problems, []);
  await context.close();
});

test('Maria asks to correct a result, is answered, and adds a statement of disagreement', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const page = await context.newPage();
  const problems = watchConsole(page);
  await signInAs(page, server, 'maria@demo.carefront.example');
  await page.goto(`${server.url}results`);
  const ask = page.locator('a[href^="/corrections/new?item=Observation/demo-maria-a1c-"]').first();
  await ask.focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/corrections\/new\?item=/);
  await noSideScroll(page, 'the correction form');
  const form = page.url();
  for (const lang of ['es', 'en']) {
    await page.goto(`${form}&lang=${lang}`);
    assert.deepEqual(await axeViolations(page), [], `correction form (${lang}): axe-core violations`);
  }
  await page.getByLabel('What is wrong?').focus();
  await page.keyboard.type('This A1c is not from my sample');
  await page.getByRole('button', { name: 'Send the request' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/corrections\?done=sent$/);
  assert.match(await page.locator('main').textContent(), /Requested[\s\S]*answer due by/);

  const staffContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const staff = await staffContext.newPage();
  await signInAs(staff, server, 'clinician@demo.carefront.example');
  await staff.goto(`${server.url}staff/requests`);
  const card = staff.locator('li.cf-card', { hasText: 'This A1c is not from my sample' });
  await card.getByLabel('New status').selectOption('rejected');
  await card.getByLabel(/Reason, for the patient/).fill('The lab confirmed the sample was yours.');
  await card.getByRole('button', { name: 'Save' }).click();
  await staff.waitForURL(/done=1$/);
  assert.deepEqual(await axeViolations(staff), [], 'staff requests after answering: axe-core violations');
  await staffContext.close();

  await newMail(page, server, 'Your care team answered a request');
  await page.goto(`${server.url}corrections`);
  assert.match(await page.locator('main').textContent(), /Not accepted[\s\S]*The lab confirmed the sample was yours/);
  await page.getByLabel('Add a statement of disagreement').fill('I gave no sample that day.');
  await page.getByRole('button', { name: 'Save the statement' }).click();
  await page.waitForURL(/done=statement$/);
  assert.match(await page.locator('main').textContent(), /Your statement of disagreement: I gave no sample that day\./);
  await noSideScroll(page, 'the corrections page');
  for (const lang of ['en', 'es']) {
    await page.goto(`${server.url}corrections?lang=${lang}`);
    assert.deepEqual(await axeViolations(page), [], `corrections (${lang}): axe-core violations`);
  }
  assert.deepEqual(problems, []);
  await context.close();
});
