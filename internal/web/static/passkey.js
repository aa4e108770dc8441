// Passkeys in the browser: adding one (account security, first sign-in),
// signing in with one alone (a button, and the email field's autofill),
// and using one as the second step or to confirm it is you. The server
// sends WebAuthn options as JSON with base64url fields; this turns them
// into what navigator.credentials expects and the answer back into JSON.
// Where the browser has no WebAuthn, passkey controls stay hidden and the
// pages work as they do without JavaScript.
(() => {
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  for (const el of document.querySelectorAll('.cf-passkey')) el.hidden = false;
  for (const el of document.querySelectorAll('.cf-passkey-unsupported')) el.hidden = true;

  const dec = (s) => {
    const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    return Uint8Array.from(b, (c) => c.charCodeAt(0)).buffer;
  };
  const enc = (buf) => {
    let s = '';
    for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const withIDs = (list) => (list || []).map((c) => ({ ...c, id: dec(c.id) }));

  const creationOptions = (o) => ({
    ...o, challenge: dec(o.challenge), user: { ...o.user, id: dec(o.user.id) }, excludeCredentials: withIDs(o.excludeCredentials),
  });
  const requestOptions = (o) => ({ ...o, challenge: dec(o.challenge), allowCredentials: withIDs(o.allowCredentials) });

  const answer = (cred) => {
    const r = cred.response;
    const out = {
      id: cred.id, rawId: enc(cred.rawId), type: cred.type, authenticatorAttachment: cred.authenticatorAttachment,
      clientExtensionResults: cred.getClientExtensionResults(), response: { clientDataJSON: enc(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = enc(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = enc(r.authenticatorData);
      out.response.signature = enc(r.signature);
      if (r.userHandle) out.response.userHandle = enc(r.userHandle);
    }
    return out;
  };

  const post = async (url, body) => {
    const res = await fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { /* no body */ }
    return { ok: res.ok, data };
  };

  // say shows a message in the control's live region; a cancelled prompt
  // is said plainly, not as a failure.
  const say = (root, text) => {
    const m = root.querySelector('[data-passkey-message]') || root.parentElement.querySelector('[data-passkey-message]');
    if (m) m.textContent = text || '';
  };
  const cancelled = (root) => {
    const m = root.querySelector('[data-passkey-message]') || root.parentElement.querySelector('[data-passkey-message]');
    return (m && m.dataset.cancelled) || '';
  };

  // Adding a passkey.
  for (const form of document.querySelectorAll('form[data-passkey-register]')) {
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const name = form.querySelector('[name=name]').value.trim();
      const button = form.querySelector('button');
      button.disabled = true;
      say(form, '');
      try {
        const o = await post('/account/passkeys/options');
        if (!o.ok) {
          if (o.data.stepUp) { window.location.assign(o.data.stepUp); return; }
          say(form, o.data.message);
          return;
        }
        let cred;
        try {
          cred = await navigator.credentials.create({ publicKey: creationOptions(o.data.options.publicKey) });
        } catch (err) {
          say(form, cancelled(form));
          return;
        }
        const f = await post('/account/passkeys', { ceremony: o.data.ceremony, name, credential: answer(cred) });
        if (!f.ok) { say(form, f.data.message); return; }
        if (f.data.first) document.getElementById('passkey-done').submit();
        else window.location.assign(f.data.next);
      } finally {
        button.disabled = false;
      }
    });
  }

  // get runs one sign-in ceremony and posts the answer.
  const get = async (optionsURL, extra, mediation, signal) => {
    const o = await post(optionsURL);
    if (!o.ok) return o;
    const cred = await navigator.credentials.get({ publicKey: requestOptions(o.data.options.publicKey), mediation, signal });
    return post('/signin/passkey', { ceremony: o.data.ceremony, credential: answer(cred), ...extra });
  };

  // Signing in with a passkey alone: the button, and the autofill.
  const signin = document.querySelector('[data-passkey-signin]');
  if (signin) {
    const root = signin.parentElement;
    let autofill;
    const start = async (mediation) => {
      const ctl = new AbortController();
      if (mediation === 'conditional') autofill = ctl;
      try {
        const f = await get('/signin/passkey/options', signin.dataset.return ? { return: signin.dataset.return } : {}, mediation, ctl.signal);
        if (f.ok) { window.location.assign(f.data.next); return; }
        say(root, f.data.message);
      } catch (err) {
        if (mediation !== 'conditional') say(root, cancelled(root));
      }
    };
    signin.addEventListener('click', () => {
      if (autofill) autofill.abort();
      say(root, '');
      start('optional');
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((ok) => { if (ok) start('conditional'); });
    }
  }

  // A passkey as the second step, or to confirm it is you.
  for (const button of document.querySelectorAll('[data-passkey-verify]')) {
    const root = button.parentElement;
    button.addEventListener('click', async () => {
      button.disabled = true;
      say(root, '');
      try {
        const f = await get('/signin/verify/passkey/options', { return: button.dataset.passkeyVerify });
        if (!f.ok) { say(root, f.data.message); return; }
        const next = button.dataset.passkeyContinue && document.getElementById(button.dataset.passkeyContinue);
        if (next) next.submit(); // the confirmed action goes on with what was typed
        else window.location.assign(f.data.next);
      } catch (err) {
        say(root, cancelled(root));
      } finally {
        button.disabled = false;
      }
    });
  }
})();
