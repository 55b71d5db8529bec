// Backup policies (tenant mode): each policy with its computers and what their agents last
// reported (after syncing from the provider), add a computer, write its enrollment file
// (save dialog; the one-time code shown once), remove a computer, delete a policy; the New
// policy wizard (name → sources → cloud repository and quota per computer → schedule →
// retention → encryption → summary).

import { policiesList, policyTemplate, policyCreate, policyUpdate, policyDelete, policyAddComputer, policyRemoveComputer, policyEnrollFile, policySync, policyComputerSessions, providersList, saveFile } from '../ipc.js';
import { h, replaceChildren, button, field, facts, table, badge, panel, selectField, emptyState, meter, paintBars, radioGroup } from '../dom.js';
import { wizard, confirmDialog, busy, errorSlot, moreActions } from '../components.js';
import * as fmt from '../format.js';
import { validName, nameError } from '../rules.js';
import { scheduleStep, retentionStep, encryptionStep, scheduleText, restoreTestStep } from '../steps.js';

export async function renderPolicies(container, ctx) {
  if (ctx.params.view === 'new') return renderPolicyWizard(container, ctx, null);
  if (ctx.params.view === 'edit') return renderPolicyWizard(container, ctx, (await policiesList()).find((p) => p.name === ctx.params.name));
  if (ctx.params.view === 'computer') return renderComputer(container, ctx, ctx.params.policy, ctx.params.computer);
  const policies = await policiesList();
  if (!ctx.current()) return undefined;
  const toolbar = h('div', { class: 'toolbar' }, button('New policy', { id: 'policy-new', onClick: () => ctx.navigate('policies', { view: 'new' }) }));
  if (policies.length === 0) {
    replaceChildren(container, toolbar, emptyState('No backup policy yet. A policy protects many computers at once: each runs the Cloudkeep agent under its own subtenant and quota, and backs up on the policy’s schedule even when this console is closed.'));
    return undefined;
  }
  replaceChildren(container, toolbar, policies.map((p) => policyCard(p, ctx)));
  paintBars(container);
  return undefined;
}

function policyCard(p, ctx) {
  const slot = errorSlot();
  const reload = () => ctx.navigate('policies');
  const sync = button('Sync from provider', { variant: 'secondary', id: `policy-sync-${p.name}` });
  sync.addEventListener('click', () => busy(sync, async () => { await policySync(p.name); await reload(); }, (e) => slot.show(e)));
  const edit = button('Edit', { variant: 'secondary', id: `policy-edit-${p.name}`, onClick: () => ctx.navigate('policies', { view: 'edit', name: p.name }) });
  const del = button('Delete this policy', { variant: 'danger', id: `policy-delete-${p.name}` });
  del.addEventListener('click', async () => {
    const withData = field({ label: 'Also delete the computers’ subtenants and their restore points', id: 'dialog-with-data', kind: 'checkbox' });
    const ok = await confirmDialog({ title: `Delete policy ${p.name}?`, message: 'Its agents stop backing up: their subtenants are disabled, and their restore points stay unless you also delete them.', confirmLabel: 'Delete policy', extra: withData.wrap });
    if (!ok) return;
    await busy(del, async () => { await policyDelete(p.name, withData.input.checked); await reload(); }, (e) => slot.show(e));
  });
  const synced = p.synced_ms
    ? h('p', { class: 'hint', id: `policy-synced-${p.name}`, text: `Synchronized ${fmt.dateTime(p.synced_ms)}.` })
    : h('p', { class: 'hint', id: `policy-synced-${p.name}`, text: 'Information appears after synchronization: choose Sync from provider.' });
  return h('article', { class: 'card', id: `policy-${p.name}`, 'aria-labelledby': `policy-${p.name}-name` },
    h('div', { class: 'card-head' }, h('h2', { id: `policy-${p.name}-name`, text: p.name }), h('div', { class: 'actions' }, sync, edit,
      moreActions({ id: `policy-more-${p.name}`, label: `for policy ${p.name}`, note: 'Deleting the policy stops its agents; their subtenants are disabled and their restore points stay unless you choose to delete them too.', actions: [del] }))),
    facts([
      ['Stores in', `${p.provider} / ${p.spec.repo}`],
      ['Backs up', backsUp(p.spec)],
      ['Schedule', scheduleText(p.spec.schedule), `policy-schedule-${p.name}`],
      ['Quota per computer', fmt.quota(p.spec.computer_quota_bytes)],
      ['Revision', String(p.revision)],
    ]),
    slot.el,
    synced,
    computersTable(p, ctx, slot),
    addComputerForm(p, ctx, slot));
}

function computersTable(p, ctx, slot) {
  const rows = p.computers.map((c) => ({ c, s: p.status.find((s) => s.computer === c.computer) || null }));
  return table({
    caption: `Computers of ${p.name}`,
    id: `policy-computers-${p.name}`,
    columns: [
      ['Computer', ({ c }) => h('span', { class: 'mono', text: c.computer })],
      ['Last result', ({ s }) => {
        if (s && !s.enabled) return h('span', { class: 'badge badge-stopped', text: 'Disabled' });
        if (!s || !s.last) return h('span', { class: 'hint', text: s ? 'never ran' : 'not synced' });
        return h('div', {}, badge(s.last.result), s.last.message ? h('p', { class: 'hint cell-message', text: s.last.message }) : null);
      }],
      ['Last run', ({ s }) => fmt.dateTime(s && s.last ? s.last.finished_ms : null), 'when'],
      ['Next run', ({ s }) => fmt.dateTime(s ? s.next_run_ms : null), 'when'],
      ['Proven restorable', ({ c, s }) => computerProof(c, s)],
      ['Protected', ({ s }) => (s && s.last_success ? h('span', { title: fmt.counted(s.last_success.files, 'file'), text: fmt.bytes(s.last_success.bytes) }) : '—'), 'num'],
      ['Quota use', ({ c, s }) => (s ? h('div', { class: 'quota-cell' },
        h('span', { class: 'hint', text: `${fmt.bytes(s.used_bytes)} of ${fmt.quota(s.quota_bytes)}` }),
        meter({ share: fmt.quotaShare(s.used_bytes, s.quota_bytes), label: `${c.computer} quota use`, unlimited: fmt.isUnlimited(s.quota_bytes) })) : '—')],
      ['Actions', ({ c }) => h('div', { class: 'row-actions' },
        button('Enrollment file', { variant: 'secondary', id: `policy-enroll-${p.name}-${c.computer}`, label: `Enrollment file for ${c.computer}`, onClick: (e) => enroll(e.target, p, c, slot) }),
        button('Sessions', { variant: 'secondary', label: `Sessions of ${c.computer}`, onClick: () => ctx.navigate('policies', { view: 'computer', policy: p.name, computer: c.computer }) }),
        button('Restore points', { variant: 'secondary', label: `Restore points of ${c.computer}`, onClick: () => ctx.navigate('points', { job: c.job }) }),
        moreActions({ id: `policy-computer-more-${c.computer}`, label: `for ${c.computer}`, note: 'Removing stops its agent; its subtenant is disabled and its restore points stay unless you delete them.', actions: [button('Remove this computer', { variant: 'danger', label: `Remove this computer: ${c.computer}`, onClick: async (e) => {
          const del = field({ label: 'Delete its subtenant and restore points instead of disabling it', id: 'dialog-delete-computer', kind: 'checkbox' });
          const ok = await confirmDialog({ title: `Remove ${c.computer}?`, message: 'Its agent can no longer back up. Its subtenant is disabled and its restore points stay, unless you delete them.', confirmLabel: 'Remove computer', extra: del.wrap });
          if (ok) await busy(e.target, async () => { await policyRemoveComputer(p.name, c.computer, del.input.checked); await ctx.navigate('policies'); }, (err) => slot.show(err));
        } })] }))],
    ],
    rows,
    empty: 'No computer yet: add one below, then give it its enrollment file.',
  });
}

/**
 * When a computer's restore test last proved its backups restorable (its agent's report via
 * the provider), a failed test, and a run that looked like ransomware.
 */
function computerProof(c, s) {
  const hl = s && s.health;
  if (!hl) return h('span', { class: 'hint', id: `computer-proof-${c.computer}`, text: 'Not tested yet' });
  const failed = hl.test_result === 'failed';
  const recent = hl.suspicious_ms && hl.suspicious_ms > Date.now() - 30 * 86400000;
  return h('div', { id: `computer-proof-${c.computer}` },
    failed ? badge('failed') : hl.proven_ms ? badge('proven') : null,
    ' ', failed ? `Restore test failed ${fmt.dateTime(hl.tested_ms)}` : hl.proven_ms ? fmt.dateTime(hl.proven_ms) : 'Not proven yet',
    failed && hl.test_message ? h('p', { class: 'hint cell-message', text: hl.test_message }) : null,
    recent ? h('p', { class: 'proof-failed', text: `Suspicious run ${fmt.dateTime(hl.suspicious_ms)}: ${hl.suspicious.join('; ')}` }) : null);
}

/** One computer: its synced status and the sessions its agent reported. */
async function renderComputer(container, ctx, policyName, computer) {
  const [policies, reports] = await Promise.all([policiesList(), policyComputerSessions(policyName, computer)]);
  if (!ctx.current()) return;
  const p = policies.find((x) => x.name === policyName);
  const c = p && p.computers.find((x) => x.computer === computer);
  if (!c) throw { kind: 'not_found', message: `Policy ${policyName} has no computer ${computer} any more; open Backup policies for the current list.` };
  ctx.setTitle(`${computer} of ${policyName}`);
  const s = p.status.find((x) => x.computer === computer);
  replaceChildren(container,
    h('div', { class: 'toolbar' },
      button('All policies', { variant: 'secondary', onClick: () => ctx.navigate('policies') }),
      button('Restore points', { id: 'computer-points', onClick: () => ctx.navigate('points', { job: c.job }) })),
    panel('Computer', facts([
      ['Subtenant', c.login],
      ['Policy revision applied', s ? String(s.applied_revision) : 'not synced'],
      ['Agent last seen', fmt.dateTime(s ? s.seen_ms : null)],
      ['Next run', fmt.dateTime(s ? s.next_run_ms : null)],
    ])),
    panel('Sessions its agent reported', table({
      caption: `Sessions of ${computer}`,
      id: 'computer-sessions',
      columns: [
        ['Finished', (r) => fmt.dateTime(r.finished_ms), 'when'],
        ['Duration', (r) => fmt.duration((r.finished_ms - r.started_ms) / 1000)],
        ['Result', (r) => badge(r.result)],
        ['Files', (r) => fmt.count(r.files), 'num'],
        ['Size', (r) => fmt.bytes(r.bytes), 'num'],
        ['Warnings', (r) => (r.warnings ? String(r.warnings) : '—'), 'num'],
        ['Revision', (r) => String(r.revision), 'num'],
        ['Message', (r) => r.message],
      ],
      rows: reports,
      empty: 'Its agent has reported no session yet.',
    })));
}

async function enroll(btn, p, c, slot) {
  await busy(btn, async () => {
    const path = await saveFile(`Enrollment file for ${c.computer}`, `${p.name}-${c.computer}.enroll`);
    if (!path) return;
    const code = await policyEnrollFile(p.name, c.computer, path);
    showCode(c.computer, path, code);
  }, (e) => slot.show(e));
}

/** The one-time code, shown once, in a dialog the admin closes. */
export function showCode(computer, path, code) {
  confirmDialog({
    title: `Enrollment file for ${computer}`,
    message: `Saved to ${path}. On the computer run "cloudkeep agent enroll ${path}" and type this one-time code. Give the code separately from the file; it is shown only now.`,
    confirmLabel: 'Done',
    danger: false,
    extra: h('p', { class: 'one-time-code mono', id: 'enroll-code', text: code }),
  });
}

function addComputerForm(p, ctx, slot) {
  const name = field({ label: 'Computer name', id: `policy-computer-name-${p.name}`, hint: `Its subtenant becomes ${p.name}-NAME.` });
  const add = button('Add computer', { id: `policy-computer-add-${p.name}`, type: 'submit' });
  const form = h('form', { class: 'form inline-field', novalidate: true }, name.wrap, add);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const v = name.input.value.trim();
    if (!validName(v)) { name.setError(nameError()); name.input.focus(); return; }
    name.setError(null);
    busy(add, async () => { await policyAddComputer(p.name, v); await ctx.navigate('policies'); }, (e) => slot.show(e));
  });
  return form;
}

/** The New policy wizard; with `existing`, it edits that policy (not its name, cloud
 *  repository or password). */
async function renderPolicyWizard(container, ctx, existing) {
  const providers = existing ? [] : await providersList();
  if (!ctx.current()) return;
  const editing = !!existing;
  ctx.setTitle(editing ? `Edit policy ${existing.name}` : 'New backup policy');
  const repos = providers.flatMap((p) => p.repos.map((r) => ({ provider: p.name, repo: r })));
  const spec = editing ? structuredClone(existing.spec) : await policyTemplate(repos[0] ? repos[0].repo.name : '');
  if (!ctx.current()) return;
  // `encrypted` only drives the shared encryption step: a policy is always encrypted.
  const data = { name: editing ? existing.name : '', provider: editing ? existing.provider : repos[0] && repos[0].provider, password: null, spec: { ...spec, encrypted: true } };
  const w = wizard({
    id: 'policy-wizard',
    title: editing ? 'Edit policy' : 'New policy',
    data,
    finishLabel: editing ? 'Save and publish' : 'Create policy',
    onCancel: () => ctx.navigate('policies'),
    async onFinish(d) {
      const { encrypted, ...spec } = d.spec;
      if (editing) await policyUpdate(d.name, spec);
      else await policyCreate(d.name, d.provider, spec, d.password);
      await ctx.navigate('policies');
    },
    steps: [
      !editing && {
        title: 'Name',
        render(body) {
          const name = field({ label: 'Policy name', id: 'policy-name', value: data.name, required: true, hint: 'Such as laptops or office-pcs. Each computer’s subtenant is named after it.' });
          body.append(name.wrap);
          return () => {
            const v = name.input.value.trim();
            if (!validName(v)) { name.setError(nameError()); return false; }
            data.name = v;
            return true;
          };
        },
      },
      {
        title: 'What to back up',
        render(body) {
          // The computers are elsewhere: their disks are named by path, not picked from a list.
          const mode = radioGroup({
            legend: 'Backup mode',
            name: 'policy-mode',
            value: data.spec.mode || 'files',
            options: [
              ['entire', 'Entire computer', 'Every disk of each computer, block by block (Linux agents).'],
              ['volumes', 'Volume level', 'The disks and volumes named below, on each computer, block by block (Linux agents).'],
              ['files', 'File level', 'The files and folders named below.'],
            ],
          });
          const sources = field({ label: 'What each computer backs up (one path per line)', id: 'policy-sources', kind: 'textarea', value: data.spec.sources.join('\n'), hint: '~ is the home folder of the user the agent runs as, on Linux and Windows alike; ~/Documents is the Documents folder in it.' });
          const excludes = field({ label: 'Exclude (one pattern per line)', id: 'policy-excludes', kind: 'textarea', value: data.spec.excludes.join('\n') });
          const volumes = field({ label: 'Disks and volumes each computer images (one device per line)', id: 'policy-volumes', kind: 'textarea', value: (data.spec.volumes || []).join('\n'), hint: 'Device paths such as /dev/sda, /dev/nvme0n1p2 or /dev/vg/root.' });
          const sync = () => {
            const m = mode.value();
            sources.wrap.hidden = m !== 'files';
            excludes.wrap.hidden = m !== 'files';
            volumes.wrap.hidden = m !== 'volumes';
          };
          mode.inputs.forEach((i) => i.addEventListener('change', sync));
          body.append(mode.wrap, sources.wrap, excludes.wrap, volumes.wrap);
          sync();
          return () => {
            const m = mode.value();
            data.spec.mode = m;
            if (m === 'files') {
              const list = sources.input.value.split('\n').map((s) => s.trim()).filter(Boolean);
              if (list.length === 0) { sources.setError('Name at least one folder, such as ~.'); return false; }
              sources.setError(null);
              data.spec.sources = list;
              data.spec.volumes = [];
              data.spec.excludes = excludes.input.value.split('\n').map((s) => s.trim()).filter(Boolean);
              return true;
            }
            data.spec.sources = [];
            data.spec.volumes = [];
            if (m === 'volumes') {
              const list = volumes.input.value.split('\n').map((s) => s.trim()).filter(Boolean);
              if (list.length === 0 || list.some((v) => !v.startsWith('/'))) { volumes.setError('Name at least one device by its full path, such as /dev/sda.'); return false; }
              volumes.setError(null);
              data.spec.volumes = list;
            }
            return true;
          };
        },
      },
      editing && {
        title: 'Quota',
        render(body) {
          const quota = field({ label: 'Quota per computer in GiB', id: 'policy-quota', kind: 'number', min: 0, step: 'any', value: String(fmt.isUnlimited(data.spec.computer_quota_bytes) ? 0 : data.spec.computer_quota_bytes / 1024 ** 3), hint: 'Applies to every computer of the policy at once; 0: unlimited (shares yours).' });
          body.append(quota.wrap);
          return () => {
            const n = Number(quota.input.value);
            if (!(n >= 0)) { quota.setError('Give a size in GiB, or 0 for unlimited.'); return false; }
            data.spec.computer_quota_bytes = n === 0 ? fmt.UNLIMITED : fmt.gibToBytes(quota.input.value);
            return true;
          };
        },
      },
      !editing && {
        title: 'Target',
        render(body) {
          if (repos.length === 0) {
            body.append(emptyState('Add a service provider first: the computers store their restore points in one of its cloud repositories.',
              button('Add service provider', { onClick: () => ctx.navigate('providers', { view: 'add' }) })));
            return () => { throw { kind: 'invalid', message: 'Add a service provider before you create a policy.' }; };
          }
          const target = selectField({ label: 'Cloud repository', id: 'policy-target', options: repos.map((r, i) => [String(i), `${r.provider} / ${r.repo.name} — ${fmt.bytes(r.repo.free_bytes)} free`]), value: '0' });
          const quota = field({ label: 'Quota per computer in GiB', id: 'policy-quota', kind: 'number', min: 0, step: 'any', value: String(fmt.isUnlimited(data.spec.computer_quota_bytes) ? 0 : data.spec.computer_quota_bytes / 1024 ** 3), hint: 'Carved from your quota for each computer; 0: unlimited (shares yours).' });
          body.append(target.wrap, quota.wrap);
          return () => {
            const n = Number(quota.input.value);
            if (!(n >= 0)) { quota.setError('Give a size in GiB, or 0 for unlimited.'); return false; }
            quota.setError(null);
            const r = repos[Number(target.input.value)];
            data.provider = r.provider;
            data.spec.repo = r.repo.name;
            data.spec.computer_quota_bytes = n === 0 ? fmt.UNLIMITED : fmt.gibToBytes(quota.input.value);
            return true;
          };
        },
      },
      { title: 'Schedule', render: (body, d) => { const next = scheduleStep(body, d); body.append(h('p', { class: 'hint', text: 'The agents run on this schedule on each computer, whether or not this console is open.' })); return next; } },
      { title: 'Retention', render: retentionStep },
      { title: 'Restore test', render: (body, d) => { const next = restoreTestStep(body, d); body.append(h('p', { class: 'hint', text: 'Each computer’s agent restores the sample into a scratch folder and reports only the result.' })); return next; } },
      !editing && { title: 'Encryption', render: (body, d) => encryptionStep(body, d, { always: true }) },
      {
        title: 'Summary',
        render(body, d) {
          body.append(h('p', {}, editing ? 'Publish these settings? Each agent applies them on its next cycle.' : 'Create this policy? Then add its computers and give each its enrollment file.'), facts([
            ['Name', d.name, 'summary-policy-name'],
            ['Backs up', backsUp(d.spec), 'summary-policy-what'],
            ['Stores in', `${d.provider} / ${d.spec.repo}`],
            ['Quota per computer', fmt.quota(d.spec.computer_quota_bytes)],
            ['Schedule', scheduleText(d.spec.schedule)],
            ['Encryption', 'encrypted with the policy’s password; each agent gets its own key, never the password'],
          ]));
        },
      },
    ].filter(Boolean),
  });
  replaceChildren(container, w.root);
}

/** What a policy's computers back up, by its backup mode. */
function backsUp(spec) {
  if (spec.mode === 'entire') return 'the entire computer (every disk)';
  if (spec.mode === 'volumes') return `volumes ${(spec.volumes || []).join(', ')}`;
  return spec.sources.join(', ');
}
