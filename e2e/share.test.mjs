// SMART Health Links in a real browser: Maria makes a link with a
// passcode; it is opened in carefront's viewer in a second browser
// context (no session), where a wrong passcode is refused with the tries
// left and the right one decrypts the record in the browser; the link is
// listed with that access, then stopped, and the viewer says it no longer
// works. axe-core on the links page and the viewer, English and Spanish,
// 375 and 1280 px.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchConsole, axeViolations, signInAs } from './harness.mjs';

let server, browser;

before(async () => {
  server = await startServer(['--demo']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function accessible(page, what) {
  assert.deepEqual(await axeViolations(page), [], `${what}: axe-core violations`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${what}: the page scrolls sideways by ${overflow}px`);
}

test('Maria shares her summary by link; a recipient opens it with the passcode; she sees the access and stops it', async () => {
  const maria = await (await browser.newContext({ viewport: { width: 375, height: 900 } })).newPage();
  const problems = watchConsole(maria);
  await signInAs(maria, server, 'maria@demo.carefront.example');
  await maria.goto(`${server.url}sharing`);
  await maria.getByRole('link', { name: 'Share links' }).last().click();
  await maria.waitForURL(/\/sharing\/links$/);
  await accessible(maria, 'share links page');
  await maria.locator('label[for=content-results]').click();
  await maria.fill('#label', 'For Dr. Lee');
  await maria.fill('#passcode', 'tulip-42');
  await maria.click('form[action="/sharing/links"] button[type=submit]');
  await maria.locator('#new-link').waitFor();
  await accessible(maria, 'share links page with the new link');
  const viewerURL = await maria.inputValue('#new-link');
  assert.match(viewerURL, /\/shl\/view#shlink:\//);
  assert.ok(await maria.locator('svg.cf-qr').isVisible(), 'no QR code');

  for (const [width, lang] of [[1280, 'es'], [375, 'en']]) {
    const ctx = await browser.newContext({ viewport: { width, height: 900 }, locale: lang === 'es' ? 'es-MX' : 'en-US' });
    const viewer = await ctx.newPage();
    const vp = watchConsole(viewer);
    await viewer.goto(viewerURL.replace('/shl/view#', `/shl/view?lang=${lang}#`));
    await viewer.locator('#shl-form').waitFor();
    assert.match(await viewer.textContent('#shl-label'), /For Dr. Lee/);
    await accessible(viewer, `viewer (${lang} ${width})`);
    if (lang === 'es') {
      await viewer.fill('#shl-recipient', 'Dra. Lee');
      await viewer.fill('#shl-passcode', 'wrong-one');
      await viewer.click('#shl-form button[type=submit]');
      await viewer.getByText(/Intentos restantes: 4/).waitFor();
      await viewer.fill('#shl-passcode', 'tulip-42');
    } else {
      await viewer.fill('#shl-recipient', 'Dr. Lee');
      await viewer.fill('#shl-passcode', 'tulip-42');
    }
    await viewer.click('#shl-form button[type=submit]');
    await viewer.locator('#shl-contents').waitFor();
    const shown = await viewer.textContent('#shl-list');
    assert.match(shown, /Maria/);
    assert.match(shown, /Hemoglobin A1c|4548-4/);
    assert.doesNotMatch(shown, /Walter|Brooks/);
    await accessible(viewer, `viewer with the record (${lang} ${width})`);
    assert.deepEqual(vp.filter((p) => !/status of 401/.test(p)), [], 'viewer console');
    await ctx.close();
  }

  await maria.goto(`${server.url}sharing/links`);
  const listed = await maria.textContent('main');
  assert.match(listed, /Dr\. Lee/);
  assert.match(listed, /Dra\. Lee/);
  await maria.getByRole('button', { name: /Stop this link/ }).click();
  await maria.waitForURL(/\/sharing\/links$/);
  assert.match(await maria.textContent('main'), /Stopped/);

  const ctx = await browser.newContext();
  const late = await ctx.newPage();
  await late.goto(viewerURL);
  await late.fill('#shl-recipient', 'Someone later');
  await late.fill('#shl-passcode', 'tulip-42');
  await late.click('#shl-form button[type=submit]');
  await late.getByText(/no longer works/).waitFor();
  await ctx.close();
  assert.deepEqual(problems, []);
});
