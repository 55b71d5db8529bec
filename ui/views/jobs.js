// Backup jobs: the list (last result, next run, running now), a job's page (settings, run
// now / stop with live progress and log, sessions opening their report, edit, delete) and the
// New job wizard (name → sources → target → schedule → retention → encryption → summary),
// which also edits a job's sources, schedule and retention.

import { jobsList, jobGet, jobCreate, jobUpdate, jobDelete, jobRun, jobCompact, jobWatch, jobStop, providersList, providerRescan, pickFolder, sessionsList } from '../ipc.js';
import { h, replaceChildren, button, field, facts, table, badge, panel, selectField, emptyState } from '../dom.js';
import { wizard, runView, confirmDialog, busy, errorBox, notice } from '../components.js';
import * as fmt from '../format.js';
import { validName, nameError } from '../rules.js';
import { scheduleStep, retentionStep, encryptionStep, scheduleText } from '../steps.js';
import { sessionTable } from '../lists.js';

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
    spec.agent ? null : await spacePanel(name, spec, ctx),
    panel('Sessions', history));
  showHistory(sessions);
  // A run already going on (started by the schedule or another view) is followed.
  const watching = runView({ id: 'job-progress', title: `Backup of ${name}` });
  if (await jobWatch(name, 'backup', watching.handle)) follow(watching);
}

/**
 * Space of the job's repository: at a provider, what the gateway last measured (stored, no
 * longer needed, in the recycle bin); the last compaction's figures; Compact now.
 */
async function spacePanel(name, spec, ctx) {
  const slot = h('div', { id: 'job-space-result' });
  const compact = button('Compact now', { variant: 'secondary', id: 'job-compact' });
  compact.addEventListener('click', () => busy(compact, async () => {
    const r = await jobCompact(name);
    if (!ctx.current()) return;
    replaceChildren(slot, notice(`Compacted: ${fmt.bytes(r.unused_bytes)} no longer needed of ${fmt.bytes(r.live_bytes + r.unused_bytes)}; storage ${fmt.bytes(r.bytes_before)} → ${fmt.bytes(r.bytes_after)} (${fmt.bytes(r.bytes_moved)} rewritten).`));
    const rows = await repoFacts(spec);
    if (rows) replaceChildren(figures, facts(rows));
  }, (err) => replaceChildren(slot, errorBox(err))));
  const rows = await repoFacts(spec);
  const figures = h('div', { id: 'job-space' }, rows ? facts(rows) : h('p', { class: 'hint', text: 'A folder repository: Compact now gives back the space of restore points removed by retention or by hand.' }));
  if (rows) {
    // The figures above are the last scan's; the provider's own come next (when it answers).
    providerRescan(spec.target.provider)
      .then(async () => { const fresh = await repoFacts(spec); if (fresh && ctx.current()) replaceChildren(figures, facts(fresh)); })
      .catch(() => {});
  }
  return panel('Space', figures,
    h('p', { class: 'hint', text: 'Jobs compact their repository by themselves after retention when more than 15 % of it is no longer needed. Every job sharing the repository gains.' }),
    h('div', { class: 'actions' }, compact), slot);
}

/** The provider's figures for the job's cloud repository, or null. */
async function repoFacts(spec) {
  if (spec.target.kind !== 'provider') return null;
  const provider = (await providersList()).find((p) => p.name === spec.target.provider);
  const repo = provider?.repos.find((r) => r.name === spec.target.repo);
  if (!repo) return null;
  return [
    ['Stored', fmt.bytes(repo.used_bytes), 'space-used'],
    ['No longer needed (a compaction frees it)', fmt.bytes(repo.reclaimable_bytes), 'space-reclaimable'],
    ['In the provider’s recycle bin', repo.recycle_bytes ? `${fmt.bytes(repo.recycle_bytes)} (kept while insider protection lasts; not counted against the quota)` : 'nothing', 'space-recycle'],
  ];
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
    if (!validName(v)) {
      name.setError(nameError());
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

