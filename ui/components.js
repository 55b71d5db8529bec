// The console's larger building blocks: guided wizards (steps, validation, focus), the
// confirm dialog for destructive actions, error boxes that say what to do, the certificate
// card of the trust step, and the run view (live progress bar and log of a backup or restore).

import { h, replaceChildren, button, facts, uid, paintBars, badge } from './dom.js';
import * as fmt from './format.js';

/**
 * An error as a box: the message, for a changed certificate both fingerprints, and the
 * remedy core names as a button.
 * `err` is a ConsoleError (or anything with a message).
 */
export function errorBox(err, { id } = {}) {
  const detail = err && err.detail;
  const changed = detail && detail.expected && detail.cert;
  // A changed certificate: the two fingerprints below say it better than the message.
  const message = changed
    ? `The certificate presented now is not the one you trusted: ${detail.cert.subject}, issued by ${detail.cert.issuer}, valid until ${fmt.date(Date.parse(detail.cert.not_after))}.`
    : (err && err.message) || String(err);
  const box = h('div', { class: 'error-box', role: 'alert', id }, h('p', { class: 'error-title', text: errorTitle(err) }), h('p', { text: message }));
  if (changed) {
    box.append(facts([
      ['Trusted before', detail.expected, 'cert-expected'],
      ['Presented now', detail.cert.fingerprint, 'cert-presented'],
    ]));
  }
  const remedy = remedyButton(err && err.remedy);
  if (remedy) box.append(h('p', {}, remedy));
  return box;
}

/**
 * The one thing to do about an error, as a button that goes where it is done (core names the
 * remedy; the command line prints the same remedy as a command).
 */
function remedyButton(remedy) {
  const where = {
    trust_certificate: ['Review and trust the new certificate', 'providers'],
    list_jobs: ['Show the backup jobs', 'jobs'],
    list_providers: ['Show the service providers', 'providers'],
  }[remedy && remedy.action];
  if (!where) return null;
  const el = button(where[0], { variant: 'secondary' });
  el.dataset.action = 'navigate';
  el.dataset.section = where[1];
  return el;
}

function errorTitle(err) {
  return {
    certificate_untrusted: 'Certificate not trusted',
    certificate_changed: 'Certificate changed',
    wrong_fingerprint: 'Fingerprint does not match',
    auth: 'Sign-in refused',
    quota: 'Quota or lease',
    unreachable: 'Gateway not reachable',
    not_found: 'Not found',
    exists: 'Already exists',
    invalid: 'Check your input',
  }[err && err.kind] || 'Something went wrong';
}

/** A slot that shows one error box at a time (or nothing). */
export function errorSlot() {
  const el = h('div', { class: 'error-slot' });
  return {
    el,
    show(err) { replaceChildren(el, err ? errorBox(err) : null); if (err) el.scrollIntoView({ block: 'nearest' }); },
    clear() { replaceChildren(el); },
  };
}

/** A short confirmation in a line (saved, started). */
export function notice(text, { id } = {}) {
  return h('p', { class: 'notice', role: 'status', id, text });
}

/**
 * Asks before a destructive action, in a modal dialog. Resolves true when confirmed.
 * Focus starts on Cancel; Escape cancels; focus returns where it was.
 */
export function confirmDialog({ title, message, confirmLabel = 'Delete', danger = true, extra }) {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const textId = uid('dialog-text');
    const previous = document.activeElement;
    const cancel = button('Cancel', { variant: 'secondary', id: 'dialog-cancel' });
    const ok = button(confirmLabel, { variant: danger ? 'danger' : 'primary', id: 'dialog-confirm' });
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId, 'aria-describedby': textId },
      h('h2', { id: titleId, text: title }),
      h('p', { id: textId, text: message }),
      extra || null,
      h('div', { class: 'actions' }, cancel, ok));
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      if (previous instanceof HTMLElement) previous.focus();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    ok.addEventListener('click', () => finish(true));
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); finish(false); });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/**
 * A button that copies `text()` to the clipboard and says so beside it; where the clipboard
 * cannot be written it selects `select` (the element showing the text) and says to press
 * Ctrl+C. `label` names what is copied for screen readers.
 */
export function copyButton(text, { id, label, select, caption = 'Copy' } = {}) {
  const status = h('span', { class: 'hint copy-status', role: 'status' });
  const btn = button(caption, { variant: 'secondary', id, label: label ? `${caption} ${label}` : undefined });
  btn.addEventListener('click', async () => {
    const value = text();
    let done = false;
    try {
      if (navigator.clipboard && navigator.clipboard.writeText) {
        await navigator.clipboard.writeText(value);
        done = true;
      }
    } catch { done = false; }
    if (!done) {
      const area = h('textarea', { class: 'visually-hidden', 'aria-hidden': 'true', readonly: true });
      area.value = value;
      document.body.append(area);
      area.select();
      try { done = document.execCommand('copy'); } catch { done = false; }
      area.remove();
    }
    if (!done && select) window.getSelection().selectAllChildren(select);
    status.textContent = done ? 'Copied.' : 'Selected: press Ctrl+C to copy.';
  });
  return h('span', { class: 'copy' }, btn, status);
}

/**
 * Destructive and rarely used actions, out of the primary toolbar: a disclosure ("More
 * actions") that opens a small area with `note` (what happens to the data) and `actions`.
 * `label` says what they are for, for screen readers.
 */
export function moreActions({ id, label, note, actions }) {
  return h('details', { class: 'more-actions', id },
    h('summary', { class: 'button button-secondary', 'aria-label': label ? `More actions ${label}` : undefined, text: 'More' }),
    h('div', { class: 'more-actions-body' }, note ? h('p', { class: 'hint', text: note }) : null, h('div', { class: 'row-actions' }, actions)));
}

/** Runs `work` with `btn` disabled and marked busy; errors go to `onError`. */
export async function busy(btn, work, onError) {
  const label = btn.textContent;
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } catch (err) {
    if (onError) onError(err);
    else throw err;
    return undefined;
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
    btn.textContent = label;
  }
}

/**
 * A guided wizard. `steps`: `{ title, render(body, data, wizard) }`; render may return a
 * function run on Next that returns false to stay (fields show their errors) or throws to show
 * an error box. Step options: `nextLabel`, `noBack`, `final` (no Back/Next, a Done button),
 * `hideCancel`. The wizard's heading takes focus on every step.
 */
export function wizard({ id, title, steps, data = {}, onFinish, onCancel, finishLabel = 'Finish' }) {
  const root = h('section', { class: 'wizard', id, 'aria-labelledby': `${id}-title` });
  const stepList = h('ol', { class: 'wizard-steps', 'aria-label': `${title}: steps` });
  const heading = h('h2', { class: 'wizard-title', id: `${id}-title`, tabindex: '-1' });
  const body = h('div', { class: 'wizard-body' });
  const errors = errorSlot();
  const back = button('Back', { variant: 'secondary', id: `${id}-back` });
  const next = button('Next', { id: `${id}-next`, type: 'submit' });
  const cancel = button('Cancel', { variant: 'link', id: `${id}-cancel` });
  const form = h('form', { class: 'wizard-form', novalidate: true }, heading, body, errors.el,
    h('div', { class: 'actions' }, cancel, h('span', { class: 'spacer' }), back, next));
  root.append(stepList, form);
  let index = 0;
  let leave = null;

  const w = {
    root,
    data,
    get index() { return index; },
    showError: (err) => errors.show(err),
    clearError: () => errors.clear(),
    go(i) { show(i); },
    next: () => advance(),
    setNextEnabled(on) { next.disabled = !on; },
  };

  function show(i) {
    index = i;
    const step = steps[i];
    errors.clear();
    replaceChildren(stepList, steps.map((s, n) => h('li', {
      class: n === i ? 'current' : n < i ? 'done' : '',
      'aria-current': n === i ? 'step' : false,
    }, h('span', { class: 'step-number', 'aria-hidden': 'true', text: String(n + 1) }), h('span', { text: s.title }))));
    heading.textContent = `${title}: ${step.title}`;
    replaceChildren(body);
    back.hidden = i === 0 || !!step.noBack || !!step.final;
    next.hidden = false;
    next.disabled = false;
    next.textContent = step.final ? 'Done' : step.nextLabel || (i === steps.length - 1 ? finishLabel : 'Next');
    cancel.hidden = !!step.final || !!step.hideCancel;
    leave = step.render(body, data, w) || null;
    paintBars(body);
    heading.focus();
  }

  async function advance() {
    const step = steps[index];
    const from = index;
    errors.clear();
    next.disabled = true;
    next.setAttribute('aria-busy', 'true');
    try {
      if (leave) {
        const ok = await leave();
        if (ok === false) {
          const invalid = body.querySelector('[aria-invalid="true"]');
          if (invalid) invalid.focus();
          return;
        }
      }
      if (step.final || index === steps.length - 1) {
        if (onFinish) await onFinish(data);
        return;
      }
      show(index + 1);
    } catch (err) {
      errors.show(err);
    } finally {
      // A new step set its own Next state; on the same step it is usable again.
      if (index === from) next.disabled = false;
      next.removeAttribute('aria-busy');
    }
  }

  form.addEventListener('submit', (event) => { event.preventDefault(); advance(); });
  back.addEventListener('click', () => show(index - 1));
  cancel.addEventListener('click', () => onCancel && onCancel());
  show(0);
  return w;
}

/**
 * Where the fingerprint to compare with comes from, for whom: a tenant admin gets it from the
 * service provider; the SP reads it on its own gateway.
 */
const FINGERPRINT_SOURCE = {
  tenant: { given: 'the fingerprint your service provider gave you', field: 'Fingerprint your service provider gave you', ask: 'ask your service provider', owner: 'your service provider’s' },
  sp: { given: 'the fingerprint your gateway shows (cloudkeep gateway cert show, on the gateway)', field: 'Fingerprint your gateway shows', ask: 'check which certificate the gateway serves', owner: 'your gateway’s' },
};

/**
 * The certificate a gateway presents, for the trust step or the SP's certificate page.
 * `audience`: `tenant` (compare with the provider's fingerprint), `sp` (the SP's own gateway),
 * `served` (the page showing what the gateway serves: nothing to compare).
 */
export function certificateCard(presented, { audience = 'tenant' } = {}) {
  const cert = presented.cert;
  const words = FINGERPRINT_SOURCE[audience];
  const caText = `Not vouched for by a certificate authority: ${presented.ca_problem || 'self-signed'}.`;
  // A certificate this console already pins for this very address (the lab, a provider
  // added before) is not asked about twice.
  const status = presented.pinned_by
    ? h('p', { class: 'trust trust-ok', id: 'cert-known', text: `You already trust this certificate: it is pinned for ${presented.pinned_by} at this address.` })
    : presented.ca_valid
    ? h('p', { class: 'trust trust-ok', id: 'cert-ca', text: 'Signed by a certificate authority this computer trusts, for this address.' })
    : h('p', { class: 'trust trust-warn', id: 'cert-ca', text: words ? `${caText} Compare the fingerprint with ${words.given} before you trust it.` : `${caText} Tenants compare its fingerprint with the one you give them.` });
  return h('div', { class: 'cert' }, status, facts([
    ['Subject', cert.subject, 'cert-subject'],
    ['Issuer', cert.issuer, 'cert-issuer'],
    ['Valid from', fmt.dateTime(Date.parse(cert.not_before)), 'cert-not-before'],
    ['Valid until', fmt.dateTime(Date.parse(cert.not_after)), 'cert-not-after'],
    ['Names', cert.names.join(', ') || '—', 'cert-names'],
    ['SHA-256 fingerprint', h('span', { class: 'fingerprint', id: 'cert-fingerprint', text: cert.fingerprint }), null],
  ]));
}

/** Fingerprints compare without separators or case: `AB:cd…` equals `abcd…`. */
export function sameFingerprint(a, b) {
  const norm = (s) => String(s || '').replace(/[^0-9a-f]/gi, '').toLowerCase();
  return norm(a).length > 0 && norm(a) === norm(b);
}

/**
 * The trust step's controls under a certificate card: paste the fingerprint the provider gave
 * and Verify it; the explicit "Trust this certificate" checkbox (not needed when a CA vouches).
 * Returns `{ el, trusted() }`: the fingerprint to pin, or null when not trusted yet.
 */
/** `onChange` runs when the verdict or the Trust box changes (a wizard clears its error). */
export function trustControls(presented, { onChange, audience = 'tenant' } = {}) {
  const fp = presented.cert.fingerprint;
  const words = FINGERPRINT_SOURCE[audience];
  const pasteId = 'fp-paste';
  const paste = h('input', { id: pasteId, type: 'text', spellcheck: 'false', autocomplete: 'off', class: 'mono' });
  const verdict = h('p', { class: 'verdict', id: 'fp-verdict', role: 'status' });
  const verify = button('Verify', { variant: 'secondary', id: 'fp-verify' });
  const trustId = 'cert-trust';
  const trust = h('input', { type: 'checkbox', id: trustId, checked: presented.ca_valid || !!presented.pinned_by });
  verify.addEventListener('click', () => {
    if (!paste.value.trim()) {
      verdict.textContent = `Paste ${words.given} first.`;
      verdict.dataset.state = 'none';
    } else if (sameFingerprint(paste.value, fp)) {
      verdict.textContent = `The fingerprints match: this is ${words.owner} certificate.`;
      verdict.dataset.state = 'match';
      trust.checked = true;
    } else {
      verdict.textContent = `The fingerprints do NOT match. Do not trust this certificate; ${words.ask}.`;
      verdict.dataset.state = 'mismatch';
      trust.checked = false;
    }
    if (onChange) onChange();
  });
  trust.addEventListener('change', () => onChange && onChange());
  const el = h('div', { class: 'trust-controls' },
    h('div', { class: 'field' },
      h('label', { for: pasteId, class: 'field-label', text: words.field }),
      h('div', { class: 'inline' }, paste, verify), verdict),
    h('div', { class: 'field field-check' }, trust,
      h('label', { for: trustId, text: 'Trust this certificate' })));
  return {
    el,
    trusted: () => (trust.checked ? fp : null),
    mismatch: () => verdict.dataset.state === 'mismatch',
  };
}

/**
 * The trust step of a wizard (Add service provider, SP connect): the certificate the gateway
 * presents, the trust controls, and a leave check that refuses a mismatched or untrusted
 * certificate. Sets `data.trust` to the fingerprint to pin. `untrusted`: what to do when the
 * box is not ticked.
 */
export function certificateStep(body, data, wz, { intro, untrusted, audience = 'tenant' }) {
  const trust = trustControls(data.probed, { onChange: () => wz.clearError(), audience });
  body.append(...[intro ? h('p', {}, intro) : null, certificateCard(data.probed, { audience }), trust.el].filter(Boolean));
  return () => {
    if (trust.mismatch()) throw { kind: 'wrong_fingerprint', message: `The fingerprint you pasted does not match the certificate. Do not go on; ${FINGERPRINT_SOURCE[audience].ask}.` };
    data.trust = trust.trusted();
    if (!data.trust) throw { kind: 'certificate_untrusted', message: untrusted };
    return true;
  };
}

/**
 * The live view of a run: a progress bar with files, bytes, rate and ETA, and its log.
 * `handle(event)` takes the run's channel events; `done` resolves with the Done event.
 */
export function runView({ id = 'run', title }) {
  const fill = h('div', { class: 'progress-fill', dataset: { pct: '0' } });
  const bar = h('div', { class: 'progress', role: 'progressbar', id: `${id}-progress`, 'aria-label': title, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 }, fill);
  const pctText = h('span', { class: 'progress-pct', id: `${id}-pct`, text: '0 %' });
  const figures = h('p', { class: 'figures', id: `${id}-figures`, text: 'Starting…' });
  const log = h('ol', { class: 'run-lines', id: `${id}-log` });
  const logFrame = h('div', { class: 'log run-log', role: 'log', 'aria-label': `${title}: log`, tabindex: '0' }, log);
  const state = h('p', { class: 'run-state', id: `${id}-state`, role: 'status', text: 'Running' });
  const el = h('div', { class: 'run', id }, h('div', { class: 'progress-row' }, bar, pctText), figures, state, logFrame);
  let resolveDone;
  const done = new Promise((resolve) => { resolveDone = resolve; });

  function setPct(pct) {
    const p = Math.max(0, Math.min(100, Math.floor(pct)));
    bar.classList.remove('indeterminate');
    fill.dataset.pct = String(p);
    fill.style.width = `${p}%`;
    bar.setAttribute('aria-valuenow', String(p));
    pctText.textContent = `${p} %`;
  }

  function handle(event) {
    if (event.event === 'progress') {
      const p = event.progress;
      // The expected size is the last point's: a source that grew past it has no share.
      const known = p.expected_bytes && p.bytes <= p.expected_bytes;
      if (known) {
        bar.classList.remove('indeterminate');
        setPct((100 * p.bytes) / p.expected_bytes);
      } else {
        // A first backup does not know its total: the bar moves without a share.
        bar.classList.add('indeterminate');
        bar.removeAttribute('aria-valuenow');
        pctText.textContent = '';
      }
      const eta = !known || event.eta_secs === null || event.eta_secs === undefined ? '—' : fmt.duration(event.eta_secs);
      figures.textContent = `${fmt.counted(p.files, 'file')} · ${fmt.bytes(p.bytes)}${known ? ` of ${fmt.bytes(p.expected_bytes)}` : ' read'} · ${fmt.rate(event.rate)} · ETA ${eta}`;
    } else if (event.event === 'line') {
      log.append(h('li', { text: event.line }));
      while (log.childElementCount > 2000) log.firstElementChild.remove();
      logFrame.scrollTop = logFrame.scrollHeight;
    } else if (event.event === 'done') {
      const s = event.session;
      if (s.result === 'success' || s.result === 'warning') setPct(100);
      else {
        // Failed or stopped: the bar stops where the run did, marked as not finished.
        bar.classList.remove('indeterminate');
        bar.classList.add('progress-stopped');
        if (!bar.hasAttribute('aria-valuenow')) pctText.textContent = '';
      }
      el.dataset.result = s.result;
      replaceChildren(state, badge(s.result), ' ', event.error || s.message || 'Finished.');
      resolveDone(event);
    }
  }
  return { el, handle, done };
}

/** Session statistics as facts (backup or restore). */
export function sessionFacts(s) {
  const st = s.stats || {};
  const rows = [
    ['Result', badge(s.result), 'session-result'],
    ['Job', s.job],
    ['Kind', s.kind],
    ['Started', fmt.dateTime(s.started_ms)],
    ['Duration', fmt.duration((s.finished_ms - s.started_ms) / 1000)],
  ];
  if (s.point) rows.push(['Restore point', s.point, 'session-point']);
  if (st.files !== undefined) rows.push(['Files', fmt.count(st.files), 'session-files']);
  if (st.bytes !== undefined) rows.push(['Size', fmt.bytes(st.bytes)]);
  if (st.new_stored_bytes !== undefined) rows.push(['New data stored', fmt.bytes(st.new_stored_bytes)]);
  if (s.message) rows.push(['Message', s.message, 'session-message']);
  return facts(rows);
}
