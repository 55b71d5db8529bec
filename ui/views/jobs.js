// Backup jobs: the list (last result, next run, running now), a job's page (settings, run
// now / stop with live progress and log, check now, space and Compact now, key slots with a
// recovery key and a new password, sessions opening their report, edit, delete) and the
// New job wizard (name → what to back up: the backup mode — entire computer, volume level
// with this computer's disks and volumes listed, or files and folders — → target: a cloud repository or a folder → schedule →
// retention → options: compression, retries, health check → encryption → summary), which
// also edits everything but the target and the encryption.

import { jobsList, jobGet, jobCreate, jobUpdate, jobDelete, jobRun, jobCompact, jobKeys, jobKeyRecovery, jobKeyPassword, jobWatch, jobStop, providersList, providerRescan, pickFolder, saveFile, sessionsList, computerVolumes } from '../ipc.js';
import { h, replaceChildren, button, field, facts, table, badge, panel, selectField, emptyState, radioGroup } from '../dom.js';
import { wizard, runView, confirmDialog, busy, errorBox, notice, moreActions } from '../components.js';
import * as fmt from '../format.js';
import { validName, nameError, validPassword, passwordError, passwordHint } from '../rules.js';
import { scheduleStep, retentionStep, encryptionStep, scheduleText, restoreTestStep } from '../steps.js';
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
        ['Proven restorable', (j) => proofCell(j, 'job-proof')],
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
  const del = button('Delete this job', { variant: 'danger', id: 'job-delete' });
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
  // The repository's health check: every pack re-read, every blob authenticated.
  const check = button('Check now', { variant: 'secondary', id: 'job-check' });
  check.addEventListener('click', () => busy(check, async () => {
    const view = runView({ id: 'job-check-progress', title: `Health check of ${name}` });
    await jobRun(name, 'health-check', view.handle);
    replaceChildren(runSlot, panel('Health check', view.el));
    view.done.then(async () => { if (ctx.current()) showHistory(await sessionsList(name)); });
  }, (err) => replaceChildren(runSlot, errorBox(err))));
  // The restore test: a sample of the newest point restored and checked against the backup.
  const test = button('Test restore', { variant: 'secondary', id: 'job-restore-test' });
  test.addEventListener('click', () => busy(test, async () => {
    const view = runView({ id: 'job-test-progress', title: `Restore test of ${name}` });
    await jobRun(name, 'restore-test', view.handle);
    replaceChildren(runSlot, panel('Restore test', view.el));
    view.done.then(async () => {
      if (!ctx.current()) return;
      showHistory(await sessionsList(name));
      replaceChildren(proofSlot, proofCell(await jobSummary(name), 'job-view-proof'));
    });
  }, (err) => replaceChildren(runSlot, errorBox(err))));
  const proofSlot = h('p', { class: 'proof-line' }, proofCell(await jobSummary(name), 'job-view-proof'));
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
    check.disabled = true;
    edit.disabled = true;
    del.disabled = true;
  }
  replaceChildren(container,
    ctx.params.adopted ? notice(`${name} is now a job of this computer, with the restore points already at the provider. Choose Restore points to restore; set a schedule with Edit to back up from here.`, { id: 'job-adopted' }) : null,
    h('div', { class: 'toolbar' }, run, stop, check, test, edit,
      button('Restore points', { variant: 'secondary', id: 'job-points', onClick: () => ctx.navigate('points', { job: name }) }),
      spec.agent ? null : moreActions({ id: 'job-more', label: `for job ${name}`, note: 'Deleting the job removes it and its stored encryption password from this computer; its restore points stay where they are.', actions: [del] })),
    agentNote,
    proofSlot,
    runSlot,
    panel('Settings', specFacts(name, spec)),
    spec.agent ? null : await spacePanel(name, spec, ctx),
    spec.agent || !spec.encrypted ? null : keysPanel(name, ctx),
    panel('Sessions', history));
  showHistory(sessions);
  // A run already going on (started by the schedule or another view) is followed.
  const watching = runView({ id: 'job-progress', title: `Backup of ${name}` });
  if (await jobWatch(name, 'backup', watching.handle)) follow(watching);
  else if (ctx.params.run && !spec.agent && ctx.current()) run.click();
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

/**
 * The job's key slots: a recovery key written to a file (kept offline, it opens the restore
 * points without the password) and a new encryption password (the data is not re-encrypted).
 */
function keysPanel(name, ctx) {
  const list = h('div', { id: 'job-keys' }, h('p', { class: 'hint', text: 'Loading the ways to unlock…' }));
  const slot = h('div', { id: 'job-keys-result' });
  const show = async () => {
    const slots = await jobKeys(name);
    if (!ctx.current()) return;
    replaceChildren(list, table({ caption: 'Ways to unlock the restore points', id: 'job-keys-table', columns: [['Kind', (s) => (s.kind === 'password' ? 'encryption password' : s.kind)], ['Label', (s) => s.label], ['Added', (s) => s.created]], rows: slots }));
  };
  show().catch((err) => replaceChildren(list, errorBox(err)));
  const recovery = button('Save a recovery key…', { variant: 'secondary', id: 'job-key-recovery' });
  recovery.addEventListener('click', () => busy(recovery, async () => {
    const path = await saveFile('Save the recovery key', `${name}-recovery-key.txt`);
    if (!path) return;
    await jobKeyRecovery(name, path, `recovery key ${fmt.date(Date.now())}`);
    replaceChildren(slot, notice(`Recovery key saved to ${path}. Keep it offline: it opens this job's restore points without the password.`, { id: 'job-key-saved' }));
    await show();
  }, (err) => replaceChildren(slot, errorBox(err))));
  const pw = field({ label: 'New encryption password', id: 'job-new-password', kind: 'password', autocomplete: 'new-password', hint: passwordHint() });
  const change = button('Change the password', { variant: 'secondary', id: 'job-key-password' });
  change.addEventListener('click', () => {
    if (!validPassword(pw.input.value)) { pw.setError(passwordError()); return; }
    pw.setError(null);
    busy(change, async () => {
      await jobKeyPassword(name, pw.input.value);
      pw.input.value = '';
      replaceChildren(slot, notice('The encryption password changed; the old one stops working (a provider keeps it in its recycle bin until insider protection ends).', { id: 'job-key-changed' }));
      await show();
    }, (err) => replaceChildren(slot, errorBox(err)));
  });
  return panel('Password and recovery keys', h('p', { class: 'hint', text: 'Each of these unlocks this job’s restore points. A recovery key saved to a file and kept offline opens them if the password is lost.' }), list, h('div', { class: 'actions' }, recovery), pw.wrap, h('div', { class: 'actions' }, change), slot);
}

/** The provider's figures for the job's cloud repository, or null. */
async function repoFacts(spec) {
  if (spec.target.kind !== 'provider') return null;
  const provider = (await providersList()).find((p) => p.name === spec.target.provider);
  const repo = provider?.repos.find((r) => r.name === spec.target.repo);
  if (!repo) return null;
  return [
    ['Stored', fmt.bytes(repo.used_bytes), 'space-used'],
    ['No longer needed (Compact now frees it)', fmt.bytes(repo.reclaimable_bytes), 'space-reclaimable'],
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
    ['Backup mode', MODE_LABELS[spec.mode || 'files'], 'spec-mode'],
    (spec.mode || 'files') === 'files'
      ? ['Sources', spec.sources.join('\n'), 'spec-sources']
      : ['Volumes', spec.mode === 'entire' ? 'every disk of this computer' : (spec.volumes || []).join('\n'), 'spec-volumes'],
    ['Excludes', spec.excludes.join(', ') || 'none'],
    ['Target', !spec.target ? 'not chosen' : spec.target.kind === 'provider' ? `${spec.target.provider} / ${spec.target.repo}` : `folder ${spec.target.path}`, 'spec-target'],
    ['Schedule', scheduleText(spec.schedule), 'spec-schedule'],
    ['Keep', keep, 'spec-retention'],
    ['Encryption', spec.encrypted ? 'encrypted (XChaCha20-Poly1305)' : 'not encrypted', 'spec-encryption'],
    ['Compression', spec.compression, 'spec-compression'],
    ['Retries', `${spec.retries ?? 3} after a failed scheduled run, ${Math.round((spec.retry_wait_s ?? 600) / 60)} min apart`, 'spec-retries'],
    ['Health check', scheduleText(spec.health_check || { kind: 'manual' }), 'spec-health-check'],
    ['Restore test', `${scheduleText(spec.restore_test || { kind: 'manual' })}, ${spec.restore_test_sample ?? 1} % of the files`, 'spec-restore-test'],
  ]);
}

const MODE_LABELS = { entire: 'Entire computer', volumes: 'Volume level', files: 'File level' };

const DEFAULT_SPEC = {
  mode: 'files',
  volumes: [],
  sources: [],
  excludes: [],
  target: null,
  schedule: { kind: 'daily', at: '22:00', weekdays: [] },
  retention: { keep_last: 14, keep_days: null, weekly: 4, monthly: 6, yearly: 1 },
  encrypted: true,
  compression: 'default',
  retries: 3,
  retry_wait_s: 600,
  health_check: { kind: 'manual' },
  restore_test: { kind: 'daily', at: '04:00', weekdays: ['sun'] },
  restore_test_sample: 1,
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
    { title: 'What to back up', render: whatStep },
    !editing && { title: 'Target', render: (body, d) => targetStep(body, d, providers, ctx) },
    { title: 'Schedule', render: scheduleStep },
    { title: 'Retention', render: retentionStep },
    { title: 'Options', render: optionsStep },
    !editing && { title: 'Encryption', render: encryptionStep },
    {
      title: 'Summary',
      render(body, d) {
        body.append(h('p', {}, editing ? 'Save these settings?' : 'Create this job?'), specFacts(d.name, d.spec));
        if (editing) return undefined;
        // The first restore point is what the user came for: run it at once unless told not to.
        const runNow = field({ label: 'Run now when I finish', id: 'job-run-now', kind: 'checkbox', value: d.runNow !== false });
        body.append(runNow.wrap);
        return () => { d.runNow = runNow.input.checked; return true; };
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
      await ctx.navigate('jobs', { view: 'job', name: d.name, run: !editing && d.runNow !== false });
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

/** The backup mode, then what it takes: files and folders, or the volumes to image. */
function whatStep(body, data) {
  data.spec.mode = data.spec.mode || 'files';
  data.spec.volumes = data.spec.volumes || [];
  const mode = radioGroup({
    legend: 'Backup mode',
    name: 'job-mode',
    value: data.spec.mode,
    options: [
      ['entire', MODE_LABELS.entire, 'Every disk of this computer, block by block: its partition tables and all its volumes. Brings back the whole machine.'],
      ['volumes', MODE_LABELS.volumes, 'Chosen disks and volumes, block by block (free space is not read). Restore a volume, a disk, single files, or export a disk for a hypervisor.'],
      ['files', MODE_LABELS.files, 'Chosen files and folders.'],
    ],
  });
  const files = h('div', { id: 'job-what-files' });
  const volumes = h('div', { id: 'job-what-volumes' });
  const error = h('p', { class: 'field-error', id: 'job-volumes-error', hidden: true });
  body.append(mode.wrap, files, volumes, error);
  const sourcesDone = sourcesStep(files, data);
  let listed = [];
  async function drawVolumes() {
    const current = mode.value();
    volumes.hidden = current === 'files';
    files.hidden = current !== 'files';
    if (current === 'files') return;
    replaceChildren(volumes, h('p', { class: 'hint', text: 'Reading this computer’s disks…' }));
    try {
      listed = await computerVolumes();
    } catch (e) {
      replaceChildren(volumes, h('p', { class: 'field-error', text: e.message }));
      return;
    }
    const disksOnly = current === 'entire';
    const rows = listed.filter((v) => !disksOnly || v.kind === 'disk');
    const pick = (v) => {
      if (disksOnly) return h('span', { class: 'hint', text: 'included' });
      const box = h('input', { type: 'checkbox', id: `job-volume-${v.name}`, checked: data.spec.volumes.includes(v.path), 'aria-label': `Back up ${v.path}` });
      box.addEventListener('change', () => {
        data.spec.volumes = data.spec.volumes.filter((x) => x !== v.path);
        if (box.checked) data.spec.volumes.push(v.path);
      });
      return box;
    };
    replaceChildren(volumes, table({
      caption: disksOnly ? 'The disks this computer has' : 'This computer’s disks and volumes',
      id: 'job-volumes',
      columns: [
        ['', pick],
        ['Name', (v) => h('span', { class: 'mono', text: v.path })],
        ['Kind', (v) => ({ disk: 'disk', partition: 'partition', loop: 'disk image', lvm: 'LVM volume' }[v.kind] || v.kind)],
        ['Size', (v) => fmt.bytes(v.size)],
        ['File system', (v) => fsText(v)],
        ['Mounted at', (v) => v.mountpoint || '—'],
        ['Used', (v) => v.used != null ? fmt.bytes(v.used) : '—'],
      ],
      rows,
      empty: 'No disk could be listed on this computer.',
    }));
  }
  mode.inputs.forEach((i) => i.addEventListener('change', () => { data.spec.mode = mode.value(); drawVolumes(); }));
  drawVolumes();
  return () => {
    data.spec.mode = mode.value();
    error.hidden = true;
    if (data.spec.mode === 'files') {
      data.spec.volumes = [];
      return sourcesDone();
    }
    data.spec.sources = [];
    if (data.spec.mode === 'entire') {
      data.spec.volumes = [];
      return true;
    }
    if (data.spec.volumes.length === 0) {
      error.textContent = 'Choose at least one disk or volume to back up.';
      error.hidden = false;
      return false;
    }
    return true;
  };
}

/** A device's file system as the volume list shows it: probed, or a disk's partition table,
 * or the type the mount table names. */
function fsText(v) {
  if (v.filesystem) return `${v.filesystem.kind}${v.filesystem.label ? ` “${v.filesystem.label}”` : ''}`;
  if (v.layout) {
    const kinds = v.layout.partitions.map((p) => (p.filesystem ? p.filesystem.kind : '?'));
    return `${Object.keys(v.layout.table)[0].toUpperCase()}: ${kinds.join(', ') || 'no volumes'}`;
  }
  return v.mount_type || '—';
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
  const options = providers.flatMap((p) => p.repos.map((r) => [JSON.stringify([p.name, r.name]),
    `${p.name} / ${r.name} — ${fmt.bytes(r.free_bytes)} free of ${fmt.quota(r.quota_bytes)}`]));
  // A cloud repository of a provider, or a folder here (a second disk, a NAS share).
  const folderChoice = JSON.stringify(['', '']);
  options.push([folderChoice, 'A folder on this computer (a second disk, a network share)']);
  const t = data.spec.target;
  const current = t && t.kind === 'provider' ? JSON.stringify([t.provider, t.repo]) : t ? folderChoice : options[0][0];
  const target = selectField({ label: 'Where restore points go', id: 'job-target', options, value: current, hint: providers.length ? 'A cloud repository of your service provider, or a folder.' : 'Add a service provider to back up to the cloud; until then, a folder.' });
  const path = field({ label: 'Folder', id: 'job-target-folder', value: t && t.kind === 'folder' ? t.path : '', hint: 'A full path; a new folder becomes a repository.' });
  const browse = button('Browse…', { variant: 'secondary', id: 'job-target-browse' });
  browse.addEventListener('click', async () => { const picked = await pickFolder('Store restore points in this folder'); if (picked) path.input.value = picked; });
  const folderRow = h('div', { class: 'inline-field sub' }, path.wrap, browse);
  const sync = () => { folderRow.hidden = target.input.value !== folderChoice; };
  target.input.addEventListener('change', sync);
  body.append(target.wrap, folderRow, providers.length ? null : h('div', { class: 'actions' }, button('Add service provider', { variant: 'secondary', onClick: () => ctx.navigate('providers', { view: 'add' }) })));
  sync();
  return () => {
    if (target.input.value === folderChoice) {
      const v = path.input.value.trim();
      if (!(v.startsWith('/') || /^[A-Za-z]:[\\/]/.test(v))) { path.setError('Choose the folder with Browse or type its full path.'); return false; }
      data.spec.target = { kind: 'folder', path: v };
      return true;
    }
    const [provider, repo] = JSON.parse(target.input.value);
    data.spec.target = { kind: 'provider', provider, repo };
    return true;
  };
}

/** Compression, retries of scheduled runs, and the repository health check's schedule. */
function optionsStep(body, data) {
  const s = data.spec;
  const compression = selectField({ label: 'Compression', id: 'job-compression', value: s.compression, options: [['default', 'Default (zstd, balanced)'], ['fast', 'Fast'], ['max', 'Maximum (slower)'], ['off', 'Off (data that does not compress)']] });
  const retries = field({ label: 'Tries again after a failed scheduled run', id: 'job-retries', kind: 'number', min: 0, max: 10, value: String(s.retries ?? 3), hint: 'A run the provider refused for a reason waiting cannot fix (certificate, password, quota) is not tried again.' });
  const wait = field({ label: 'Minutes between tries', id: 'job-retry-wait', kind: 'number', min: 0, max: 1440, value: String(Math.round((s.retry_wait_s ?? 600) / 60)) });
  const hc = s.health_check || { kind: 'manual' };
  const checkValue = hc.kind === 'daily' && hc.weekdays.length === 1 ? 'weekly' : hc.kind === 'daily' ? 'daily' : 'manual';
  const check = selectField({ label: 'Health check of the repository (re-reads and authenticates its data)', id: 'job-health-check', value: checkValue, options: [['manual', 'Only when I choose Check now'], ['weekly', 'Every Sunday at 03:00'], ['daily', 'Every day at 03:00']] });
  body.append(compression.wrap, retries.wrap, wait.wrap, check.wrap);
  const restoreTest = restoreTestStep(body, data);
  return () => {
    const n = Number(retries.input.value);
    if (!Number.isInteger(n) || n < 0 || n > 10) { retries.setError('Give a whole number from 0 to 10.'); return false; }
    const m = Number(wait.input.value);
    if (!Number.isInteger(m) || m < 0 || m > 1440) { wait.setError('Give whole minutes from 0 to 1440.'); return false; }
    s.compression = compression.input.value;
    s.retries = n;
    s.retry_wait_s = m * 60;
    s.health_check = { manual: { kind: 'manual' }, weekly: { kind: 'daily', at: '03:00', weekdays: ['sun'] }, daily: { kind: 'daily', at: '03:00', weekdays: [] } }[check.input.value];
    return restoreTest();
  };
}


/** A job's summary as the jobs list has it (its restore-test standing among the rest). */
async function jobSummary(name) {
  const { jobs } = await jobsList();
  return jobs.find((j) => j.name === name);
}

/** When a job was last proven restorable, marked when its newest restore test failed. */
function proofCell(j, prefix) {
  const p = j && j.proof;
  const failed = p && p.result === 'failed';
  return h('span', { class: failed ? 'proof proof-failed' : 'proof', id: `${prefix}-${j ? j.name : ''}`, title: p && p.message ? p.message : '' },
    failed ? badge('failed') : p && p.proven_ms ? badge('proven') : null, ' ',
    p && p.proven_ms && !failed ? fmt.dateTime(p.proven_ms) : fmt.proof(p));
}
