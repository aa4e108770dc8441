// Secure messaging in a real browser, on the demo clinic: Maria writes to
// her clinician's team with the keyboard alone, sees the conversation, the
// team is told without PHI, Dr. Patel answers from her inbox and Maria reads
// the answer; axe-core on every messages page in English
// and Spanish at 375 px and 1280 px.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchConsole, axeViolations, signInAs, outboxTexts, newMail } from './harness.mjs';

let server, browser;

before(async () => {
  server = await startServer(['--demo']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('Maria writes to her care team with the keyboard, reads the conversation, and the team is told without PHI', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const page = await context.newPage();
  const problems = watchConsole(page);
  await signInAs(page, server, 'maria@demo.carefront.example');

  // From the record navigation to the messages page.
  await page.getByRole('navigation', { name: 'Your record' }).getByRole('link', { name: 'Messages' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/messages$/);
  await assert.doesNotReject(page.getByText('Messages are not for emergencies').first().waitFor());
  await page.getByRole('link', { name: 'Write a new message' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/messages\/new$/);

  // Keyboard only: the team (radio), the subject, the text, send.
  await page.getByRole('radio', { name: /Dr\. Patel's team/ }).focus();
  await page.keyboard.press('Space');
  await page.keyboard.press('Tab'); // past the other team's radio group to the subject
  const subject = page.getByLabel('Subject');
  await subject.focus();
  await page.keyboard.type('Knee after the new dose');
  await page.keyboard.press('Tab');
  await page.keyboard.type('My knee still hurts after the new dose.\nShould I keep taking it? See https://example.org/knee.');
  await page.keyboard.press('Tab'); // the file field
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Send message');
  // A photo of the swollen knee, as the phone's file chooser gives it.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
  await page.setInputFiles('#attachment', { name: 'knee.png', mimeType: 'image/png', buffer: png });
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/messages\/[0-9a-f]{32}\?done=sent$/);

  const main = page.locator('main');
  const threadPath = new URL(page.url()).pathname;
  await assert.doesNotReject(main.getByText('Your message was sent.').waitFor());
  assert.match(await main.textContent(), /Knee after the new dose[\s\S]*With Dr\. Patel's team\.[\s\S]*Not read by the team yet\./);
  await main.getByRole('link', { name: 'knee.png' }).waitFor();
  assert.equal(await main.getByRole('link', { name: 'https://example.org/knee' }).getAttribute('href'), 'https://example.org/knee');
  // The text keeps its line break and fits the phone's width.
  const box = await main.locator('.cf-message__text').first().boundingBox();
  assert.ok(box.width <= 375, `message text is ${box.width} px wide on a 375 px screen`);
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 375, 'the page scrolls sideways at 375 px');

  // The team is told (the job queue sends it a moment later), and nothing
  // of what Maria wrote is in the notice.
  await newMail(page, server, 'A new message is waiting in your carefront inbox');
  const texts = (await outboxTexts(page, server)).join('\n');
  for (const phi of ['knee', 'Knee', 'dose', 'Maria', 'Ortega', 'Patel']) {
    assert.ok(!texts.includes(phi), `a notice carries "${phi}"`);
  }
  // Dr. Patel answers from her inbox, in a browser of her own.
  const staffContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const staff = await staffContext.newPage();
  const staffProblems = watchConsole(staff);
  await signInAs(staff, server, 'clinician@demo.carefront.example');
  await staff.getByRole('link', { name: 'Inbox' }).click();
  await staff.waitForURL(/\/staff\/inbox$/);
  assert.match(await staff.locator('main').textContent(), /Waiting for an answer since/);
  await staff.getByRole('link', { name: 'Knee after the new dose' }).click();
  // The photo came with the message, and opens.
  const photo = await staff.getByRole('link', { name: 'knee.png' }).getAttribute('href');
  const got = await staff.request.get(new URL(photo, server.url).href);
  assert.equal(got.status(), 200);
  assert.equal(got.headers()['content-type'], 'image/png');
  const staffThread = new URL(staff.url()).pathname;
  await staff.getByLabel('Message', { exact: true }).fill('Keep taking it, and come in on Friday.');
  await staff.getByRole('button', { name: 'Send message' }).click();
  await staff.waitForURL(/\?done=sent$/);
  assert.deepEqual(await axeViolations(staff), [], 'the staff thread: axe-core violations');
  await staff.goto(`${server.url}staff/inbox`);
  assert.deepEqual(await axeViolations(staff), [], 'the inbox: axe-core violations');
  for (const lang of ['es', 'en']) {
    for (const path of ['staff/inbox', staffThread.slice(1)]) {
      await staff.goto(`${server.url}${path}?lang=${lang}`);
      assert.deepEqual(await axeViolations(staff), [], `${path} (${lang}): axe-core violations`);
    }
  }
  assert.deepEqual(staffProblems, []);
  await staffContext.close();

  // Maria sees the answer, signed; she is told without PHI.
  await newMail(page, server, 'You have a new message from your care team');
  await page.goto(`${server.url}${threadPath.slice(1)}`);
  assert.match(await main.textContent(), /Anika Patel, Dr\. Patel's team[\s\S]*Keep taking it, and come in on Friday\./);
  assert.match(await main.textContent(), /Read by the team on/);
  const after = (await outboxTexts(page, server)).join('\n');
  assert.match(after, /You have a new message from your care team/);
  for (const phi of ['Friday', 'knee', 'Patel', 'Maria']) {
    assert.ok(!after.includes(phi), `a notice carries "${phi}"`);
  }
  assert.deepEqual(problems, []);
  await context.close();
});

test('axe-core on the messages pages (en and es, 375 px and 1280 px)', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await signInAs(page, server, 'walter@demo.carefront.example');
  await page.goto(`${server.url}messages/new`);
  await page.locator('label.usa-radio__label', { hasText: 'Billing' }).click();
  await page.getByLabel('Subject').fill('A question about my bill');
  await page.getByLabel('Message', { exact: true }).fill('Why was I billed twice in March?');
  // A 1x1 PNG, as a phone's screenshot of the bill would be.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
  await page.setInputFiles('#attachment', { name: 'bill.png', mimeType: 'image/png', buffer: png });
  await page.getByRole('button', { name: 'Send message' }).click();
  await page.waitForURL(/\/messages\/[0-9a-f]{32}\?done=sent$/);
  const thread = new URL(page.url()).pathname;
  const file = page.getByRole('link', { name: 'bill.png' });
  assert.match(await file.getAttribute('href'), /\/files\/[0-9a-f]{32}$/);
  const download = await page.request.get(new URL(await file.getAttribute('href'), server.url).toString());
  assert.equal(download.headers()['content-type'], 'image/png');
  assert.match(download.headers()['content-disposition'], /^attachment;/);
  for (const lang of ['en', 'es']) {
    for (const width of [375, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      for (const path of ['messages', 'messages/new', thread.slice(1)]) {
        await page.goto(`${server.url}${path}?lang=${lang}`);
        assert.deepEqual(await axeViolations(page), [], `${path} (${lang}, ${width} px): axe-core violations`);
      }
    }
  }
  // A form sent back with a problem is accessible too: the error is beside the field.
  await page.goto(`${server.url}messages/new?lang=en`);
  await page.getByRole('button', { name: 'Send message' }).click();
  for (const problem of ['Choose who to write to.', 'Give the message a subject, up to 120 characters.', 'Write a message before sending it.']) {
    await assert.doesNotReject(page.getByText(problem).waitFor(), problem);
  }
  assert.deepEqual(await axeViolations(page), [], 'the form with its errors: axe-core violations');
  await context.close();
});
