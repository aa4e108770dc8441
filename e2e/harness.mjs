// Test harness: starts the real carefront binary on a free port with a fresh
// data dir, and launches Debian's Chromium through playwright-core. A missing
// binary or browser fails the run; nothing here skips.
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

export const CHROMIUM = process.env.CAREFRONT_CHROMIUM || '/usr/bin/chromium';
const BIN = process.env.CAREFRONT_BIN || new URL('../bin/carefront', import.meta.url).pathname;

// newDataDir makes a fresh data dir for a server to start in.
export function newDataDir() {
  return mkdtempSync(join(tmpdir(), 'carefront-e2e-'));
}

// startServer runs `carefront serve` and resolves once it logs its URL;
// dataDir, when given, is one prepared before (apps registered in it).
export async function startServer(extraArgs = [], dataDir = newDataDir()) {
  if (!existsSync(BIN)) throw new Error(`carefront binary not found at ${BIN}; run "make build" first`);
  const proc = spawn(BIN, ['serve', '--addr', '127.0.0.1:0', '--metrics-addr', 'off', '--data-dir', dataDir, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CAREFRONT_DATABASE_URL: '' },
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`carefront did not start:\n${log}`)), 20000);
    proc.stdout.on('data', (d) => {
      log += d;
      const m = /"url":"(http:\/\/[^"]+)"/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.stderr.on('data', (d) => { log += d; });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`carefront exited ${code}:\n${log}`)); });
  });
  return {
    url,
    dataDir,
    log: () => log,
    async stop() {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// launchBrowser starts headless Chromium; with media, its fake camera and
// microphone answer getUserMedia without asking, and WebRTC may use
// loopback with plain (not mDNS) local addresses, for video visits.
export async function launchBrowser({ media = false } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}; install Debian's chromium package`);
  const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'];
  if (media) {
    args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns', '--autoplay-policy=no-user-gesture-required');
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

// watchConsole collects console errors and page errors, which is where
// Chromium reports CSP violations and failed loads.
export function watchConsole(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  return problems;
}

// axeViolations scans the page against WCAG 2.1 A and AA and best practices.
export async function axeViolations(page) {
  const res = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']).analyze();
  return res.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

// totp computes an RFC 6238 code (SHA-1, 6 digits, 30 s) for a base32 key,
// as an authenticator app does.
export function totp(base32, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/[\s=]/g, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, '0');
}

// invite runs `carefront accounts invite` against a running server's data
// dir and returns the activation code.
export function invite(server, patient) {
  const out = execFileSync(BIN, ['accounts', 'invite', '--data-dir', server.dataDir, '--patient', patient],
    { env: { ...process.env, CAREFRONT_DATABASE_URL: '' } }).toString();
  const m = /activation code for [^:]+: ([A-Z2-7-]+)/.exec(out);
  if (!m) throw new Error(`no activation code in:\n${out}`);
  return m[1];
}

// addClient runs `carefront clients add` in a data dir and returns the
// client id and, for --secret, the secret it printed once.
export function addClient(dataDir, args) {
  const out = execFileSync(BIN, ['clients', 'add', '--data-dir', dataDir, ...args],
    { env: { ...process.env, CAREFRONT_DATABASE_URL: '' } }).toString();
  const id = /client id: (\S+)/.exec(out);
  if (!id) throw new Error(`no client id in:\n${out}`);
  const secret = /secret: (\S+)/.exec(out);
  return { id: id[1], secret: secret?.[1] };
}

// newMail opens the development outbox in page and returns the text of the
// newest message containing hasText that was not there before (skip: texts
// already seen). Mail is sent by the job queue a moment after the request,
// so the outbox is reloaded until it arrives.
export async function newMail(page, server, hasText, skip = []) {
  const deadline = Date.now() + 15000;
  for (;;) {
    await page.goto(`${server.url}dev/outbox`);
    for (const text of await page.locator('main article').allTextContents()) {
      if (text.includes(hasText) && !skip.includes(text)) return text;
    }
    if (Date.now() > deadline) throw new Error(`no new mail with ${hasText} in the outbox`);
    await page.waitForTimeout(100);
  }
}

// outboxTexts lists the messages in the development outbox now.
export async function outboxTexts(page, server) {
  await page.goto(`${server.url}dev/outbox`);
  return page.locator('main article').allTextContents();
}

// lastStep remembers, per account, the 30-second step of the last code
// typed: carefront accepts a code once, so signing in to one account twice
// within a step waits for the next code, as a person would.
const lastStep = new Map();

// signInAs signs page in at server with a demo account's password and
// authenticator code, and waits until it has left the sign-in pages.
export async function signInAs(page, server, email, password = 'demo portal passphrase', key = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP') {
  await page.goto(`${server.url}signin`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('form[action="/signin"] button[type=submit]');
  await page.waitForURL(/\/signin\/verify$/);
  const account = `${server.url} ${email}`;
  while (Math.floor(Date.now() / 30000) === lastStep.get(account)) {
    await new Promise((r) => setTimeout(r, 250));
  }
  lastStep.set(account, Math.floor(Date.now() / 30000));
  await page.fill('#code', totp(key));
  await page.click('#stepup-form button[type=submit]');
  await page.waitForURL((u) => !u.pathname.startsWith('/signin'));
}
