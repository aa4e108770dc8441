import { launchBrowser, totp, axeViolations, watchConsole } from './harness.mjs';
const base = process.argv[2] || 'http://127.0.0.1:8088/';
const who = process.argv[3] || 'maria@demo.carefront.example';
const width = Number(process.argv[4] || 375);
const lang = process.argv[5] || 'en';
const paths = (process.argv[6] || '/,/results,/results/4548-4,/results/85354-9,/visits,/medications,/summary,/documents,/documents/demo-maria-visit-6-summary,/timeline,/profile,/settings/results,/record/download').split(',');
const browser = await launchBrowser();
const ctx = await browser.newContext({ viewport: { width, height: 900 } });
const page = await ctx.newPage();
const problems = watchConsole(page);
await page.goto(base + 'signin?lang=' + lang);
await page.fill('#email', who);
await page.fill('#password', 'demo portal passphrase');
await page.click('form[action="/signin"] button[type=submit]');
await page.waitForURL(/\/signin\/verify$/);
await page.fill('#code', totp('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'));
await page.click('#stepup-form button[type=submit]');
await page.waitForURL(base);
for (const p of paths) {
  const res = await page.goto(base + p.slice(1));
  const name = p.replace(/[^a-z0-9]+/gi, '_') || 'root';
  await page.screenshot({ path: `/tmp/shots/${lang}-${width}${name}.png`, fullPage: !process.env.TOP });
  const v = await axeViolations(page);
  console.log(p, res.status(), v.length ? v.join('\n  ') : 'axe ok');
}
console.log('console problems:', problems);
await browser.close();
