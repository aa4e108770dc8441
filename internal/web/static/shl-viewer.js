// carefront's SMART Health Links viewer: the link arrives in the address's
// fragment (#shlink:/...), which browsers never send to a server. The page
// asks who is viewing (the manifest's recipient) and, for a P link, the
// passcode; fetches the manifest and its file; and decrypts the file (a
// compact JWE, dir + A256GCM) here with WebCrypto, using the key from the
// link. Nothing decrypted leaves the browser.
(() => {
  const root = document.getElementById('shl-viewer');
  if (!root) return;
  const say = (text) => { document.getElementById('shl-message').textContent = text; };
  const b64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
  const hash = decodeURIComponent(location.hash.slice(1));
  const at = hash.indexOf('shlink:/');
  if (at < 0) { say(root.dataset.needLink); return; }
  let link;
  try { link = JSON.parse(new TextDecoder().decode(b64url(hash.slice(at + 8)))); } catch { say(root.dataset.needLink); return; }
  if (!link.url || !link.key) { say(root.dataset.needLink); return; }
  if (link.label) { const l = document.getElementById('shl-label'); l.textContent = link.label; l.hidden = false; }
  const form = document.getElementById('shl-form');
  const needsPasscode = (link.flag || '').includes('P');
  document.getElementById('shl-passcode-group').hidden = !needsPasscode;
  form.hidden = false;

  async function decrypt(jwe) {
    const [header, , iv, ciphertext, tag] = jwe.split('.');
    const key = await crypto.subtle.importKey('raw', b64url(link.key), 'AES-GCM', false, ['decrypt']);
    const ct = b64url(ciphertext), t = b64url(tag);
    const body = new Uint8Array(ct.length + t.length);
    body.set(ct); body.set(t, ct.length);
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: b64url(iv), additionalData: new TextEncoder().encode(header), tagLength: 128 }, key, body);
    return JSON.parse(new TextDecoder().decode(plain));
  }

  function text(r) {
    const concept = r.code || r.vaccineCode || r.medicationCodeableConcept;
    const name = concept && (concept.text || (concept.coding && concept.coding[0] && (concept.coding[0].display || concept.coding[0].code)));
    if (r.resourceType === 'Patient') {
      const n = r.name && r.name[0];
      return n ? [(n.given || []).join(' '), n.family].filter(Boolean).join(' ') : '';
    }
    let value = '';
    if (r.valueQuantity) value = `: ${r.valueQuantity.value} ${r.valueQuantity.unit || ''}`.trimEnd();
    const when = r.effectiveDateTime || r.occurrenceDateTime || r.authoredOn || r.recordedDate || r.onsetDateTime || '';
    return `${name || ''}${value}${when ? ` (${when.slice(0, 10)})` : ''}`;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const recipient = document.getElementById('shl-recipient').value.trim();
    if (!recipient) { document.getElementById('shl-recipient').focus(); return; }
    const body = { recipient };
    if (needsPasscode) body.passcode = document.getElementById('shl-passcode').value;
    try {
      const res = await fetch(link.url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), credentials: 'omit' });
      if (res.status === 401) { const j = await res.json(); say(root.dataset.wrong.replace('{n}', j.remainingAttempts)); return; }
      if (res.status === 404) { say(root.dataset.gone); return; }
      if (!res.ok) { say(root.dataset.failed); return; }
      const manifest = await res.json();
      const list = document.getElementById('shl-list');
      list.replaceChildren();
      for (const f of manifest.files) {
        const jwe = f.embedded || await (await fetch(f.location, { credentials: 'omit' })).text();
        const bundle = await decrypt(jwe);
        for (const entry of bundle.entry || []) {
          const r = entry.resource;
          const li = document.createElement('li');
          const kind = document.createElement('span');
          kind.className = 'text-bold';
          kind.textContent = r.resourceType;
          li.append(kind, ' ', text(r));
          list.append(li);
        }
      }
      form.hidden = true;
      document.getElementById('shl-contents').hidden = false;
      say(root.dataset.opened);
      document.getElementById('shl-contents-heading').focus?.();
    } catch {
      say(root.dataset.failed);
    }
  });
})();
