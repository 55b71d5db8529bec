// Formatting for people: sizes, dates, durations, rates and ETAs. Display only; every
// figure comes from core as it is.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1.5 GiB`: binary units, as the command line prints them. */
export function bytes(n) {
  let value = Number(n) || 0;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

/** How the wire spells an unlimited quota (a subtenant sharing its tenant's): core's `Limit`. */
export const UNLIMITED = -1;

/** Whether a quota has no limit of its own. The one place the console reads the `-1`. */
export function isUnlimited(n) {
  return Number(n) < 0;
}

/** A quota: `unlimited` for a subtenant sharing its tenant's; a quota of 0 is 0 B. */
export function quota(n) {
  return isUnlimited(n) ? 'unlimited' : bytes(n);
}

/** The used share of a quota, 0 to 1: a quota of 0 is full; an unlimited one has no share. */
export function quotaShare(used, n) {
  if (isUnlimited(n)) return 0;
  return Number(n) === 0 ? 1 : Math.min(1, Number(used) / Number(n));
}

const pad = (n) => String(n).padStart(2, '0');

/** `2026-12-02 14:05` in local time; `—` for none. */
export function dateTime(ms) {
  if (ms === null || ms === undefined || ms === 0) return '—';
  const d = new Date(ms);
  return `${date(ms)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** `2026-12-02 14:05:09` in local time: a restore point's time, to tell close ones apart. */
export function exactTime(ms) {
  if (ms === null || ms === undefined || ms === 0) return '—';
  const d = new Date(ms);
  return `${dateTime(ms)}:${pad(d.getSeconds())}`;
}

/**
 * What a job's newest restore test says, for lists: when it was last proven restorable, that
 * the test failed, or that it never ran.
 */
export function proof(p) {
  if (!p) return 'Not tested yet';
  if (p.result === 'failed') return `Restore test failed ${dateTime(p.tested_ms)}`;
  if (p.proven_ms) return `Proven ${dateTime(p.proven_ms)}`;
  return 'Not proven yet';
}

/**
 * A tenant's backups as its provider sees them (restore tests, ransomware signals of its jobs
 * and its computers), as `sp tenant list` says it.
 */
export function standing(s) {
  if (!s || s.jobs === 0) return 'Nothing reported';
  const parts = [];
  if (s.suspicious > 0) parts.push(`Suspicious runs (${s.suspicious} ${s.suspicious === 1 ? 'job' : 'jobs'})`);
  if (s.failed_tests > 0) parts.push(`Restore test failed (${s.failed_tests} ${s.failed_tests === 1 ? 'job' : 'jobs'})`);
  else parts.push(s.proven_since_ms ? `Proven restorable since ${dateTime(s.proven_since_ms)}` : 'Not all proven restorable');
  return parts.join('; ');
}

/** `2026-12-02` in local time; `—` for none. */
export function date(ms) {
  if (ms === null || ms === undefined || ms === 0) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** `2 h 5 min`, `40 s`. */
export function duration(secs) {
  const s = Math.max(0, Math.round(Number(secs) || 0));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const hours = Math.floor(s / 3600);
  if (hours < 48) return `${hours} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(hours / 24)} days`;
}

/** `12.3 MiB/s`. */
export function rate(bytesPerSec) {
  return `${bytes(Math.round(Number(bytesPerSec) || 0))}/s`;
}

/** `in 3 days`, `2 h ago`: how far `ms` is from now. */
export function relative(ms, now = Date.now()) {
  if (!ms) return '—';
  const diff = ms - now;
  const text = duration(Math.abs(diff) / 1000);
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

/** A number with thousands separators. */
export function count(n) {
  return Number(n || 0).toLocaleString('en-US');
}

/** `1 file`, `22 files`, `1,000 folders`: a count with its noun. */
export function counted(n, one, many = `${one}s`) {
  return `${count(n)} ${Number(n) === 1 ? one : many}`;
}

/** Bytes from a figure in GiB typed by a person (empty or 0: none). */
export function gibToBytes(text) {
  const value = Number(String(text).trim() || '0');
  return Math.round(value * 1024 * 1024 * 1024);
}

/** A date input's value (`YYYY-MM-DD`) as the end of that day in UTC, as the CLI's `--lease-until`. */
export function endOfDayMs(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(text).trim());
  if (!m) return null;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59, 999);
}

/** A lease as people read it: `No end`, or `ends on 2027-12-31` (the last day, as it was set). */
export function lease(ms) {
  return ms ? `ends on ${dateInput(ms)}` : 'No end';
}

/** A lease end as a date input value. */
export function dateInput(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}
