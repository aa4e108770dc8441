// A password strength meter for fields marked data-strength: a rough
// estimate while typing, read out politely. The server's rules (length,
// common passwords, your own name) decide; without JavaScript the server's
// message beside the field is all there is.
(() => {
  const words = {
    en: ['Too short', 'Weak: easy to guess', 'Fair: longer is better', 'Strong'],
    es: ['Demasiado corta', 'Débil: fácil de adivinar', 'Aceptable: más larga es mejor', 'Fuerte'],
  };
  const lang = document.documentElement.lang === 'es' ? 'es' : 'en';
  const score = (pw) => {
    const n = [...pw].length;
    if (n < 8) return 0;
    let variety = 0;
    if (/[a-z]/.test(pw)) variety++;
    if (/[A-Z]/.test(pw)) variety++;
    if (/[0-9]/.test(pw)) variety++;
    if (/[^A-Za-z0-9]/.test(pw)) variety++;
    const repeats = /(.)\1{2,}/.test(pw) || /(0123|1234|2345|3456|4567|5678|6789|abcd|qwer|asdf)/i.test(pw);
    if (repeats || (n < 12 && variety < 3)) return 1;
    if (n < 16 && variety < 4) return 2;
    return 3;
  };
  for (const input of document.querySelectorAll('input[data-strength]')) {
    const out = document.getElementById(input.dataset.strength);
    if (!out) continue;
    out.hidden = false;
    input.addEventListener('input', () => {
      out.textContent = input.value ? words[lang][score(input.value)] : '';
      out.dataset.level = input.value ? String(score(input.value)) : '';
    });
  }
})();
