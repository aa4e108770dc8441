// The idle-timeout warning: two minutes before a signed-in session would
// end for inactivity, a dialog offers to stay signed in. Without
// JavaScript the server still ends the session on time.
(() => {
  const idle = Number(document.body.dataset.idleSeconds || 0);
  const dialog = document.getElementById('idle-warning');
  const stay = document.getElementById('idle-stay');
  if (!idle || !dialog || !stay) return;
  const warnBefore = 120;
  let warnTimer;
  let endTimer;
  const arm = () => {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    warnTimer = setTimeout(() => {
      if (!dialog.open) dialog.showModal();
      stay.focus();
    }, Math.max(0, idle - warnBefore) * 1000);
    endTimer = setTimeout(() => window.location.assign('/signin'), idle * 1000);
  };
  stay.addEventListener('click', async () => {
    try {
      const res = await fetch('/session/keepalive', { method: 'POST', credentials: 'same-origin' });
      if (res.status === 204) {
        dialog.close();
        arm();
        return;
      }
    } catch (e) {
      // fall through: the session cannot be kept
    }
    window.location.assign('/signin');
  });
  // A connected video visit keeps the session alive (visit.js).
  document.addEventListener('carefront:active', arm);
  arm();
})();
