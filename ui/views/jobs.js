// Backup jobs: the list (last result, next run, running now), a job's page (settings, run
// now / stop with live progress and log, sessions opening their report, edit, delete) and the
// New job wizard (name → sources → target → schedule → retention → encryption → summary),
// which also edits a job's sources, schedule and retention.

import { jobsList, jobGet, jobCreate, jobUpdate, jobDelete, jobRun, jobWatch, jobStop, providersList, pickFolder, sessionsList } from '../ipc.js';
import { h, replaceChildren, button, field, facts, table, badge, panel, radioGroup, selectField, emptyState, uid } from '../dom.js';
import { wizard, runView, confirmDialog, busy, errorBox } from '../components.js';
import * as fmt from '../format.js';

const WEEKDAYS = [['mon', 'Mon'], ['tue', 'Tue'], ['wed', 'Wed'], ['thu', 'Thu'], ['fri', 'Fri'], ['sat', 'Sat'], ['sun', 'Sun']];

export async function renderJobs(container, ctx) {
  const { view, name } = ctx.params;
  if (view === 'new') return renderJobWizard(container, ctx, null);
  if (view === 'edit') return renderJobWizard(container, ctx, await jobGet(name));
  if (view === 'job') return renderJob(container, ctx, name);
  const { jobs, running } = await jobsList();
  if (!ctx.current()) return;
  const isRunning = (job) => running.some((r) => r.job === job);
  replaceChildren(container,
    h('div', { class: 'toolbar' }, button('New job', { id: 'job-new', onClick: () => ctx.navigate('jobs', { view: 'new' }) })),
    table({
      caption: 'Backup jobs',
      id: 'jobs-table',
      columns: [
        ['Name', (j) => h('button', { type: 'button', class: 'link', id: `job-open-${j.name}`, text: j.name, on: { click: () => ctx.navigate('jobs', { view: 'job', name: j.name }) } })],
        ['Target', (j) => j.target],
        ['Schedule', (j) => j.schedule],
        ['Last result', (j) => (isRunning(j.name) ? badge('running') : j.last ? h('span', {}, badge(j.last.result), ` ${fmt.dateTime(j.last.started_ms)}`) : 'never run')],
        ['Next run', (j) => fmt.dateTime(j.next_run_ms), 'when'],
      ],
      rows: jobs,
      empty: 'No backup job yet. Choose New job to protect folders of this computer.',
    }));
  return undefined;
}

async function renderJob(container, ctx, name) {
  const [job, sessions] = await Promise.all([jobGet(name), sessionsList(name)]);
  if (!ctx.current()) return;
  ctx.setTitle(`Job ${name}`);
  const spec = job.spec;
  const runSlot = h('div', { class: 'run-slot', id: 'job-run-slot' });
  const run = button('Run now', { id: 'job-run' });
  const stop = button('Stop', { variant: 'secondary', id: 'job-stop', disabled: true });
  const edit = button('Edit', { variant: 'secondary', id: 'job-edit', onClick: () => ctx.navigate('jobs', { view: 'edit', name }) });
  const del = button('Delete', { variant: 'danger', id: 'job-delete' });
  const history = h('div', { id: 'job-sessions' });

  function showHistory(list) {
    replaceChildren(history, sessionTable(list, ctx, 'job-sessions-table'));
  }

  function follow(view) {
    const box = panel('Running now', view.el);
    replaceChildren(runSlot, box);
    run.disabled = true;
    stop.disabled = false;
    view.done.then(async (done) => {
      box.querySelector('h2').textContent = 'Last run';
      run.disabled = false;
      stop.disabled = true;
      const open = button('Open the report', { variant: 'secondary', id: 'job-open-report', onClick: () => ctx.navigate('sessions', { id: done.session.id }) });
      view.el.append(h('div', { class: 'actions' }, open));
      if (ctx.current()) showHistory(await sessionsList(name));
    });
  }

  run.addEventListener('click', () => busy(run, async () => {
    const view = runView({ id: 'job-progress', title: `Backup of ${name}` });
    await jobRun(name, 'backup', view.handle);
    follow(view);
  }, (err) => replaceChildren(runSlot, errorBox(err))));
  stop.addEventListener('click', () => busy(stop, () => jobStop(name, 'backup'), ctx.showError));
  del.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: `Delete job ${name}?`,
      message: 'The job and its stored encryption password are removed from this computer. Its restore points stay in the cloud repository.',
      confirmLabel: 'Delete job',
    });
    if (!ok) return;
    try {
      await jobDelete(name);
      await ctx.navigate('jobs');
    } catch (err) { ctx.showError(err); }
  });

  // A policy's computer: its agent backs it up; here its points are browsed and restored.
  const agentNote = spec.agent
    ? h('p', { class: 'hint', id: 'job-agent-note', text: `Computer ${spec.agent.computer} of a backup policy: its agent backs it up on the policy’s schedule. Browse and restore its points here; change or remove it in Backup policies.` })
    : null;
  if (spec.agent) {
    run.disabled = true;
    edit.disabled = true;
    del.disabled = true;
  }
  replaceChildren(container,
    h('div', { class: 'toolbar' }, run, stop, edit, del,
      button('Restore points', { variant: 'secondary', id: 'job-points', onClick: () => ctx.navigate('points', { job: name }) })),
    agentNote,
    runSlot,
    panel('Settings', specFacts(name, spec)),
    panel('Sessions', history));
  showHistory(sessions);
  // A run already going on (started by the schedule or another view) is followed.
  const watching = runView({ id: 'job-progress', title: `Backup of ${name}` });
  if (await jobWatch(name, 'backup', watching.handle)) follow(watching);
}

/** A job's settings as facts (the wizard's summary too). */
function specFacts(name, spec) {
  const r = spec.retention;
  const keep = [
    r.keep_last ? `last ${r.keep_last}` : null,
    r.keep_days ? `${r.keep_days} days` : null,
    r.weekly ? `${r.weekly} weekly` : null,
    r.monthly ? `${r.monthly} monthly` : null,
    r.yearly ? `${r.yearly} yearly` : null,
  ].filter(Boolean).join(', ') || 'everything';
  return facts([
    ['Name', name, 'spec-name'],
    ['Sources', spec.sources.join('\n'), 'spec-sources'],
    ['Excludes', spec.excludes.join(', ') || 'none'],
    ['Target', spec.target.kind === 'provider' ? `${spec.target.provider} / ${spec.target.repo}` : spec.target.path, 'spec-target'],
    ['Schedule', scheduleText(spec.schedule), 'spec-schedule'],
    ['Keep', keep, 'spec-retention'],
    ['Encryption', spec.encrypted ? 'encrypted (XChaCha20-Poly1305)' : 'not encrypted', 'spec-encryption'],
    ['Compression', spec.compression],
  ]);
}

export function scheduleText(s) {
  if (s.kind === 'daily') return `daily at ${s.at}${s.weekdays.length ? ` on ${s.weekdays.join(', ')}` : ''}`;
  if (s.kind === 'every_hours') return `every ${s.hours} hours`;
  return 'manual';
}

/** Sessions as a table whose rows open the session. */
export function sessionTable(list, ctx, id) {
  return table({
    caption: 'Sessions',
    id,
    columns: [
      ['Session', (s) => h('button', { type: 'button', class: 'link', text: `#${s.id}`, 'aria-label': `Open session ${s.id}`, on: { click: () => ctx.navigate('sessions', { id: s.id }) } })],
      ['Job', (s) => s.job],
      ['Kind', (s) => s.kind],
      ['Started', (s) => fmt.dateTime(s.started_ms), 'when'],
      ['Duration', (s) => fmt.duration((s.finished_ms - s.started_ms) / 1000)],
      ['Result', (s) => badge(s.result)],
      ['Message', (s) => s.message],
    ],
    rows: list,
    empty: 'No sessions yet.',
  });
}

const DEFAULT_SPEC = {
  sources: [],
  excludes: [],
  target: null,
  schedule: { kind: 'daily', at: '22:00', weekdays: [] },
  retention: { keep_last: 14, keep_days: null, weekly: 4, monthly: 6, yearly: 1 },
  encrypted: true,
  compression: 'default',
};

async function renderJobWizard(container, ctx, existing) {
  const providers = existing ? [] : await providersList();
  if (!ctx.current()) return;
  const editing = !!existing;
  ctx.setTitle(editing ? `Edit job ${existing.name}` : 'New backup job');
  const spec = structuredClone(existing ? existing.spec : DEFAULT_SPEC);
  const data = { name: existing ? existing.name : '', spec, password: null };
  if (!editing && ctx.params.provider) {
    const p = providers.find((x) => x.name === ctx.params.provider);
    if (p && p.repos[0]) spec.target = { kind: 'provider', provider: p.name, repo: p.repos[0].name };
  }
  const steps = [
    !editing && { title: 'Name', render: nameStep },
    { title: 'Sources', render: sourcesStep },
    !editing && { title: 'Target', render: (body, d) => targetStep(body, d, providers, ctx) },
    { title: 'Schedule', render: scheduleStep },
    { title: 'Retention', render: retentionStep },
    !editing && { title: 'Encryption', render: encryptionStep },
    {
      title: 'Summary',
      render(body, d) {
        body.append(h('p', {}, editing ? 'Save these settings?' : 'Create this job? You can run it right away from its page.'), specFacts(d.name, d.spec));
      },
    },
  ].filter(Boolean);
  const w = wizard({
    id: 'job-wizard',
    title: editing ? 'Edit job' : 'New job',
    data,
    finishLabel: editing ? 'Save' : 'Create job',
    onCancel: () => ctx.navigate('jobs', editing ? { view: 'job', name: data.name } : {}),
    async onFinish(d) {
      if (editing) await jobUpdate(d.name, d.spec);
      else await jobCreate(d.name, d.spec, d.spec.encrypted ? d.password : null);
      await ctx.navigate('jobs', { view: 'job', name: d.name });
    },
    steps,
  });
  replaceChildren(container, w.root);
}

function nameStep(body, data) {
  const name = field({ label: 'Job name', id: 'job-name', value: data.name, required: true, hint: 'Letters, digits, dots, dashes and underscores, such as Documents or laptop-daily.' });
  body.append(name.wrap);
  return () => {
    const v = name.input.value.trim();
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v)) {
      name.setError('Use 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.');
      return false;
    }
    data.name = v;
    return true;
  };
}

function sourcesStep(body, data) {
  const list = h('ul', { class: 'path-list', id: 'job-sources', 'aria-label': 'Folders to back up' });
  const path = field({ label: 'Folder to back up', id: 'job-source-path', hint: 'Type a full path or choose Browse, then Add.' });
  const browse = button('Browse…', { variant: 'secondary', id: 'job-source-browse' });
  const add = button('Add', { variant: 'secondary', id: 'job-source-add' });
  const excludes = field({ label: 'Exclude (one pattern per line)', id: 'job-excludes', kind: 'textarea', value: data.spec.excludes.join('\n'), hint: 'Glob patterns such as *.tmp, node_modules or /home/me/Downloads.' });
  function draw() {
    replaceChildren(list, data.spec.sources.length === 0
      ? h('li', { class: 'hint', text: 'No folder added yet.' })
      : data.spec.sources.map((s, i) => h('li', {}, h('span', { class: 'mono', text: s }),
        button('Remove', { variant: 'link', label: `Remove ${s}`, onClick: () => { data.spec.sources.splice(i, 1); draw(); } }))));
  }
  function addPath() {
    const v = path.input.value.trim();
    if (!v) { path.setError('Type a folder path or choose Browse.'); return; }
    if (!(v.startsWith('/') || /^[A-Za-z]:[\\/]/.test(v))) { path.setError('Give the full path, such as /home/me/Documents.'); return; }
    path.setError(null);
    if (!data.spec.sources.includes(v)) data.spec.sources.push(v);
    path.input.value = '';
    draw();
    path.input.focus();
  }
  browse.addEventListener('click', async () => {
    const picked = await pickFolder('Choose a folder to back up');
    if (picked) { path.input.value = picked; addPath(); }
  });
  add.addEventListener('click', addPath);
  path.input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); addPath(); } });
  body.append(list, h('div', { class: 'inline-field' }, path.wrap, browse, add), excludes.wrap);
  draw();
  return () => {
    if (path.input.value.trim()) addPath();
    if (data.spec.sources.length === 0) { path.setError('Add at least one folder to back up.'); return false; }
    data.spec.excludes = excludes.input.value.split('\n').map((s) => s.trim()).filter(Boolean);
    return true;
  };
}

function targetStep(body, data, providers, ctx) {
  if (providers.length === 0) {
    body.append(emptyState('Add a service provider first: its cloud repositories are where the job stores restore points.',
      button('Add service provider', { onClick: () => ctx.navigate('providers', { view: 'add' }) })));
    return () => { throw { kind: 'invalid', message: 'Add a service provider before you create a job.' }; };
  }
  const options = providers.flatMap((p) => p.repos.map((r) => [JSON.stringify([p.name, r.name]),
    `${p.name} / ${r.name} — ${fmt.bytes(r.free_bytes)} free of ${fmt.quota(r.quota_bytes)}`]));
  const current = data.spec.target ? JSON.stringify([data.spec.target.provider, data.spec.target.repo]) : options[0] && options[0][0];
  const target = selectField({ label: 'Cloud repository', id: 'job-target', options, value: current, hint: 'Restore points of this job are stored here.' });
  body.append(target.wrap);
  return () => {
    const [provider, repo] = JSON.parse(target.input.value);
    data.spec.target = { kind: 'provider', provider, repo };
    return true;
  };
}

export function scheduleStep(body, data) {
  const s = data.spec.schedule;
  const kind = radioGroup({
    legend: 'When does it run?',
    name: 'job-schedule',
    value: s.kind,
    options: [['manual', 'Only when I choose Run now'], ['daily', 'Every day at a set time'], ['every_hours', 'Every few hours']],
    hint: 'Scheduled runs happen while the console is open.',
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

export function retentionStep(body, data) {
  const r = data.spec.retention;
  const num = (label, id, value, hint) => field({ label, id, kind: 'number', min: 0, max: 10000, value: value === null || value === undefined ? '' : String(value), hint });
  const last = num('Keep the last restore points', 'job-keep-last', r.keep_last, 'Empty: no count limit.');
  const days = num('Keep every restore point of the last days', 'job-keep-days', r.keep_days, 'Empty: no day limit.');
  const weekly = num('Weekly restore points (GFS)', 'job-weekly', r.weekly);
  const monthly = num('Monthly restore points (GFS)', 'job-monthly', r.monthly);
  const yearly = num('Yearly restore points (GFS)', 'job-yearly', r.yearly);
  body.append(h('p', { class: 'hint', text: 'After each backup, restore points no rule keeps are removed. Grandfather-father-son (GFS) keeps the last point of each week, month and year as well.' }),
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
  const pw = field({ label: 'Encryption password', id: 'job-password', kind: 'password', autocomplete: 'new-password', hint: 'At least 8 characters; a passphrase of several words is best.' });
  const again = field({ label: 'Repeat the password', id: 'job-password2', kind: 'password', autocomplete: 'new-password' });
  const ack = field({ label: 'I have stored this password somewhere safe', id: 'job-password-ack', kind: 'checkbox' });
  const warning = h('p', { class: 'warning', id: 'job-password-warning', role: 'note', text: 'Without this password nobody can restore these restore points: not you, not your service provider, not Cloudkeep. It cannot be reset or recovered. Keep it in a password manager.' });
  const secret = h('div', { class: 'sub' }, warning, pw.wrap, again.wrap, ack.wrap);
  const sync = () => { secret.hidden = !on.input.checked; };
  on.input.addEventListener('change', sync);
  body.append(on.wrap, secret);
  sync();
  return () => {
    data.spec.encrypted = on.input.checked;
    if (!data.spec.encrypted) { data.password = null; return true; }
    let ok = true;
    if (pw.input.value.length < 8) { pw.setError('Use at least 8 characters.'); ok = false; } else pw.setError(null);
    if (again.input.value !== pw.input.value) { again.setError('The two passwords differ; type the same password twice.'); ok = false; } else again.setError(null);
    if (!ack.input.checked) { ack.setError('Confirm that you stored the password: it cannot be recovered.'); ok = false; } else ack.setError(null);
    if (!ok) return false;
    data.password = pw.input.value;
    return true;
  };
}

