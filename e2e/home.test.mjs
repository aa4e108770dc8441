// The public home page, in English and Spanish, on desktop and on a 375 px
// phone: content, language switch, accessibility, CSP and keyboard use.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchConsole, axeViolations } from './harness.mjs';

let server, browser;

before(async () => {
  server = await startServer(['--demo']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const languages = [
  { lang: 'en', h1: 'Your health information, when you need it', signin: 'Sign in', switchTo: 'Español' },
  { lang: 'es', h1: 'Su información de salud, cuando la necesite', signin: 'Iniciar sesión', switchTo: 'English' },
];

for (const { lang, h1, signin, switchTo } of languages) {
  for (const viewport of [{ width: 1280, height: 900 }, { width: 375, height: 812 }]) {
    test(`home page in ${lang} at ${viewport.width}px`, async () => {
      const context = await browser.newContext({ viewport, locale: lang === 'es' ? 'es-MX' : 'en-US' });
      const page = await context.newPage();
      const problems = watchConsole(page);
      const res = await page.goto(server.url);
      assert.equal(res.status(), 200);
      assert.match(res.headers()['content-security-policy'], /frame-ancestors 'none'/);
      assert.equal(await page.getAttribute('html', 'lang'), lang);
      assert.equal((await page.textContent('h1')).trim(), h1);
      assert.equal(await page.getByRole('link', { name: signin, exact: true }).first().getAttribute('href'), '/signin');
      assert.ok(await page.getByText(lang === 'es' ? 'Solo para demostración' : 'Demonstration only').isVisible(), 'demo banner visible');

      // Nothing is wider than the screen: no sideways scrolling on a phone.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the ${viewport.width}px viewport`);

      // The USWDS script loaded under the CSP (it marks the page when ready).
      assert.equal(await page.evaluate(() => window.uswdsPresent === true), true, 'USWDS JavaScript did not run');
      // Its fonts loaded from our own origin.
      assert.ok(await page.evaluate(async () => { await document.fonts.ready; return document.fonts.check('16px "Source Sans Pro Web"'); }));

      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(problems, [], 'console errors (CSP violations, failed loads)');

      // The language switch leads to the other language and is remembered.
      await page.getByRole('link', { name: switchTo }).click();
      await page.waitForLoadState();
      const other = lang === 'es' ? 'en' : 'es';
      assert.equal(await page.getAttribute('html', 'lang'), other);
      await page.goto(server.url);
      assert.equal(await page.getAttribute('html', 'lang'), other, 'language choice not remembered');
      await context.close();
    });
  }
}

test('keyboard: the first Tab reaches the skip link, which moves focus to the main content', async () => {
  const page = await browser.newPage();
  await page.goto(server.url + '?lang=en');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Skip to main content');
  assert.ok(await page.evaluate(() => document.activeElement.getBoundingClientRect().height > 0), 'skip link visible on focus');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main-content');
  await page.keyboard.press('Tab');
  const next = await page.evaluate(() => document.activeElement.textContent.trim());
  assert.equal(next, 'Sign in', 'Tab after the skip link goes to the first control in main');
  await page.close();
});

test('not-found page uses the layout, is accessible, and shows no internals', async () => {
  for (const lang of ['en', 'es']) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = watchConsole(page);
    const res = await page.goto(`${server.url}no/such/page?lang=${lang}`);
    assert.equal(res.status(), 404);
    const text = await page.textContent('main');
    assert.match(text, lang === 'en' ? /Page not found/ : /No encontramos la página/);
    assert.doesNotMatch(text, /goroutine|\.go:\d+|panic/);
    assert.deepEqual(await axeViolations(page), []);
    // The 404 itself is the only console error.
    assert.deepEqual(problems.filter((p) => !/404/.test(p)), []);
    await context.close();
  }
});
