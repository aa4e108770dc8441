// The device check before a video visit: the browser's permission state
// for camera and microphone, a camera preview, a microphone level meter
// and a test tone. Nothing leaves the browser.
(() => {
  const root = document.getElementById('device-check');
  if (!root) return;
  const t = JSON.parse(document.getElementById('device-strings').textContent);
  const $ = (id) => document.getElementById(id);
  const status = $('device-status');

  const showPermission = (name, state) => {
    const el = $(`device-${name}-state`);
    el.textContent = t[`device.permission.${state}`] || t['device.permission.unknown'];
    el.dataset.state = state;
    if (state === 'denied') $('device-blocked').hidden = false;
  };

  async function permissions() {
    if (!navigator.permissions) return;
    for (const name of ['camera', 'microphone']) {
      try {
        const p = await navigator.permissions.query({ name });
        showPermission(name, p.state);
        p.addEventListener('change', () => showPermission(name, p.state));
      } catch (e) {
        // Not every browser can be asked (Firefox for camera): left unknown.
      }
    }
  }

  let meterTimer = null;
  function meter(stream) {
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const data = new Uint8Array(analyser.fftSize);
    let heard = false;
    clearInterval(meterTimer);
    meterTimer = setInterval(() => {
      analyser.getByteTimeDomainData(data);
      let peak = 0;
      for (const v of data) peak = Math.max(peak, Math.abs(v - 128));
      const level = Math.min(100, Math.round((peak / 128) * 200));
      $('device-level').value = level;
      if (level > 5 && !heard) {
        heard = true;
        $('device-level-text').textContent = t['device.level.ok'];
      }
    }, 100);
    $('device-level-text').textContent = t['device.level.quiet'];
  }

  $('device-start').addEventListener('click', async () => {
    status.textContent = t['device.starting'];
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    } catch (e) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        status.textContent = t['device.nocamera'];
      } catch (e2) {
        status.textContent = t['device.failed'];
        $('device-blocked').hidden = false;
        await permissions();
        return;
      }
    }
    $('device-preview').srcObject = stream;
    if (stream.getVideoTracks().length) status.textContent = t['device.ready'];
    meter(stream);
    await permissions();
  });

  $('device-tone').addEventListener('click', () => {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 440;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 1);
    status.textContent = t['device.tone.playing'];
  });

  permissions();
})();
