// Check-in questions that depend on an earlier answer (the Questionnaire's
// enableWhen, in data-when) show only when that answer holds, as the
// server decides when the form is sent: a question hidden here is
// disabled, so it sends nothing, and the server, finding its condition
// false, neither asks for it nor keeps an answer. Without JavaScript every
// question shows, with a hint to answer it only if it applies.
(() => {
  const form = document.querySelector('form[data-checkin]');
  if (!form) return;
  const blocks = [...form.querySelectorAll('[data-when]')].map((el) => {
    try {
      return { el, when: JSON.parse(el.dataset.when) };
    } catch {
      return null; // left shown: the server still decides
    }
  }).filter(Boolean);
  if (!blocks.length) return;

  // The hints are for pages without JavaScript.
  for (const hint of form.querySelectorAll('.cf-when-hint')) {
    hint.hidden = true;
    if (!hint.id) continue;
    for (const el of form.querySelectorAll(`[aria-describedby~="${hint.id}"]`)) {
      const rest = el.getAttribute('aria-describedby').split(/\s+/).filter((id) => id && id !== hint.id);
      if (rest.length) el.setAttribute('aria-describedby', rest.join(' '));
      else el.removeAttribute('aria-describedby');
    }
  }

  // answer is a question's form value, "" when it is not shown.
  const answer = (linkId) => {
    const field = form.elements.namedItem(`q-${linkId}`);
    if (!field) return '';
    const first = field instanceof RadioNodeList ? field[0] : field;
    if (!first || first.closest('[hidden]')) return '';
    return (field.value || '').trim();
  };

  // holds compares as the server does: numbers as numbers, everything else
  // (codes, booleans, ISO dates, text) as text.
  const holds = (c) => {
    const got = answer(c.q);
    if (c.op === 'exists') return (got !== '') === (c.v === 'true');
    if (got === '') return false;
    let cmp;
    if (c.t === 'integer' || c.t === 'decimal') {
      const a = Number(got);
      const b = Number(c.v);
      if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
      cmp = Math.sign(a - b);
    } else {
      cmp = got < c.v ? -1 : got > c.v ? 1 : 0;
    }
    switch (c.op) {
      case '=': return cmp === 0;
      case '!=': return cmp !== 0;
      case '>': return cmp > 0;
      case '<': return cmp < 0;
      case '>=': return cmp >= 0;
      case '<=': return cmp <= 0;
      default: return false;
    }
  };

  const update = () => {
    // A question's answer counts only while it shows, so go round until
    // nothing changes (at most once per question).
    for (let round = 0; round <= blocks.length; round++) {
      let changed = false;
      for (const { el, when } of blocks) {
        const conds = when.c || [];
        const show = when.any ? conds.some(holds) : conds.every(holds);
        if (el.hidden === show) {
          el.hidden = !show;
          changed = true;
        }
      }
      if (!changed) break;
    }
    for (const { el } of blocks) {
      for (const input of el.querySelectorAll('input, textarea, select')) {
        input.disabled = Boolean(input.closest('[hidden]'));
      }
    }
  };
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  update();
})();
