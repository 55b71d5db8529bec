// SP mode's tenants: the list with quota use, lease and state; the New tenant wizard
// (account and password → limits → cloud repository quotas → insider protection → summary);
// a tenant's page (settings, quotas, password, disable, delete); and the subtenants of all
// tenants, managed ones included.

import { spTenants, spTenantAdd, spTenantSettings, spTenantQuota, spTenantPassword, spTenantDelete, spTenantHandoff, spTenantHandoffSave, spGeneratePassword, spRepos, saveFile, spPlans, spPlanSubscription, spReplicas, spReplicaFailover } from '../ipc.js';
import { h, replaceChildren, button, field, facts, panel, paintBars, radioGroup, selectField, table } from '../dom.js';
import { wizard, errorSlot, errorBox, busy, confirmDialog, notice, copyButton, moreActions } from '../components.js';
import * as fmt from '../format.js';
import { validName, nameError, validPassword, passwordError } from '../rules.js';
import { subtenantTable } from '../lists.js';

export async function renderSpTenants(container, ctx) {
  if (ctx.params.view === 'new') return renderTenantWizard(container, ctx);
  if (ctx.params.login) return renderTenant(container, ctx, ctx.params.login);
  const all = await spTenants();
  if (!ctx.current()) return undefined;
  const tenants = all.filter((v) => v.tenant.parent === null);
  replaceChildren(container,
    h('div', { class: 'toolbar' }, button('New tenant', { id: 'tenant-new', onClick: () => ctx.navigate('sp-tenants', { view: 'new' }) })),
    subtenantTable(tenants, (v) => [button('Open', { variant: 'secondary', id: `tenant-open-${v.tenant.login}`, label: `Open tenant ${v.tenant.login}`, onClick: () => ctx.navigate('sp-tenants', { login: v.tenant.login }) })],
      { caption: 'Tenants', id: 'sp-tenants-table', empty: 'No tenant yet. Choose New tenant to give a customer an account.' }));
  paintBars(container);
  return undefined;
}

export async function renderSpSubtenants(container, ctx) {
  const all = await spTenants();
  if (!ctx.current()) return;
  const subs = all.filter((v) => v.tenant.parent !== null);
  replaceChildren(container,
    h('p', { class: 'hint', text: 'Subtenants are created by tenants (and by their backup policies, one managed subtenant per computer). Their quota is carved from the tenant’s.' }),
    subtenantTable(subs, (v) => [button('Open', { variant: 'secondary', label: `Open ${v.tenant.login}`, onClick: () => ctx.navigate('sp-tenants', { login: v.tenant.login }) })],
      { caption: 'Subtenants', id: 'sp-subtenants-table', empty: 'No tenant has created a subtenant yet.' }));
  paintBars(container);
}

function settingsFields(s) {
  return {
    description: field({ label: 'Description', id: 'tenant-description', value: s.description, hint: 'For your own records: the customer, a contract number.' }),
    lease: leaseField(s.lease_until_ms),
    tasks: field({ label: 'Most concurrent tasks', id: 'tenant-tasks', kind: 'number', min: 0, value: String(s.max_tasks), hint: '0: no limit.' }),
    bandwidth: field({ label: 'Bandwidth limit in Mbit/s', id: 'tenant-bandwidth', kind: 'number', min: 0, step: 'any', value: String((s.bandwidth_bps * 8) / 1e6), hint: '0: no limit.' }),
    keep: field({ label: 'Keep deleted restore points for (days)', id: 'tenant-keep', kind: 'number', min: 0, value: String(s.keep_deleted_days), hint: 'Insider protection: points the tenant deletes stay in the recycle bin this long, out of its reach. 0: deleted at once.' }),
  };
}

/**
 * The lease: "No end" or "Ends on" a date, never an empty date box a reader could take for
 * today. `read()` gives the end (ms, end of that day in UTC), null for no end, or undefined
 * (the error shown) for a date that is not one.
 */
function leaseField(untilMs) {
  const kind = radioGroup({
    legend: 'Lease',
    name: 'tenant-lease-kind',
    value: untilMs ? 'date' : 'none',
    hint: 'After the lease ends the tenant can restore but not back up, for the grace period of the gateway settings (30 days unless changed); then it is refused.',
    options: [['none', 'No end', 'The tenant keeps its access until you change it.'], ['date', 'Ends on a date', 'The last day the tenant may back up.']],
  });
  const date = field({ label: 'Last day of the lease', id: 'tenant-lease', kind: 'date', value: fmt.dateInput(untilMs), hint: 'Year-month-day, such as 2027-12-31.' });
  const dateRow = h('div', { class: 'sub' }, date.wrap);
  const sync = () => { dateRow.hidden = kind.value() !== 'date'; };
  kind.inputs.forEach((i) => i.addEventListener('change', sync));
  sync();
  return {
    wrap: h('div', { class: 'lease-field' }, kind.wrap, dateRow),
    read() {
      if (kind.value() !== 'date') { date.setError(null); return null; }
      const ms = fmt.endOfDayMs(date.input.value);
      if (ms === null) { date.setError('Choose the last day of the lease, such as 2027-12-31, or choose No end.'); return undefined; }
      date.setError(null);
      return ms;
    },
  };
}

/** Reads settings fields into `s`; false (errors shown) when a figure is wrong. */
function readSettings(f, s) {
  let ok = true;
  const figure = (fl, { fraction = false } = {}) => {
    const n = Number(fl.input.value || '0');
    if (!Number.isFinite(n) || n < 0 || (!fraction && !Number.isInteger(n))) { fl.setError(fraction ? 'Give a figure of 0 or more.' : 'Give a whole number of 0 or more.'); ok = false; return 0; }
    fl.setError(null);
    return n;
  };
  if (f.description) s.description = f.description.input.value.trim();
  if (f.lease) {
    const until = f.lease.read();
    if (until === undefined) ok = false; else s.lease_until_ms = until;
  }
  if (f.tasks) s.max_tasks = figure(f.tasks);
  if (f.bandwidth) s.bandwidth_bps = Math.round((figure(f.bandwidth, { fraction: true }) * 1e6) / 8);
  if (f.keep) s.keep_deleted_days = figure(f.keep);
  return ok;
}

function settingsFacts(s) {
  return [
    ['Description', s.description || '—'],
    ['Lease', fmt.lease(s.lease_until_ms), 'tenant-lease-fact'],
    ['Concurrent tasks', s.max_tasks ? String(s.max_tasks) : 'no limit'],
    ['Bandwidth', s.bandwidth_bps ? `${fmt.rate(s.bandwidth_bps)}` : 'no limit'],
    ['Keep deleted points', `${s.keep_deleted_days} days`],
  ];
}

async function renderTenantWizard(container, ctx) {
  const repos = await spRepos();
  if (!ctx.current()) return;
  ctx.setTitle('New tenant');
  const data = { name: '', password: '', settings: { description: '', enabled: true, lease_until_ms: null, max_tasks: 0, bandwidth_bps: 0, keep_deleted_days: 14 }, quotas: [] };
  const w = wizard({
    id: 'tenant-wizard',
    title: 'New tenant',
    data,
    finishLabel: 'Create tenant',
    onCancel: () => ctx.navigate('sp-tenants'),
    async onFinish(d) {
      await spTenantAdd({ name: d.name, password: d.password, settings: d.settings, quotas: d.quotas });
      // The password goes to the tenant's page once, for its Connection details; it is
      // never stored and the gateway cannot show it again.
      await ctx.navigate('sp-tenants', { login: d.name, created: true, password: d.password });
    },
    steps: [
      {
        title: 'Account',
        render(body) {
          const name = field({ label: 'Account name', id: 'tenant-name', value: data.name, required: true, hint: 'What the tenant signs in with: letters, digits, dots, dashes, underscores.' });
          const password = field({ label: 'Password', id: 'tenant-password', value: data.password, required: true, autocomplete: 'off', hint: 'Give it to the tenant over a safe channel; only its fingerprint-checked console ever sends it back.' });
          const generate = button('Generate', { variant: 'secondary', id: 'tenant-generate' });
          generate.addEventListener('click', () => busy(generate, async () => { password.input.value = await spGeneratePassword(); }, (e) => w.showError(e)));
          const f = settingsFields(data.settings);
          body.append(name.wrap, h('div', { class: 'inline-field' }, password.wrap, generate), f.description.wrap, f.lease.wrap);
          return () => {
            let ok = readSettings({ description: f.description, lease: f.lease }, data.settings);
            data.name = name.input.value.trim();
            data.password = password.input.value;
            if (!validName(data.name)) { name.setError(nameError()); ok = false; } else name.setError(null);
            if (!validPassword(data.password)) { password.setError(`${passwordError()} Or Generate one.`); ok = false; } else password.setError(null);
            return ok;
          };
        },
      },
      {
        title: 'Limits',
        render(body) {
          const f = settingsFields(data.settings);
          body.append(f.tasks.wrap, f.bandwidth.wrap);
          return () => readSettings({ tasks: f.tasks, bandwidth: f.bandwidth }, data.settings);
        },
      },
      {
        title: 'Quotas',
        render(body) {
          const rows = repos.map((r) => {
            const existing = data.quotas.find((q) => q.repo === r.name);
            return { repo: r, size: field({ label: `Quota on ${r.name} in GiB`, id: `tenant-quota-${r.name}`, kind: 'number', min: 0, step: 'any', value: existing ? String(existing.bytes / 1024 ** 3) : '', hint: 'Empty: no access to this repository.' }) };
          });
          body.append(h('p', { text: 'How much each cloud repository may hold for this tenant.' }), ...rows.map((r) => r.size.wrap));
          return () => {
            let ok = true;
            data.quotas = [];
            for (const r of rows) {
              const text = r.size.input.value.trim();
              if (!text) { r.size.setError(null); continue; }
              if (!(Number(text) > 0)) { r.size.setError('Give a quota above 0, or leave it empty.'); ok = false; continue; }
              r.size.setError(null);
              data.quotas.push({ repo: r.repo.name, friendly_name: null, bytes: fmt.gibToBytes(text) });
            }
            if (ok && data.quotas.length === 0) throw { kind: 'invalid', message: 'Give the tenant a quota on at least one cloud repository, or it has nowhere to back up.' };
            return ok;
          };
        },
      },
      {
        title: 'Insider protection',
        render(body) {
          const f = settingsFields(data.settings);
          body.append(f.keep.wrap);
          return () => readSettings({ keep: f.keep }, data.settings);
        },
      },
      {
        title: 'Summary',
        render(body) {
          body.append(facts([
            ['Account', data.name, 'summary-account'],
            ...settingsFacts(data.settings),
            ['Quotas', data.quotas.map((q) => `${q.repo}: ${fmt.bytes(q.bytes)}`).join(', '), 'summary-quotas'],
          ]));
        },
      },
    ],
  });
  replaceChildren(container, w.root);
}

/**
 * Connection details for the tenant: gateway addresses, the certificate fingerprint, the
 * account and, right after it was set, the password (shown this once), with Copy all and a
 * hand-off file saved readable by this user only.
 */
async function connectionPanel(login, password) {
  const slot = errorSlot();
  let details;
  try {
    details = await spTenantHandoff(login, password);
  } catch (err) {
    return panel('Connection details', errorBox(err));
  }
  const saved = h('div', { id: 'handoff-saved' });
  const save = button('Save to a file…', { variant: 'secondary', id: 'handoff-save' });
  save.addEventListener('click', () => busy(save, async () => {
    const path = await saveFile('Save the connection details', `cloudkeep-${login.replace('/', '-')}.txt`);
    if (!path) return;
    await spTenantHandoffSave(login, password, path);
    replaceChildren(saved, notice(`Saved to ${path}, readable by you only. Hand it over privately${password ? ': it holds the password' : ''}.`));
  }, (e) => slot.show(e)));
  const text = h('pre', { class: 'visually-hidden', id: 'handoff-text', 'aria-hidden': 'true', text: details.text });
  return panel('Connection details',
    h('p', { class: 'hint', text: 'What the tenant needs to add you as its service provider in the Cloudkeep Console or the command line.' }),
    facts([
      [details.addresses.length > 1 ? 'Gateway addresses' : 'Gateway address', details.addresses.join(', '), 'handoff-address'],
      ['Certificate fingerprint (SHA-256)', h('span', { class: 'fingerprint mono', text: details.fingerprint }), 'handoff-fingerprint'],
      ['Account', details.user, 'handoff-user'],
      ['Password', password ? h('span', { class: 'mono', text: password }) : 'not shown: it is never stored. Set a new one below to hand it over.', 'handoff-password'],
    ]),
    password ? h('p', { class: 'warning', id: 'handoff-once', text: 'The password is shown this once: copy or save it now.' }) : null,
    text,
    h('div', { class: 'actions' }, copyButton(() => details.text, { id: 'handoff-copy', caption: 'Copy all', label: 'connection details', select: text }), save),
    slot.el, saved);
}

async function renderTenant(container, ctx, login) {
  const all = await spTenants();
  if (!ctx.current()) return;
  const view = all.find((v) => v.tenant.login === login);
  if (!view) throw { kind: 'not_found', message: `There is no tenant ${login} any more; open Tenants for the current list.` };
  const t = view.tenant;
  ctx.setTitle(`Tenant ${login}`);
  const slot = errorSlot();
  const reload = () => ctx.navigate('sp-tenants', { login });
  const settings = structuredClone(t.settings);
  const f = settingsFields(settings);
  const save = button('Save settings', { id: 'tenant-save', type: 'submit' });
  const form = h('form', { class: 'form', novalidate: true }, f.description.wrap, f.lease.wrap, h('div', { class: 'grid-3' }, f.tasks.wrap, f.bandwidth.wrap, f.keep.wrap), h('div', { class: 'actions' }, save));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!readSettings(f, settings)) return;
    busy(save, async () => { await spTenantSettings(login, settings); await reload(); }, (e) => slot.show(e));
  });
  const toggle = button(t.settings.enabled ? 'Disable tenant' : 'Enable tenant', { variant: 'secondary', id: 'tenant-toggle' });
  toggle.addEventListener('click', async () => {
    if (t.settings.enabled) {
      const ok = await confirmDialog({ title: `Disable ${login}?`, message: 'The tenant can no longer sign in, back up or restore until you enable it again. Its data stays.', confirmLabel: 'Disable' });
      if (!ok) return;
    }
    await busy(toggle, async () => { await spTenantSettings(login, { ...t.settings, enabled: !t.settings.enabled }); await reload(); }, (e) => slot.show(e));
  });
  const del = button('Delete this tenant', { variant: 'danger', id: 'tenant-delete' });
  del.addEventListener('click', async () => {
    const withData = field({ label: 'Also delete its restore points and subtenants', id: 'dialog-with-data', kind: 'checkbox', value: true });
    const ok = await confirmDialog({ title: `Delete ${login}?`, message: 'The account is removed; the tenant can no longer sign in.', confirmLabel: 'Delete tenant', extra: withData.wrap });
    if (!ok) return;
    await busy(del, async () => { await spTenantDelete(login, withData.input.checked); await ctx.navigate('sp-tenants'); }, (e) => slot.show(e));
  });
  const quotaRows = view.quotas.map((q) => {
    const size = field({ label: `Quota on ${q.repo_name} in GiB`, id: `quota-${q.repo_name}`, kind: 'number', min: 0, step: 'any', value: String(q.quota_bytes / 1024 ** 3), hint: `${fmt.bytes(q.used_bytes)} used, ${fmt.bytes(q.recycle_bytes)} in the recycle bin.` });
    const set = button('Set', { variant: 'secondary', label: `Set the quota on ${q.repo_name}` });
    set.addEventListener('click', () => busy(set, async () => { await spTenantQuota(login, { repo: q.repo_name, friendly_name: q.friendly_name || null, bytes: fmt.gibToBytes(size.input.value) }); await reload(); }, (e) => slot.show(e)));
    return h('div', { class: 'inline-field' }, size.wrap, set);
  });
  const password = field({ label: 'New password', id: 'tenant-new-password', autocomplete: 'off' });
  const generate = button('Generate', { variant: 'secondary', onClick: async () => { password.input.value = await spGeneratePassword(); } });
  const setPassword = button('Set password', { variant: 'secondary', id: 'tenant-set-password' });
  setPassword.addEventListener('click', () => {
    if (!validPassword(password.input.value)) { password.setError(passwordError()); return; }
    password.setError(null);
    const chosen = password.input.value;
    busy(setPassword, async () => { await spTenantPassword(login, chosen); await ctx.navigate('sp-tenants', { login, password: chosen, changed: true }); }, (e) => slot.show(e));
  });
  replaceChildren(container,
    ctx.params.created ? notice(`Tenant ${login} created. Hand it the connection details below.`, { id: 'tenant-created' }) : null,
    ctx.params.changed ? notice('Password changed. Hand the tenant the connection details below with the new one.', { id: 'tenant-password-changed' }) : null,
    h('div', { class: 'toolbar' }, button('All tenants', { variant: 'secondary', onClick: () => ctx.navigate('sp-tenants') }), toggle,
      moreActions({ id: 'tenant-more', label: `for tenant ${login}`, note: 'Deleting the tenant ends its access at once. With its data, everything it and its subtenants stored is removed at once, their recycle bin included: insider protection does not keep it, and it cannot be undone.', actions: [del] })),
    slot.el,
    await connectionPanel(login, ctx.params.password),
    panel('State', facts([['Account', login, 'tenant-login'], ['State', t.settings.enabled ? 'enabled' : 'disabled', 'tenant-state'], ['Created', fmt.dateTime(t.created_ms)], ['Last activity', fmt.dateTime(t.last_activity_ms)], ['Managed by a policy', t.managed ? 'yes' : 'no']])),
    panel('Settings', form),
    panel('Quotas', quotaRows.length ? quotaRows : h('p', { class: 'hint', text: 'No quota.' })),
    panel('Password', h('div', { class: 'inline-field' }, password.wrap, generate, setPassword)),
    login.includes('/') ? null : await replicationPanel(login, reload, slot));
}

/**
 * A tenant's replication resources: the hardware plans it has (each can be taken away) and
 * the others, to give it one.
 */
async function replicationPanel(login, reload, slot) {
  const plans = await spPlans();
  const has = plans.filter((v) => v.tenants.includes(login));
  const others = plans.filter((v) => !v.tenants.includes(login));
  const summary = (p) => `${fmt.counted(p.cpu, 'CPU')}, ${fmt.bytes(p.memory)}, ${p.storage.map((s) => `${fmt.bytes(s.bytes)} on ${s.pool}`).join(', ')}, ${fmt.counted(p.networks, 'network')}`;
  const take = (v) => {
    const btn = button('Take away', { variant: 'secondary', id: `plan-unsubscribe-${v.plan.name}`, label: `Take away hardware plan ${v.plan.name} from ${login}` });
    btn.addEventListener('click', async () => {
      if (!(await confirmDialog({ title: `Take hardware plan ${v.plan.name} from ${login}?`, message: 'The tenant can no longer replicate onto it.', confirmLabel: 'Take away', danger: false }))) return;
      busy(btn, async () => { await spPlanSubscription(v.plan.name, login, false); await reload(); }, (e) => slot.show(e));
    });
    return btn;
  };
  let give = null;
  if (others.length) {
    const choice = selectField({ label: 'Hardware plan', id: 'plan-subscribe-choice', options: others.map((v) => [v.plan.name, `${v.plan.name} (${summary(v.plan)} on ${v.plan.host})`]) });
    const go = button('Give plan', { variant: 'secondary', id: 'plan-subscribe' });
    go.addEventListener('click', () => busy(go, async () => { await spPlanSubscription(choice.input.value, login, true); await reload(); }, (e) => slot.show(e)));
    give = h('div', { class: 'inline-field' }, choice.wrap, go);
  }
  const replicas = (await spReplicas()).filter((r) => r.tenant === login);
  const start = (r) => {
    if (r.state) return h('span', { class: 'hint', text: 'Runs' });
    if (!r.key_escrowed) return h('span', { class: 'hint', text: 'Only the tenant can start it: it took its key back' });
    if (r.points.length === 0) return h('span', { class: 'hint', text: 'No replica point yet' });
    const go = (label, id, test) => {
      const b = button(label, { variant: 'secondary', id: `sp-replica-${id}-${r.spec.name}`, label: `${label}: replica ${r.spec.name} of ${login}` });
      b.addEventListener('click', async () => {
        if (!test && !(await confirmDialog({ title: `Fail over ${login}’s replica ${r.spec.name}?`, message: 'It starts on your cloud host from its newest point as the tenant’s machine, with the key the tenant lets you hold; its replication waits until the tenant fails it back or undoes it. The audit log records it.', confirmLabel: 'Fail over', danger: false }))) return;
        busy(b, async () => { await spReplicaFailover(login, r.spec.name, test); await reload(); }, (e) => slot.show(e));
      });
      return b;
    };
    return h('div', { class: 'row-actions' }, go('Test failover', 'test', true), go('Fail over', 'failover', false));
  };
  const stateOf = (r) => (r.state ? `${{ test: 'Test failover', failover: 'Failed over', permanent: 'Failed over permanently', failback: 'Being failed back' }[r.state.mode] || r.state.mode}, from point ${r.state.running.point}` : 'Not running');
  return panel('Replication resources',
    h('p', { class: 'hint', text: 'The hardware plans this tenant’s replicas may use on your cloud hosts, and its replicas.' }),
    has.length
      ? h('div', { id: 'tenant-plans' }, table({
        caption: `Hardware plans of ${login}`,
        columns: [['Hardware plan', (v) => v.plan.name], ['Cloud host', (v) => v.plan.host], ['What it has', (v) => summary(v.plan)], ['Manage', take]],
        rows: has,
      }))
      : h('p', { class: 'hint', id: 'tenant-plans', text: plans.length ? 'No hardware plan yet.' : 'No hardware plan yet: make one under Hardware plans.' }),
    give,
    table({
      caption: `Replicas of ${login}`,
      id: 'tenant-replicas',
      columns: [
        ['Replica', (r) => r.spec.name],
        ['Hardware plan', (r) => `${r.spec.plan} (host ${r.host})`],
        ['On the host', (r) => fmt.bytes(r.stored)],
        ['Replica points', (r) => fmt.count(r.points.length)],
        ['State', stateOf],
        ['Start on its behalf', start],
      ],
      rows: replicas,
      empty: 'No replica yet.',
    }));
}
