// Video visits in real browsers with Chromium's fake camera and
// microphone: Maria (375 px, keyboard) agrees to video visits, tests her
// devices and waits; while she waits she has no peer connection and
// nothing is relayed to her. The demo clinician (a second browser
// context) sees her waiting on today's list and lets her in; both reach
// connectionState "connected" and decode a rising number of video frames
// and audio packets (getStats). An ICE restart shows the reconnecting
// banner and the call goes on. The clinician ends the visit and Maria is
// told. axe-core on the device check, waiting room, visit and list in
// English and Spanish.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, launchBrowser, watchConsole, axeViolations, signInAs } from './harness.mjs';

let server, relayServer, browser;

before(async () => {
  server = await startServer(['--demo']);
  // A second carefront with the embedded TURN server on loopback.
  relayServer = await startServer(['--demo', '--turn-listen', '127.0.0.1:0', '--turn-public-ip', '127.0.0.1']);
  browser = await launchBrowser({ media: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await relayServer?.stop();
});

// inbound sums what a page receives from its peers (getStats).
async function inbound(page) {
  return page.evaluate(async () => {
    const out = { frames: 0, audioPackets: 0, states: [] };
    for (const p of window.carefrontVisit.peers.values()) {
      out.states.push(p.pc.connectionState);
      const stats = await p.pc.getStats();
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') out.frames += s.framesDecoded || 0;
        if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioPackets += s.packetsReceived || 0;
      });
    }
    return out;
  });
}

async function waitFor(fn, what, timeout = 30000) {
  const until = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('Maria waits, the clinician lets her in, they see and hear each other, and the visit ends', async () => {
  const mctx = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const maria = await mctx.newPage();
  const mariaProblems = watchConsole(maria);
  await signInAs(maria, server, 'maria@demo.carefront.example');

  // From the visit's page, by keyboard.
  await maria.goto(`${server.url}visits/demo-maria-appt-video`);
  await maria.getByRole('link', { name: 'Join video visit' }).focus();
  await maria.keyboard.press('Enter');
  await maria.waitForURL(/\/video$/);

  // First time: consent to video visits. Sending without it is refused.
  await maria.getByRole('button', { name: 'Continue' }).click();
  await maria.getByText('Check the box to agree').waitFor();
  await maria.getByLabel('I agree to have visits by video').focus();
  await maria.keyboard.press('Space');
  await maria.getByRole('button', { name: 'Continue' }).focus();
  await maria.keyboard.press('Enter');
  await maria.getByText('Your agreement is saved in your record').waitFor();
  await maria.getByText('You are in the waiting room.').waitFor();
  assert.ok(await maria.getByText('Video visits are not recorded').isVisible());
  assert.equal(await maria.evaluate(() => document.documentElement.scrollWidth), 375, 'the waiting room scrolls sideways at 375 px');
  assert.deepEqual(await axeViolations(maria), [], 'waiting room (en): axe-core violations');
  // The same waiting room in Spanish (a reload rejoins with a fresh token).
  await maria.goto(`${server.url}visits/demo-maria-appt-video/video?lang=es`);
  await maria.getByText('Está en la sala de espera.').waitFor();
  assert.deepEqual(await axeViolations(maria), [], 'waiting room (es): axe-core violations');
  await maria.goto(`${server.url}visits/demo-maria-appt-video/video?lang=en`);
  await maria.getByText('You are in the waiting room.').waitFor();

  // The clinician's list and the visit.
  const cctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const clinician = await cctx.newPage();
  const clinicianProblems = watchConsole(clinician);
  clinician.on('dialog', (d) => d.accept());
  await signInAs(clinician, server, 'clinician@demo.carefront.example');
  await clinician.goto(`${server.url}staff/visits`);
  await clinician.getByText('1 waiting').waitFor();
  assert.deepEqual(await axeViolations(clinician), [], "today's video visits (en): axe-core violations");
  await clinician.getByRole('link', { name: /Open the visit/ }).click();
  const admit = clinician.getByRole('button', { name: /Let in: Maria/ });
  await admit.waitFor();
  assert.ok(await clinician.getByText(/checked in|not checked in/).first().isVisible(), 'check-in status beside the waiting patient');
  assert.deepEqual(await axeViolations(clinician), [], 'clinician visit page (en): axe-core violations');

  // Waiting: no peer connection, nothing relayed, however long.
  await clinician.getByLabel('Message to the waiting room').fill('Running 10 minutes late');
  await clinician.getByRole('button', { name: 'Send to waiting room' }).click();
  await maria.getByText('Running 10 minutes late').waitFor();
  assert.equal(await maria.evaluate(() => window.carefrontVisit.peers.size), 0, 'a waiting patient has no peer connection');
  assert.equal(await clinician.evaluate(() => window.carefrontVisit.peers.size), 0, 'nobody is connected to a waiting patient');

  const admitted = Date.now();
  await admit.click();
  await maria.getByText('You are in the visit.').waitFor();
  const connected = async (page) => (await inbound(page)).states.includes('connected');
  await waitFor(() => connected(maria), "Maria's connection");
  await waitFor(() => connected(clinician), "the clinician's connection");
  await waitFor(async () => (await inbound(maria)).frames > 0, 'a decoded frame at Maria');
  console.log(`# admit to first decoded remote frame: ${Date.now() - admitted} ms`);
  const first = await inbound(maria);
  await waitFor(async () => {
    const now = await inbound(maria);
    return now.frames > first.frames + 10 && now.audioPackets > first.audioPackets;
  }, 'frames and audio still arriving at Maria');
  const c1 = await inbound(clinician);
  await waitFor(async () => (await inbound(clinician)).frames > c1.frames + 10 && c1.audioPackets >= 0, 'frames arriving at the clinician');
  assert.ok((await inbound(clinician)).audioPackets > 0, 'audio arrives at the clinician');
  assert.deepEqual(await axeViolations(maria), [], 'visit in progress (en): axe-core violations');
  for (const lang of ['es', 'en']) {
    await clinician.goto(`${server.url}visits/demo-maria-appt-video/video?for=demo-maria&lang=${lang}`);
    await waitFor(() => connected(clinician), `the clinician back in the visit (${lang})`);
    assert.deepEqual(await axeViolations(clinician), [], `clinician's visit in progress (${lang}): axe-core violations`);
  }

  // Mute and camera by keyboard; the state is in words, not colour alone.
  await maria.getByRole('button', { name: 'Mute' }).focus();
  await maria.keyboard.press('Enter');
  assert.equal(await maria.getByRole('button', { name: 'Unmute' }).getAttribute('aria-pressed'), 'true');
  await maria.getByRole('button', { name: 'Unmute' }).click();

  // An ICE restart: the banner shows, then the call goes on.
  await maria.evaluate(() => window.carefrontVisit.restart());
  await maria.locator('#visit-reconnecting').waitFor({ state: 'visible' });
  await maria.locator('#visit-reconnecting').waitFor({ state: 'hidden', timeout: 30000 });
  const after = await inbound(maria);
  await waitFor(async () => (await inbound(maria)).frames > after.frames + 10, 'frames after the ICE restart');

  // With CAREFRONT_TEST_IPTABLES (.ci/run sets it when it runs as root
  // and may change firewall rules): loopback UDP (v4 and v6), which carries the
  // media, is dropped until Maria's page shows the banner and a few
  // seconds more; the call recovers by itself.
  if (process.env.CAREFRONT_TEST_IPTABLES) {
    // Both families: Chromium prefers an IPv6 host pair when it has one.
    const rule = ['INPUT', '-i', 'lo', '-p', 'udp', '-j', 'DROP'];
    const firewall = (op) => { for (const cmd of ['iptables', 'ip6tables']) execFileSync(cmd, ['-w', op, ...rule]); };
    firewall('-I');
    try {
      await maria.locator('#visit-reconnecting').waitFor({ state: 'visible', timeout: 30000 });
      await new Promise((r) => setTimeout(r, 4000));
    } finally {
      firewall('-D');
    }
    await maria.locator('#visit-reconnecting').waitFor({ state: 'hidden', timeout: 60000 });
    const back = await inbound(maria);
    await waitFor(async () => (await inbound(maria)).frames > back.frames + 10, 'frames after the network came back');
  }

  // The clinician ends the visit.
  await clinician.getByRole('button', { name: 'End visit for everyone' }).click();
  await maria.getByText('The visit has ended').waitFor();
  await clinician.getByText('You ended the visit.').waitFor();

  // The clinician writes the visit back; Maria finds it after the visit.
  await clinician.getByRole('link', { name: "Write the visit's summary" }).click();
  await clinician.getByLabel('Summary and instructions for the patient').fill('We talked about your sugars. Keep the evening walk.\nTake metformin with dinner.');
  await clinician.locator('label[for=task-get-labs]').click();
  await clinician.getByLabel('Another task (optional)').fill('Check your feet every evening');
  assert.deepEqual(await axeViolations(clinician), [], 'write-back form (en): axe-core violations');
  await clinician.getByRole('button', { name: "Save to the patient's record" }).click();
  await clinician.getByText("The visit's summary is in the patient's record.").waitFor();

  await maria.goto(`${server.url}visits/demo-maria-appt-video`);
  await maria.getByRole('heading', { name: 'After your visit' }).waitFor();
  assert.ok(await maria.getByText('Take metformin with dinner.').isVisible(), 'the summary');
  assert.ok(await maria.getByText('Get the lab tests your clinician ordered').isVisible(), 'a follow-up task');
  assert.ok(await maria.getByText('Check your feet every evening').isVisible(), "the clinician's own task");
  for (const lang of ['es', 'en']) {
    await maria.goto(`${server.url}visits/demo-maria-appt-video?lang=${lang}`);
    assert.deepEqual(await axeViolations(maria), [], `after your visit (${lang}): axe-core violations`);
  }
  // The three questions, by keyboard: focus a radio, then Space.
  await maria.locator('#see-hear-5').focus();
  await maria.keyboard.press('Space');
  await maria.locator('#needs-met-yes').focus();
  await maria.keyboard.press('Space');
  await maria.locator('#again-yes').focus();
  await maria.keyboard.press('Space');
  await maria.getByRole('button', { name: 'Send my answers' }).focus();
  await maria.keyboard.press('Enter');
  await maria.getByText('Your answers help the clinic improve video visits').waitFor();

  for (const lang of ['es', 'en']) {
    await maria.goto(`${server.url}visits/device-check?lang=${lang}`);
    assert.deepEqual(await axeViolations(maria), [], `device check (${lang}): axe-core violations`);
    await clinician.goto(`${server.url}staff/visits?lang=${lang}`);
    assert.deepEqual(await axeViolations(clinician), [], `today's video visits (${lang}): axe-core violations`);
  }
  await maria.goto(`${server.url}visits/device-check`);
  await maria.getByRole('button', { name: 'Start the test' }).click();
  await maria.getByText('Your camera and microphone work').waitFor();
  assert.equal(await maria.evaluate(() => document.getElementById('device-preview').srcObject.getVideoTracks().length), 1);

  // The one 422 is the consent sent unticked, on purpose.
  assert.deepEqual(mariaProblems.filter((p) => !p.includes('favicon') && !p.includes('422')), [], "Maria's console");
  assert.deepEqual(clinicianProblems.filter((p) => !p.includes('favicon')), [], "the clinician's console");
  await mctx.close();
  await cctx.close();
});

// candidateTypes names the local candidate type of each connection's
// selected pair ("host", "srflx", "relay").
async function candidateTypes(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const p of window.carefrontVisit.peers.values()) {
      const stats = await p.pc.getStats();
      let pair;
      stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
      if (pair) out.push(stats.get(pair.localCandidateId).candidateType);
    }
    return out;
  });
}

test('with relay only, the media goes through the embedded TURN server', async () => {
  const mctx = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const maria = await mctx.newPage();
  await signInAs(maria, relayServer, 'maria@demo.carefront.example');
  await maria.goto(`${relayServer.url}visits/demo-maria-appt-video/video`);
  await maria.locator('label[for=agree]').click(); // USWDS hides the box itself
  await maria.getByRole('button', { name: 'Continue' }).click();
  await maria.getByText('You are in the waiting room.').waitFor();
  await maria.goto(`${relayServer.url}visits/demo-maria-appt-video/video?relay=1`);
  await maria.getByText('You are in the waiting room.').waitFor();

  const cctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const clinician = await cctx.newPage();
  await signInAs(clinician, relayServer, 'clinician@demo.carefront.example');
  await clinician.goto(`${relayServer.url}visits/demo-maria-appt-video/video?for=demo-maria&relay=1`);
  const config = JSON.parse(await clinician.locator('#visit').getAttribute('data-config'));
  assert.equal(config.ice.length, 1, 'the page is given the TURN server');
  assert.match(config.ice[0].urls[0], /^turn:127\.0\.0\.1:\d+\?transport=udp$/);
  assert.match(config.ice[0].username, /^\d+:[0-9a-f]{16}$/, 'the TURN username names nobody');
  await clinician.getByRole('button', { name: /Let in: Maria/ }).click();

  await waitFor(async () => (await inbound(maria)).frames > 0, 'a decoded frame through the relay');
  const first = await inbound(maria);
  await waitFor(async () => (await inbound(maria)).frames > first.frames + 10, 'frames still arriving through the relay');
  assert.deepEqual(await candidateTypes(maria), ['relay'], "Maria's media path");
  assert.deepEqual(await candidateTypes(clinician), ['relay'], "the clinician's media path");
  await mctx.close();
  await cctx.close();
});
