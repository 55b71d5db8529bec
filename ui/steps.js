// Wizard steps the New job and New policy wizards share — schedule, retention, encryption —
// and how a schedule reads. Views use them; no view imports another.

import { h, field, radioGroup, selectField, uid } from './dom.js';
import { validPassword, passwordError, passwordHint } from './rules.js';

const WEEKDAYS = [['mon', 'Mon'], ['tue', 'Tue'], ['wed', 'Wed'], ['thu', 'Thu'], ['fri', 'Fri'], ['sat', 'Sat'], ['sun', 'Sun']];

/** A schedule as a sentence. */
export function scheduleText(s) {
  if (s.kind === 'daily') return `daily at ${s.at}${s.weekdays.length ? ` on ${s.weekdays.join(', ')}` : ''}`;
  if (s.kind === 'every_hours') return s.hours === 1 ? 'every hour' : `every ${s.hours} hours`;
  return 'manual';
}

/** The schedule step: manual, daily at a time on chosen days, or every few hours. */
export function scheduleStep(body, data) {
  const s = data.spec.schedule;
  const kind = radioGroup({
    legend: 'When does it run?',
    name: 'job-schedule',
    value: s.kind,
    options: [['manual', 'Only when I choose Run now'], ['daily', 'Every day at a set time'], ['every_hours', 'Every few hours']],
    hint: 'Scheduled runs happen while the console is open, or always with the Cloudkeep daemon installed (see the README).',
  });
  const at = field({ label: 'Time of day', id: 'job-at', kind: 'time', value: s.kind === 'daily' ? s.at : '22:00' });
  const days = WEEKDAYS.map(([v, text]) => {
    const id = uid('day');
    const input = h('input', { type: 'checkbox', id, value: v, checked: s.kind === 'daily' && s.weekdays.includes(v) });
    return { input, el: h('span', { class: 'check' }, input, h('label', { for: id, text })) };
  });
  const dayGroup = h('fieldset', { class: 'field weekdays' }, h('legend', { class: 'field-label', text: 'On these days (none: every day)' }), days.map((d) => d.el));
  const hours = field({ label: 'Every how many hours', id: 'job-hours', kind: 'number', min: 1, max: 168, value: s.kind === 'every_hours' ? String(s.hours) : '6' });
  const daily = h('div', { class: 'sub' }, at.wrap, dayGroup);
  const hourly = h('div', { class: 'sub' }, hours.wrap);
  const sync = () => { const v = kind.value(); daily.hidden = v !== 'daily'; hourly.hidden = v !== 'every_hours'; };
  kind.inputs.forEach((i) => i.addEventListener('change', sync));
  body.append(kind.wrap, daily, hourly);
  sync();
  return () => {
    const v = kind.value();
    if (v === 'daily') {
      if (!/^\d{2}:\d{2}$/.test(at.input.value)) { at.setError('Give a time such as 22:00.'); return false; }
      data.spec.schedule = { kind: 'daily', at: at.input.value, weekdays: days.filter((d) => d.input.checked).map((d) => d.input.value) };
    } else if (v === 'every_hours') {
      const n = Number(hours.input.value);
      if (!Number.isInteger(n) || n < 1 || n > 168) { hours.setError('Give a whole number of hours from 1 to 168.'); return false; }
      data.spec.schedule = { kind: 'every_hours', hours: n };
    } else {
      data.spec.schedule = { kind: 'manual' };
    }
    return true;
  };
}

/** The retention step: last N, N days, and one per week, month and year (GFS). */
export function retentionStep(body, data) {
  const r = data.spec.retention;
  const num = (label, id, value, hint) => field({ label, id, kind: 'number', min: 0, max: 10000, value: value === null || value === undefined ? '' : String(value), hint });
  const last = num('Keep the last restore points', 'job-keep-last', r.keep_last, 'Empty: no count limit.');
  const days = num('Keep every restore point of the last days', 'job-keep-days', r.keep_days, 'Empty: no day limit.');
  const weekly = num('Also keep one point per week, for this many weeks', 'job-weekly', r.weekly);
  const monthly = num('One per month, for this many months', 'job-monthly', r.monthly);
  const yearly = num('One per year, for this many years', 'job-yearly', r.yearly);
  body.append(h('p', { class: 'hint', text: 'After each backup, restore points no rule keeps are removed. Beyond the last ones, the last point of each week, month and year can be kept for longer.' }),
    h('div', { class: 'grid-2' }, last.wrap, days.wrap), h('div', { class: 'grid-3' }, weekly.wrap, monthly.wrap, yearly.wrap));
  return () => {
    let ok = true;
    const read = (f, optional) => {
      const text = f.input.value.trim();
      if (text === '') { f.setError(null); return optional ? null : 0; }
      const n = Number(text);
      if (!Number.isInteger(n) || n < 0) { f.setError('Give a whole number, 0 or more.'); ok = false; return 0; }
      f.setError(null);
      return n;
    };
    const next = { keep_last: read(last, true), keep_days: read(days, true), weekly: read(weekly), monthly: read(monthly), yearly: read(yearly) };
    if (next.keep_last === 0) next.keep_last = null;
    if (next.keep_days === 0) next.keep_days = null;
    if (!ok) return false;
    data.spec.retention = next;
    return true;
  };
}

/** The encryption step; `always` (a backup policy): no choice, a password is required. */
export function encryptionStep(body, data, { always = false } = {}) {
  const on = field({ label: 'Encrypt restore points on this computer before they leave it', id: 'job-encrypt', kind: 'checkbox', value: always || data.spec.encrypted });
  if (always) on.wrap.hidden = true;
  const pw = field({ label: 'Encryption password', id: 'job-password', kind: 'password', autocomplete: 'new-password', hint: `${passwordHint()} A passphrase of several words is best.` });
  const again = field({ label: 'Repeat the password', id: 'job-password2', kind: 'password', autocomplete: 'new-password' });
  const ack = field({ label: 'I have stored this password somewhere safe', id: 'job-password-ack', kind: 'checkbox' });
  const warning = h('p', { class: 'warning', id: 'job-password-warning', role: 'note', text: 'Without this password nobody can restore these restore points: not you, not your service provider, not Cloudkeep. It cannot be reset or recovered. Keep it in a password manager.' });
  const shared = h('p', { class: 'hint', id: 'job-password-shared', text: 'Jobs on one repository share its encryption key and deduplicate against each other; each job sees and restores only its own restore points. If the repository already holds backups, this password is added as a key of its own when another job on this computer can open it; otherwise give the password those backups were made with.' });
  shared.hidden = always;
  const secret = h('div', { class: 'sub' }, warning, shared, pw.wrap, again.wrap, ack.wrap);
  const sync = () => { secret.hidden = !on.input.checked; };
  on.input.addEventListener('change', sync);
  body.append(on.wrap, secret);
  sync();
  return () => {
    data.spec.encrypted = on.input.checked;
    if (!data.spec.encrypted) { data.password = null; return true; }
    let ok = true;
    if (!validPassword(pw.input.value)) { pw.setError(passwordError()); ok = false; } else pw.setError(null);
    if (again.input.value !== pw.input.value) { again.setError('The two passwords differ; type the same password twice.'); ok = false; } else again.setError(null);
    if (!ack.input.checked) { ack.setError('Confirm that you stored the password: it cannot be recovered.'); ok = false; } else ack.setError(null);
    if (!ok) return false;
    data.password = pw.input.value;
    return true;
  };
}

const TEST_SCHEDULES = {
  manual: { kind: 'manual' },
  weekly: { kind: 'daily', at: '04:00', weekdays: ['sun'] },
  daily: { kind: 'daily', at: '04:00', weekdays: [] },
};

/**
 * The restore test's schedule and share of the files (a job's options, a policy's own step):
 * a sample of the newest point restored and checked against what was backed up. Appends its
 * fields to `body`; returns the step's check, which writes them into `data.spec`.
 */
export function restoreTestStep(body, data) {
  const s = data.spec;
  const rt = s.restore_test || { kind: 'manual' };
  const value = rt.kind === 'daily' && rt.weekdays.length === 1 ? 'weekly' : rt.kind === 'daily' ? 'daily' : 'manual';
  const when = selectField({ label: 'Restore test (restores a sample of the newest point and checks it against the backup)', id: 'restore-test-schedule', value, options: [['manual', 'Only when asked'], ['weekly', 'Every Sunday at 04:00'], ['daily', 'Every day at 04:00']] });
  const sample = field({ label: 'Share of the files a restore test restores, in percent', id: 'restore-test-sample', kind: 'number', min: 1, max: 100, value: String(s.restore_test_sample ?? 1), hint: 'At least 20 files are always restored, so a small backup is proven whole.' });
  body.append(when.wrap, sample.wrap);
  return () => {
    const share = Number(sample.input.value);
    if (!Number.isInteger(share) || share < 1 || share > 100) { sample.setError('Give a whole percentage from 1 to 100.'); return false; }
    s.restore_test = TEST_SCHEDULES[when.input.value];
    s.restore_test_sample = share;
    return true;
  };
}
