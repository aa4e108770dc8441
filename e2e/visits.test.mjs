// Booking in a real browser, on the demo clinic: Maria books a visit with
// the keyboard alone at 375 px, adds it to her calendar, moves it and
// cancels it; a caregiver whose grant is "messages" only cannot reach
// booking; axe-core on every booking page and the notification settings
// in English and Spanish at 375 px and 1280 px.
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

test('Maria books, moves and cancels a visit with the keyboard on a phone', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const page = await context.newPage();
  const problems = watchConsole(page);
  await signInAs(page, server, 'maria@demo.carefront.example');

  await page.getByRole('navigation', { name: 'Your record' }).getByRole('link', { name: 'Visits' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/visits$/);
  await page.getByRole('link', { name: 'Book a visit' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/visits\/book$/);
  await noSideScroll(page, 'the booking page');

  // Only video visits with Dr. Patel: the place filter, by keyboard.
  const where = page.getByLabel('Where');
  await where.focus();
  await page.keyboard.press('ArrowDown'); // the first place after "Any"
  const place = await where.evaluate((s) => s.options[s.selectedIndex].text);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Show times');
  await page.keyboard.press('Enter');
  await page.waitForURL(/location=/);
  // A week ahead: a visit can be changed online until 24 hours before.
  await page.getByRole('link', { name: 'Later week' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/week=1/);
  assert.match(page.url(), /location=/, 'the filter is lost from week to week');
  const first = page.locator('a.cf-slot').first();
  const label = (await first.textContent()).replace(/\s+/g, ' ').trim();
  assert.ok(label.includes(place) || (place === 'Video visit' && label.includes('Video')), `a time at another place than ${place}: ${label}`);
  await first.focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/visits\/book\?slot=/);
  await noSideScroll(page, 'the confirmation page');
  await page.getByLabel(/What would you like to talk about/).focus();
  await page.keyboard.type('My sugar readings after lunch');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Book this visit');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/visits\/[0-9a-f-]{36}\?done=booked$/);
  const visit = new URL(page.url()).pathname;
  const main = page.locator('main');
  assert.match(await main.textContent(), /Your visit is booked\.[\s\S]*Booked[\s\S]*My sugar readings after lunch/);
  await noSideScroll(page, 'the visit page');

  // The calendar file: the same visit, without the note.
  const ics = await page.request.get(new URL(await page.getByRole('link', { name: /Add to your calendar/ }).getAttribute('href'), server.url).toString());
  assert.equal(ics.status(), 200);
  assert.match(ics.headers()['content-type'], /^text\/calendar/);
  const cal = await ics.text();
  assert.match(cal, /BEGIN:VEVENT\r\n/);
  assert.match(cal, /SUMMARY:Visit with Dr\. /);
  assert.ok(!cal.includes('sugar'), 'the calendar file carries the note');

  // Move it to a time in a later week, by keyboard.
  await page.getByRole('link', { name: 'Move to another time' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/visits\/book\?move=/);
  await page.getByRole('link', { name: 'Later week' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/week=1/);
  await page.locator('a.cf-slot').first().focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/slot=.*move=/);
  await page.getByRole('button', { name: 'Move my visit to this time' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`${visit}\\?done=moved$`));

  // Cancel it, after confirming.
  await page.getByRole('link', { name: 'Cancel this visit' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/cancel$/);
  await page.getByRole('button', { name: 'Yes, cancel the visit' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`${visit}\\?done=cancelled$`));
  assert.match(await main.textContent(), /Your visit was cancelled\.[\s\S]*Cancelled/);

  // The demo's video visit later today is inside the 24 hours: it says to call.
  await page.goto(`${server.url}visits/demo-maria-appt-video`);
  assert.match(await main.textContent(), /less than 24 hours[\s\S]*call the clinic/);
  assert.equal(await page.getByRole('link', { name: 'Cancel this visit' }).count(), 0);
  assert.deepEqual(problems, []);
  await context.close();
});

test('Maria checks in for a visit with the keyboard on a phone', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const page = await context.newPage();
  const problems = watchConsole(page);
  await signInAs(page, server, 'maria@demo.carefront.example');
  // A follow-up with Dr. Patel within the week: check-in is open.
  await page.goto(`${server.url}visits/book?clinician=demo-dr-patel&type=follow-up`);
  const times = page.locator('a.cf-slot');
  const n = await times.count();
  await times.nth(Math.min(n - 1, 8)).click(); // a day or two ahead, not within the hour
  await page.getByRole('button', { name: 'Book this visit' }).click();
  await page.waitForURL(/\?done=booked$/);
  const visit = new URL(page.url()).pathname;
  await page.getByRole('link', { name: 'Check in for this visit' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/checkin$/);
  await noSideScroll(page, 'the check-in form');
  assert.deepEqual(await axeViolations(page), [], 'check-in form: axe-core violations');

  // Every "Yes" by keyboard: focus the first radio of each group, Space.
  for (const name of await page.locator('input[type=radio][value=yes]').evaluateAll((els) => els.map((e) => e.name))) {
    await page.locator(`input[name="${name}"][value=yes]`).focus();
    await page.keyboard.press('Space');
  }
  await page.getByLabel('What would you like to talk about at this visit?').focus();
  await page.keyboard.type('My sugar after lunch');
  // Questions that depend on an answer show once it is given.
  assert.equal(await page.getByLabel(/How bad is the pain/).isVisible(), false, 'the pain scale shows before "in pain"');
  assert.equal(await page.getByLabel('When was that reading?').isVisible(), false, 'the reading date shows before a reading');
  await page.getByLabel(/Your last blood sugar reading/).focus();
  await page.keyboard.type('142');
  await page.getByLabel('When was that reading?').waitFor({ state: 'visible' });
  await page.getByLabel(/Your last blood sugar reading/).fill('');
  await page.getByLabel('When was that reading?').waitFor({ state: 'hidden' });
  await page.locator('input[name="q-pain"][value=true]').focus();
  await page.keyboard.press('Space');
  await page.getByLabel(/How bad is the pain/).waitFor({ state: 'visible' });
  await page.getByLabel(/How bad is the pain/).focus();
  await page.keyboard.type('12');
  await page.getByRole('button', { name: 'Check in' }).focus();
  await page.keyboard.press('Enter');
  await page.getByText('Enter a number no larger than 10.').waitFor();
  assert.deepEqual(await axeViolations(page), [], 'check-in form with an error: axe-core violations');
  await page.getByLabel(/How bad is the pain/).fill('3');
  await page.getByRole('button', { name: 'Check in' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`${visit}\\?done=checkedin$`));
  assert.match(await page.locator('main').textContent(), /You are checked in\.[\s\S]*Checked in/);
  await page.goto(`${server.url}visits`);
  assert.match(await page.locator('main').textContent(), /Checked in/);
  for (const lang of ['es', 'en']) {
    await page.goto(`${server.url}${visit.slice(1)}/checkin?lang=${lang}`);
    assert.deepEqual(await axeViolations(page), [], `check-in (${lang}): axe-core violations`);
  }
  // The form sent back with its error answers 422, which Chromium logs.
  assert.deepEqual(problems.filter((p) => !/status of 422/.test(p)), []);
  await context.close();
});

test('a caregiver with "messages" only cannot reach booking', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const walter = await context.newPage();
  await signInAs(walter, server, 'walter@demo.carefront.example');
  await walter.goto(`${server.url}sharing`);
  await walter.getByRole('button', { name: /Stop sharing/ }).click();
  await walter.waitForURL(/done=revoked/);
  await walter.goto(`${server.url}sharing/caregivers/new`);
  await walter.fill('#email', 'linda@demo.carefront.example');
  await walter.locator('label[for=preset-messages]').click();
  await walter.click('form[action="/sharing/caregivers/new"] button[type=submit]');
  await walter.waitForURL(/done=invited/);
  const mail = await newMail(walter, server, 'invited you');
  const link = /http:\/\/\S+\/caregiver\/accept\?code=[0-9a-f]{64}/.exec(mail)[0];

  const lindaContext = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const linda = await lindaContext.newPage();
  await signInAs(linda, server, 'linda@demo.carefront.example');
  await linda.goto(link);
  await linda.getByRole('button', { name: 'Accept' }).click();
  await linda.waitForURL(/\?for=demo-walter$/);
  const nav = await linda.locator('nav.cf-recordnav').textContent();
  assert.match(nav, /Messages/);
  assert.doesNotMatch(nav, /Visits/);
  for (const path of ['visits/book?for=demo-walter', 'visits?for=demo-walter']) {
    const res = await linda.goto(`${server.url}${path}`);
    assert.equal(res.status(), 403, `${path} for a messages-only caregiver`);
  }
  const post = await linda.request.post(`${server.url}visits/book?for=demo-walter`, {
    form: { slot: 'demo-slot-patel-clinic-x' }, headers: { Origin: server.url.replace(/\/$/, '') },
  });
  assert.equal(post.status(), 403);
  await lindaContext.close();
  await context.close();
});

test('axe-core on the booking pages and the notification settings (en and es, 375 px and 1280 px)', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // Walter (a TOTP code works once: Maria's was used a moment ago) books a
  // visit a week ahead, to have one that can still be changed.
  await signInAs(page, server, 'walter@demo.carefront.example');
  await page.goto(`${server.url}visits/book?week=1`);
  const slots = page.locator('a.cf-slot');
  const slot = new URL(await slots.nth(1).getAttribute('href'), server.url).searchParams.get('slot');
  await slots.first().click();
  await page.getByRole('button', { name: 'Book this visit' }).click();
  await page.waitForURL(/\?done=booked$/);
  const visit = new URL(page.url()).pathname.slice(1);
  for (const lang of ['en', 'es']) {
    for (const width of [375, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      for (const path of ['visits', 'visits/book', `visits/book?slot=${slot}`, visit, `${visit}/cancel`, 'settings/notifications']) {
        const sep = path.includes('?') ? '&' : '?';
        await page.goto(`${server.url}${path}${sep}lang=${lang}`);
        assert.deepEqual(await axeViolations(page), [], `${path} (${lang}, ${width} px): axe-core violations`);
        await noSideScroll(page, path);
      }
    }
  }
  // The settings form with its errors is accessible too.
  await page.goto(`${server.url}settings/notifications?lang=en`);
  await page.locator('label[for=sms-messages]').click();
  await page.fill('#quiet-from', '22:00');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Add a mobile number to get text messages').waitFor();
  await page.getByText('Fill in both times').waitFor();
  assert.deepEqual(await axeViolations(page), [], 'notification settings with errors: axe-core violations');
  await page.fill('#phone', '555 555 0142');
  await page.fill('#quiet-to', '07:00');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/saved=1$/);
  await context.close();
});
