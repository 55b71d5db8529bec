// SP mode's connection and gateway administration: connect as SP admin (address →
// certificate trust step → credentials), the connection page (disconnect), gateways with
// heartbeats, the served certificate (view, generate, import PEM through file dialogs), usage (table, CSV through a save dialog), the recycle bin, maintenance mode, the
// lease grace period and the storage check (the database against the storage, reconciled,
// with what it found and did), reclaiming space, the certificate rollover, and the SP admins.

import { providerProbe, providersList, spSession, spConnect, spDisconnect, spGateways, spGatewayDrain, spCert, spCertGenerate, spCertImport, spCertNextInfo, spCertNext, spCertRollover, spUsage, spUsageExport, spRecycleBin, spRecycleRestore, spRecyclePurge, spMaintenance, spSettings, spSetSettings, spSetMaintenance, spCheck, pickFile, saveFile, spReclaim, spAdmins, spAdminAdd, spAdminRemove, spAdminPassword } from '../ipc.js';
import { h, replaceChildren, button, field, facts, table, panel, meter } from '../dom.js';
import { wizard, certificateCard, certificateStep, errorSlot, busy, confirmDialog, notice, moreActions } from '../components.js';
import * as fmt from '../format.js';
import { labSpButton, LAB_PROVIDER } from '../lab.js';
import { validName, nameError, validPassword, passwordError, passwordHint } from '../rules.js';

/** The connect wizard, shown by every SP section until an admin session exists. */
export async function renderSpConnect(container, ctx) {
  ctx.setTitle('Connect to a gateway');
  // The lab, when this console started one: its SP side opens without a password to find.
  const hasLab = (await providersList().catch(() => [])).some((p) => p.name === LAB_PROVIDER);
  if (!ctx.current()) return;
  const w = wizard({
    id: 'sp-connect',
    title: 'Connect as SP admin',
    data: { host: '', probed: null, trust: null },
    onCancel: () => ctx.navigate('about'),
    steps: [
      {
        title: 'Gateway',
        render(body, data) {
          const host = field({ label: 'Gateway address', id: 'sp-host', value: data.host, required: true, hint: 'host:port of one of your gateways; the port is 6180 when left out.' });
          body.append(h('p', { class: 'lead', text: 'Service provider mode manages tenants, quotas and gateways. Sign in with an SP admin account of the gateway.' }), host.wrap);
          return async () => {
            data.host = host.input.value.trim();
            if (!data.host) { host.setError('Enter the gateway address.'); return false; }
            data.probed = await providerProbe(data.host);
            return true;
          };
        },
      },
      {
        title: 'Certificate',
        render(body, data, wz) {
          return certificateStep(body, data, wz, {
            untrusted: 'Compare the fingerprint with the one on the gateway (cloudkeep gateway cert show), then tick “Trust this certificate”.',
            audience: 'sp',
          });
        },
      },
      {
        title: 'Sign in',
        nextLabel: 'Connect',
        render(body, data) {
          const user = field({ label: 'Admin account', id: 'sp-user', required: true, autocomplete: 'username' });
          const password = field({ label: 'Password', id: 'sp-password', kind: 'password', required: true, autocomplete: 'current-password' });
          body.append(user.wrap, password.wrap);
          return async () => {
            let ok = true;
            for (const [f, msg] of [[user, 'Enter the admin account.'], [password, 'Enter the password.']]) {
              f.setError(f.input.value ? null : msg);
              if (!f.input.value) ok = false;
            }
            if (!ok) return false;
            await spConnect({ gateway: data.probed.address, user: user.input.value.trim(), password: password.input.value, trust: data.trust });
            if (ctx.then) await ctx.then(); else await ctx.navigate('sp-tenants');
            return true;
          };
        },
      },
    ],
  });
  const slot = errorSlot();
  replaceChildren(container,
    hasLab ? h('div', { class: 'card lab-card' },
      h('p', { text: 'The lab runs on this computer: open it as its service provider, signed in as its SP admin.' }),
      labSpButton({ ...ctx, navigate: async (to) => { if (ctx.then) await ctx.then(); else await ctx.navigate(to); } }, slot), slot.el) : null,
    w.root);
}

export async function renderSpConnection(container, ctx) {
  const session = await spSession();
  if (!session) return renderSpConnect(container, { ...ctx, then: () => ctx.navigate('sp-tenants') });
  const disconnect = button('Disconnect', { variant: 'secondary', id: 'sp-disconnect' });
  disconnect.addEventListener('click', () => busy(disconnect, async () => { await spDisconnect(); await ctx.navigate('sp-connection'); }, ctx.showError));
  replaceChildren(container,
    facts([['Gateway', session.gateway, 'sp-gateway'], ['Signed in as', session.user, 'sp-signed-in'], ['Pinned certificate', h('span', { class: 'fingerprint', text: session.fingerprint })]]),
    h('div', { class: 'actions' }, disconnect,
      button('Tenants', { id: 'sp-open-tenants', onClick: () => ctx.navigate('sp-tenants') })));
  return undefined;
}

export async function renderSpGateways(container, ctx) {
  const gateways = await spGateways();
  if (!ctx.current()) return;
  const now = Date.now();
  const slot = errorSlot();
  const state = (g) => {
    if (now - g.heartbeat_ms >= 120000) return h('span', { class: 'badge badge-failed', text: 'No heartbeat' });
    if (g.draining) return h('span', { class: 'badge badge-warning', text: 'Draining' });
    return h('span', { class: 'badge badge-success', text: 'Online' });
  };
  const action = (g) => {
    const drain = !g.draining;
    const b = button(drain ? 'Drain' : 'Resume', {
      variant: 'secondary',
      id: `gateway-${drain ? 'drain' : 'resume'}-${g.id}`,
      label: drain ? `Drain ${g.id}` : `Resume ${g.id}`,
    });
    b.addEventListener('click', async () => {
      if (drain && !(await confirmDialog({
        title: `Drain ${g.id}?`,
        message: 'It takes no new sessions: tenants’ programs log in through another gateway. Backups and restores running on it finish. Resume it after the maintenance.',
        confirmLabel: 'Drain',
        danger: false,
      }))) return;
      busy(b, async () => { await spGatewayDrain(g.id, drain); await ctx.navigate('sp-gateways'); }, (e) => slot.show(e));
    });
    return b;
  };
  replaceChildren(container, slot.el, table({
    caption: 'Gateways',
    id: 'sp-gateways-table',
    columns: [
      ['Gateway', (g) => h('span', { class: 'mono', text: g.id })],
      ['Address', (g) => g.address],
      ['State', state],
      ['Connections', (g) => fmt.count(g.connections ?? 0), 'num'],
      ['Requests / min', (g) => fmt.count(g.requests_per_min ?? 0), 'num'],
      ['Last heartbeat', (g) => h('span', { title: `${fmt.dateTime(g.heartbeat_ms)}; started ${fmt.dateTime(g.started_ms)}`, text: fmt.relative(g.heartbeat_ms, now) })],
      ['Maintenance', action],
    ],
    rows: gateways,
    empty: 'No gateway has reported yet.',
  }), h('p', { class: 'hint', text: 'Gateways report every few seconds with their load; one silent for two minutes is shown as without heartbeat. A drained gateway takes no new sessions until it is resumed.' }));
}

export async function renderSpCertificate(container, ctx) {
  const [cert, next] = await Promise.all([spCert(), spCertNextInfo()]);
  if (!ctx.current()) return;
  const slot = errorSlot();
  const result = h('div', { id: 'cert-result' });
  const names = field({ label: 'Names for a new self-signed certificate', id: 'cert-names-input', value: cert.names.join(', '), hint: 'Host names and IP addresses, separated by commas.' });
  const generate = button('Generate and serve', { variant: 'secondary', id: 'cert-generate' });
  generate.addEventListener('click', async () => {
    const ok = await confirmDialog({ title: 'Replace the certificate?', message: 'Every tenant will see a changed certificate and must trust the new fingerprint before backing up again. Tell them the new fingerprint.', confirmLabel: 'Generate', danger: true });
    if (!ok) return;
    await busy(generate, async () => {
      const list = names.input.value.split(',').map((s) => s.trim()).filter(Boolean);
      const made = await spCertGenerate(list);
      replaceChildren(result, notice(`Serving the new certificate ${made.fingerprint}.`, { id: 'cert-generated' }));
      await ctx.navigate('sp-certificate');
    }, (e) => slot.show(e));
  });
  const chain = field({ label: 'Certificate chain (PEM)', id: 'cert-chain', hint: 'The certificate first, then its intermediates.' });
  const key = field({ label: 'Private key (PEM)', id: 'cert-key' });
  const browseChain = button('Browse…', { variant: 'secondary', id: 'cert-chain-browse', onClick: async () => { const p = await pickFile('Certificate chain (PEM)', ['pem', 'crt', 'cer']); if (p) chain.input.value = p; } });
  const browseKey = button('Browse…', { variant: 'secondary', id: 'cert-key-browse', onClick: async () => { const p = await pickFile('Private key (PEM)', ['pem', 'key']); if (p) key.input.value = p; } });
  const importBtn = button('Import and serve', { id: 'cert-import' });
  importBtn.addEventListener('click', () => {
    chain.setError(chain.input.value.trim() ? null : 'Choose the certificate chain file.');
    key.setError(key.input.value.trim() ? null : 'Choose the private key file.');
    if (!chain.input.value.trim() || !key.input.value.trim()) return;
    busy(importBtn, async () => {
      await spCertImport(chain.input.value.trim(), key.input.value.trim());
      await ctx.navigate('sp-certificate');
    }, (e) => slot.show(e));
  });
  // A rollover: the next certificate announced now (signed with the current key), served
  // later; tenants and agents that connect in between follow it without being told.
  const announce = button('Announce the next certificate', { variant: 'secondary', id: 'cert-next' });
  announce.addEventListener('click', () => busy(announce, async () => {
    const list = names.input.value.split(',').map((s) => s.trim()).filter(Boolean);
    await spCertNext(list);
    await ctx.navigate('sp-certificate');
  }, (e) => slot.show(e)));
  const rollover = button('Serve it now', { id: 'cert-rollover' });
  rollover.addEventListener('click', () => busy(rollover, async () => {
    const served = await spCertRollover();
    await ctx.navigate('sp-certificate');
    document.getElementById('cert-result')?.replaceChildren(notice(`Serving the announced certificate ${served.fingerprint}.`, { id: 'cert-rolled-over' }));
  }, (e) => slot.show(e)));
  const daysLeft = Math.floor((Date.parse(cert.not_after) - Date.now()) / 86_400_000);
  const expiry = daysLeft < 30
    ? h('p', { class: 'warning', id: 'cert-expiry', role: 'alert', text: daysLeft < 0 ? `This certificate expired on ${fmt.date(Date.parse(cert.not_after))}. Announce and serve a new one now.` : `This certificate expires on ${fmt.date(Date.parse(cert.not_after))}, in ${daysLeft} days. Announce the next one now, or import a renewed CA-signed one.` })
    : null;
  const nextPanel = next
    ? panel('Next certificate (announced)',
      facts([['Fingerprint', next.fingerprint, 'cert-next-fingerprint'], ['Valid until', fmt.date(Date.parse(next.not_after))]]),
      h('p', { class: 'hint', text: 'Tenants and agents learn it when they connect and follow the rollover by themselves. Serve it once they have, days before the current one ends.' }),
      h('div', { class: 'actions' }, rollover))
    : panel('Renew without an outage',
      h('p', { class: 'hint', text: 'Announce the next self-signed certificate (for the names above) days ahead: it is signed with the current key, so tenants and agents accept it without asking anyone when it is served.' }),
      h('div', { class: 'actions' }, announce));
  replaceChildren(container,
    panel('Served certificate', certificateCard({ cert, ca_valid: !cert.self_signed, ca_problem: cert.self_signed ? 'self-signed' : null }, { audience: 'served' }), expiry),
    slot.el, result,
    nextPanel,
    panel('Generate a self-signed certificate', names.wrap, h('div', { class: 'actions' }, generate)),
    panel('Import a certificate from a CA', h('div', { class: 'inline-field' }, chain.wrap, browseChain), h('div', { class: 'inline-field' }, key.wrap, browseKey), h('div', { class: 'actions' }, importBtn)));
}

export async function renderSpUsage(container, ctx) {
  const rows = await spUsage();
  if (!ctx.current()) return;
  const slot = errorSlot();
  const saved = h('div', { id: 'usage-saved' });
  const exportBtn = button('Export CSV…', { id: 'usage-export' });
  exportBtn.addEventListener('click', () => busy(exportBtn, async () => {
    const path = await saveFile('Save usage as CSV', `cloudkeep-usage-${fmt.date(Date.now())}.csv`);
    if (!path) return;
    const n = await spUsageExport(path);
    replaceChildren(saved, notice(`Saved ${n} rows to ${path}.`));
  }, (e) => slot.show(e)));
  const reclaim = button('Reclaim space now', { variant: 'secondary', id: 'usage-reclaim' });
  reclaim.addEventListener('click', () => busy(reclaim, async () => {
    const r = await spReclaim();
    await ctx.navigate('sp-usage');
    const note = `Removed ${fmt.bytes(r.removed_bytes)}; ${fmt.bytes(r.retired_bytes)} kept until insider protection ends; compacting by the tenants’ jobs would free ${fmt.bytes(r.reclaimable_bytes)} more.`;
    document.getElementById('usage-saved')?.replaceChildren(notice(note));
  }, (e) => slot.show(e)));
  replaceChildren(container, h('div', { class: 'toolbar' }, exportBtn, reclaim), slot.el, saved, usageTotals(rows), table({
    caption: 'Usage per tenant and cloud repository',
    id: 'sp-usage-table',
    columns: [
      ['Tenant', (r) => r.tenant], ['Cloud repository', repoName], ['Quota', (r) => fmt.quota(r.quota_bytes), 'num'],
      ['Used', (r) => usedCell(r.used_bytes, r.quota_bytes, `${r.tenant} on ${r.repo}`)], ['Recycle bin', (r) => fmt.bytes(r.recycle_bytes), 'num'],
      ['Reclaimable', (r) => fmt.bytes(r.reclaimable_bytes), 'num'],
      ['Points', (r) => fmt.count(r.points), 'num'], ['Last activity', (r) => fmt.dateTime(r.last_activity_ms), 'when'],
    ],
    rows,
    empty: 'No tenant has a quota yet.',
  }));
}

/** A repository by the SP's name, and the name its tenants see when that differs. */
function repoName(r) {
  return r.friendly_name && r.friendly_name !== r.repo ? h('span', {}, r.repo, h('br'), h('span', { class: 'hint', text: `tenants see “${r.friendly_name}”` })) : r.repo;
}

/** Used bytes with a bar and the share of the quota (none for an unlimited quota). */
function usedCell(used, quota, what) {
  const unlimited = fmt.isUnlimited(quota);
  const share = fmt.quotaShare(used, quota);
  return h('div', { class: 'quota-cell' },
    meter({ share, label: `Quota used by ${what}`, unlimited }),
    h('span', { class: 'num', text: unlimited ? fmt.bytes(used) : `${fmt.bytes(used)} (${Math.round(share * 100)} %)` }));
}

/** Totals per cloud repository: what is stored, given out as quotas, in recycle bins. */
function usageTotals(rows) {
  if (rows.length === 0) return null;
  const by = new Map();
  for (const r of rows) {
    const t = by.get(r.repo) || { repo: r.repo, tenants: 0, used: 0, quota: 0, recycle: 0, reclaimable: 0, points: 0 };
    t.tenants += 1;
    t.used += r.used_bytes;
    if (!fmt.isUnlimited(r.quota_bytes)) t.quota += r.quota_bytes;
    t.recycle += r.recycle_bytes;
    t.reclaimable += r.reclaimable_bytes;
    t.points += r.points;
    by.set(r.repo, t);
  }
  const all = [...by.values()];
  const sum = (k) => all.reduce((n, t) => n + t[k], 0);
  return panel('Totals', table({
    caption: 'Totals per cloud repository',
    id: 'sp-usage-totals',
    columns: [
      ['Cloud repository', (t) => t.repo], ['Tenants', (t) => fmt.count(t.tenants), 'num'],
      ['Used of the quotas given', (t) => usedCell(t.used, t.quota, `all tenants on ${t.repo}`)],
      ['Quotas given', (t) => fmt.bytes(t.quota), 'num'], ['Recycle bin', (t) => fmt.bytes(t.recycle), 'num'],
      ['Reclaimable', (t) => fmt.bytes(t.reclaimable), 'num'], ['Points', (t) => fmt.count(t.points), 'num'],
    ],
    rows: all.length > 1 ? [...all, { repo: 'All', tenants: new Set(rows.map((r) => r.tenant)).size, used: sum('used'), quota: sum('quota'), recycle: sum('recycle'), reclaimable: sum('reclaimable'), points: sum('points') }] : all,
  }));
}

export async function renderSpRecycleBin(container, ctx) {
  const points = await spRecycleBin();
  if (!ctx.current()) return;
  const slot = errorSlot();
  const ref = (p) => ({ tenant: p.tenant, repo: p.repo, point: p.point });
  replaceChildren(container, h('p', { class: 'hint', text: 'Restore points deleted by a tenant stay here for the tenant’s protection days, out of the tenant’s reach: insider protection.' }), slot.el, table({
    caption: 'Recycle bin',
    id: 'sp-recycle-table',
    columns: [
      ['Tenant', (p) => p.tenant], ['Repository', (p) => p.repo], ['Point', (p) => h('span', { class: 'mono', text: p.point.slice(0, 12) })],
      ['Taken', (p) => fmt.dateTime(Math.floor(p.time_ns / 1e6)), 'when'], ['Deleted', (p) => fmt.dateTime(p.deleted_ms), 'when'], ['Purged after', (p) => fmt.dateTime(p.purge_after_ms), 'when'],
      ['Actions', (p) => h('div', { class: 'row-actions' },
        button('Restore', { variant: 'secondary', label: `Restore point ${p.point.slice(0, 12)} of ${p.tenant}`, onClick: (e) => busy(e.target, async () => { await spRecycleRestore(ref(p)); await ctx.navigate('sp-recycle'); }, (err) => slot.show(err)) }),
        moreActions({ id: `recycle-more-${p.point.slice(0, 12)}`, label: `for point ${p.point.slice(0, 12)} of ${p.tenant}`, note: 'Purging deletes the point for good, before its protection days end.', actions: [button('Purge', { variant: 'danger', label: `Purge point ${p.point.slice(0, 12)} of ${p.tenant}`, onClick: async (e) => {
          const ok = await confirmDialog({ title: 'Purge this restore point?', message: `The restore point of ${p.tenant} is deleted for good; its data cannot be brought back.`, confirmLabel: 'Purge' });
          if (ok) await busy(e.target, async () => { await spRecyclePurge(ref(p)); await ctx.navigate('sp-recycle'); }, (err) => slot.show(err));
        } })] }))],
    ],
    rows: points,
    empty: 'The recycle bin is empty.',
  }));
}

export async function renderSpMaintenance(container, ctx) {
  const mode = await spMaintenance();
  if (!ctx.current()) return;
  const slot = errorSlot();
  const on = mode.message !== null && mode.message !== undefined;
  const message = field({ label: 'Message tenants see', id: 'maintenance-message', value: on ? mode.message : 'Scheduled maintenance; backups resume within the hour.' });
  const toggle = button(on ? 'End maintenance' : 'Start maintenance', { id: 'maintenance-toggle' });
  toggle.addEventListener('click', async () => {
    if (!on) {
      const ok = await confirmDialog({ title: 'Start maintenance mode?', message: 'Gateways refuse new backups and restores until maintenance ends; tenants see your message.', confirmLabel: 'Start maintenance' });
      if (!ok) return;
    }
    await busy(toggle, async () => { await spSetMaintenance(on ? null : message.input.value.trim() || 'Maintenance'); await ctx.navigate('sp-maintenance'); }, (e) => slot.show(e));
  });
  replaceChildren(container,
    h('p', { class: `state-line ${on ? 'warning' : 'all-good'}`, id: 'maintenance-state', text: on ? `Maintenance mode is on: “${mode.message}”.` : 'Gateways serve tenants normally.' }),
    slot.el, on ? null : message.wrap, h('div', { class: 'actions' }, toggle),
    leasePanel(await spSettings()),
    storageCheckPanel());
}

/** How long a tenant whose lease ended may still restore (not back up). */
function leasePanel(settings) {
  const slot = errorSlot();
  const days = field({ label: 'Days a tenant may still restore after its lease ends', id: 'lease-grace-days', kind: 'number', min: 0, max: 3650, value: String(settings.lease_grace_days), hint: 'During these days backups are refused and restores, browsing and verify work; then the tenant is refused. 0: refused at once.' });
  const save = button('Save', { id: 'lease-grace-save', variant: 'secondary' });
  const saved = h('div', { 'aria-live': 'polite' });
  save.addEventListener('click', () => {
    const n = Number(days.input.value);
    if (!Number.isInteger(n) || n < 0 || n > 3650) { days.setError('Give a whole number of days from 0 to 3650.'); return; }
    days.setError(null);
    busy(save, async () => {
      const now = await spSetSettings(n);
      replaceChildren(saved, notice(`Tenants may restore for ${now.lease_grace_days} days after their lease ends.`, { id: 'lease-grace-saved' }));
    }, (e) => slot.show(e));
  });
  return panel('Leases', days.wrap, h('div', { class: 'actions' }, save), slot.el, saved);
}

/** The storage check: run it, then say what it found and what it did, in numbers. */
function storageCheckPanel() {
  const slot = errorSlot();
  const result = h('div', { id: 'check-result', 'aria-live': 'polite' });
  const deep = h('input', { type: 'checkbox', id: 'check-deep' });
  const run = button('Check storage', { id: 'check-run', variant: 'secondary' });
  run.addEventListener('click', () => busy(run, async () => {
    replaceChildren(result, notice(deep.checked ? 'Re-reading every pack…' : 'Checking…'));
    replaceChildren(result, checkReport(await spCheck(deep.checked)));
  }, (e) => { replaceChildren(result); slot.show(e); }));
  return panel('Storage check',
    h('p', { class: 'hint', text: 'Compares what the database records with what the storage holds: lost packs are forgotten so that tenants’ next backups send them again, changed ones are marked damaged, leftovers of interrupted writes are removed and quota figures recounted.' }),
    h('p', {}, h('span', { class: 'check' }, deep, h('label', { for: 'check-deep', text: 'Also re-read every pack and compare it with its id (reads the whole storage)' }))),
    h('div', { class: 'actions' }, run), slot.el, result);
}

function checkReport(r) {
  const problems = r.lost.length + r.damaged.length + r.missing_objects.length + r.unavailable.length;
  const issues = [
    ...r.unavailable.map((a) => ({ kind: 'Not checked', where: a, pack: '', what: 'its storage folder is not there (is the disk mounted?)' })),
    ...r.lost.map((i) => ({ kind: 'Lost', where: `${i.tenant} / ${i.repo}`, pack: i.pack, what: i.what })),
    ...r.damaged.map((i) => ({ kind: 'Damaged', where: `${i.tenant} / ${i.repo}`, pack: i.pack, what: i.what })),
    ...r.missing_objects.map((i) => ({ kind: 'Missing', where: `${i.tenant} / ${i.repo}`, pack: i.pack, what: i.what })),
  ];
  return h('div', {},
    h('p', { class: `state-line ${problems ? 'warning' : 'all-good'}`, id: 'check-state', text: problems
      ? `${fmt.count(problems)} ${problems === 1 ? 'problem' : 'problems'} found and marked.`
      : 'The storage holds what the database records.' }),
    facts([
      ['Storage areas checked', fmt.count(r.quotas)],
      ['Packs checked', fmt.count(r.packs_checked)],
      ['Re-read and hashed', fmt.bytes(r.bytes_hashed)],
      ['Leftover pack files removed', `${fmt.count(r.orphans_removed)} (${fmt.bytes(r.orphan_bytes)})`],
      ['Temporary files removed', fmt.bytes(r.temp_bytes_removed)],
      ['Reservations of dead writes given back', `${fmt.count(r.reservations_reclaimed)} (${fmt.bytes(r.reserved_bytes_returned)})`],
      ['Quota figures corrected', fmt.count(r.recounted.length)],
    ]),
    issues.length ? table({
      caption: 'What the check found',
      id: 'check-issues',
      columns: [['Found', (i) => i.kind], ['Where', (i) => i.where], ['Pack or object', (i) => h('span', { class: 'mono', text: i.pack.slice(0, 16) })], ['What was done', (i) => i.what]],
      rows: issues,
    }) : null);
}

/** SP admins: the list, add one, set a password (its sessions end), remove another. */
export async function renderSpAdmins(container, ctx) {
  const admins = await spAdmins();
  if (!ctx.current()) return;
  const slot = errorSlot();
  const me = (await spSession())?.user;
  const name = field({ label: 'Name', id: 'admin-name', hint: 'Letters, digits, dots, dashes and underscores.' });
  const pw = field({ label: 'Password', id: 'admin-password', kind: 'password', autocomplete: 'new-password', hint: passwordHint() });
  const add = button('Add SP admin', { id: 'admin-add' });
  add.addEventListener('click', () => {
    if (!validName(name.input.value.trim())) { name.setError(nameError()); return; }
    name.setError(null);
    if (!validPassword(pw.input.value)) { pw.setError(passwordError()); return; }
    pw.setError(null);
    busy(add, async () => { await spAdminAdd(name.input.value.trim(), pw.input.value); await ctx.navigate('sp-admins'); }, (e) => slot.show(e));
  });
  replaceChildren(container, slot.el, table({
    caption: 'SP admins',
    id: 'sp-admins-table',
    columns: [
      ['Name', (a) => a.name], ['Added', (a) => fmt.dateTime(a.created_ms), 'when'],
      ['', (a) => {
        const setPw = button('Set password', { variant: 'secondary', label: `Set password of ${a.name}`, id: `admin-password-${a.name}` });
        setPw.addEventListener('click', async () => {
          const next = field({ label: 'New password', id: 'dialog-admin-password', kind: 'password', autocomplete: 'new-password', hint: passwordHint() });
          const ok = await confirmDialog({ title: `New password for ${a.name}`, message: 'Its sessions end; it logs in again with this password.', confirmLabel: 'Set password', danger: false, extra: next.wrap });
          if (!ok) return;
          if (!validPassword(next.input.value)) { slot.show({ kind: 'invalid', message: passwordError() }); return; }
          await busy(setPw, async () => { await spAdminPassword(a.name, next.input.value); await ctx.navigate(a.name === me ? 'sp-connection' : 'sp-admins'); }, (e) => slot.show(e));
        });
        const remove = a.name === me ? null : button('Remove', { variant: 'danger', label: `Remove ${a.name}`, id: `admin-remove-${a.name}` });
        remove?.addEventListener('click', async () => {
          const ok = await confirmDialog({ title: `Remove SP admin ${a.name}?`, message: 'Its sessions end at once. The last SP admin cannot be removed.', confirmLabel: 'Remove', danger: true });
          if (ok) await busy(remove, async () => { await spAdminRemove(a.name); await ctx.navigate('sp-admins'); }, (e) => slot.show(e));
        });
        return h('span', { class: 'row-actions' }, setPw, remove ? moreActions({ id: `admin-more-${a.name}`, label: `for ${a.name}`, note: 'Removing ends its sessions at once.', actions: [remove] }) : null);
      }],
    ],
    rows: admins,
    empty: 'No SP admin.',
  }), panel('Add an SP admin', name.wrap, pw.wrap, h('div', { class: 'actions' }, add)));
}
