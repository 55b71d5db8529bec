// SP mode's cloud repositories: the table (kind, where, capacity, in service) with edit, take
// out of service and remove; the "New cloud repository" wizard — a folder on the gateway's
// machine, or a bucket of an S3-compatible object store whose connection the gateway tests
// (list, write, read back, read a range, remove) before it can be added; the secret key is
// sent once and never shown again; whether the bucket keeps points immutable (S3 Object Lock)
// is shown in the test and in the table. Moving a tenant's quota to another repository, and the
// moves with their progress (read again every second while one runs).

import { spRepos, spRepoAdd, spRepoTest, spRepoEdit, spRepoRemove, spMoveStart, spMoves, spUsage } from '../ipc.js';
import { h, replaceChildren, button, field, selectField, table, radioGroup, panel, meter } from '../dom.js';
import { wizard, errorSlot, busy, notice, confirmDialog } from '../components.js';
import * as fmt from '../format.js';
import { validName, nameError } from '../rules.js';

export async function renderSpRepos(container, ctx) {
  const [repos, moves, usage] = await Promise.all([spRepos(), spMoves(), spUsage()]);
  if (!ctx.current()) return;
  const added = ctx.params?.added;
  const slot = errorSlot();
  const editor = h('div', { id: 'repo-editor' });
  const add = button('New cloud repository', { id: 'repo-new', onClick: () => replaceChildren(container, repoWizard(ctx)) });
  const actions = (r) => {
    const edit = button('Edit', { variant: 'secondary', id: `repo-edit-${r.name}`, label: `Edit ${r.name}` });
    edit.addEventListener('click', () => replaceChildren(editor, editPanel(r, ctx, slot)));
    const toggle = button(r.in_service ? 'Take out of service' : 'Put in service', {
      variant: 'secondary',
      id: `repo-${r.in_service ? 'retire' : 'resume'}-${r.name}`,
      label: `${r.in_service ? 'Take out of service' : 'Put in service'} ${r.name}`,
    });
    toggle.addEventListener('click', () => busy(toggle, async () => {
      await spRepoEdit(r.name, { in_service: !r.in_service });
      await ctx.navigate('sp-repos');
    }, (e) => slot.show(e)));
    const remove = button('Remove', { variant: 'secondary', id: `repo-remove-${r.name}`, label: `Remove ${r.name}` });
    remove.addEventListener('click', async () => {
      if (!(await confirmDialog({ title: `Remove ${r.name}?`, message: 'Cloudkeep forgets this repository. It is refused while any tenant has a quota on it: move those first.', confirmLabel: 'Remove' }))) return;
      busy(remove, async () => { await spRepoRemove(r.name); await ctx.navigate('sp-repos'); }, (e) => slot.show(e));
    });
    return h('div', { class: 'row-actions' }, edit, toggle, remove);
  };
  replaceChildren(container,
    added ? notice(`Cloud repository ${added} added.`, { id: 'repo-added' }) : null,
    slot.el,
    table({
      caption: 'Cloud repositories',
      id: 'sp-repos-table',
      columns: [
        ['Name', (r) => (r.title ? h('span', {}, r.name, h('br'), h('span', { class: 'hint', text: r.title })) : r.name)],
        ['Kind', (r) => (r.kind === 's3' ? h('span', {}, 'Object storage (S3)', h('br'), immutableCell(r)) : 'Folder')],
        ['Location', (r) => h('span', { class: 'mono', text: r.location })],
        ['Capacity', (r) => (fmt.isUnlimited(r.capacity) ? 'Unlimited' : fmt.bytes(r.capacity)), 'num'],
        ['New tenants', (r) => (r.in_service === false ? h('span', { class: 'badge badge-failed', text: 'Out of service' }) : h('span', { class: 'badge badge-success', text: 'Accepted' }))],
        ['Manage', actions],
      ],
      rows: repos,
      empty: 'No cloud repository yet.',
    }),
    h('div', { class: 'actions' }, add),
    editor,
    movePanel(repos, usage, ctx, slot),
    movesTable(moves));
  // While a move runs, its progress is read again every second.
  if (moves.some((m) => ['copying', 'switching', 'releasing'].includes(m.state))) {
    setTimeout(() => { if (ctx.current()) ctx.navigate('sp-repos'); }, 1000);
  }
}

/** What S3 Object Lock gives a repository, in words. */
function lockText(lock) {
  if (lock.state === 'on') {
    const mode = lock.mode === 'governance' ? 'governance mode' : 'compliance mode';
    const days = lock.default_days ? `, bucket default ${lock.default_days} days` : '';
    return `Immutable: object lock (${mode}${days}) — each tenant's restore points are locked for its insider-protection window, even against the bucket's own credentials`;
  }
  if (lock.state === 'off') return 'Not immutable: object lock is off for this bucket (most stores turn it on only when a bucket is made)';
  return 'Not immutable: this object store has no object lock';
}

/** Under an object store's kind: whether restore points on it are locked (WORM). */
function immutableCell(r) {
  if (!r.object_lock) return h('span', { class: 'hint', id: `repo-immutable-${r.name}`, text: 'Immutable: not known yet' });
  const on = r.object_lock.state === 'on';
  return h('span', { class: on ? 'badge badge-success' : 'hint', id: `repo-immutable-${r.name}`, title: lockText(r.object_lock), text: on ? 'Immutable' : 'Not immutable' });
}

/** Title and capacity of one repository. */
function editPanel(r, ctx, slot) {
  const title = field({ label: 'Title', id: 'repo-title', value: r.title || '', hint: 'What operators call it; the name stays.' });
  const limited = !fmt.isUnlimited(r.capacity);
  const capacity = field({ label: 'Capacity in GiB', id: 'repo-capacity', kind: 'number', min: 0, step: 'any', value: limited ? String(r.capacity / 1024 ** 3) : '', hint: 'Most quota it hands out to tenants in all. Empty: no limit.' });
  const save = button('Save', { id: 'repo-save', type: 'submit' });
  const form = h('form', { class: 'form', novalidate: true }, title.wrap, capacity.wrap, h('div', { class: 'actions' }, save));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = capacity.input.value.trim();
    const bad = text !== '' && !(Number(text) >= 0);
    capacity.setError(bad ? 'Give a capacity in GiB, or leave it empty for no limit.' : null);
    if (bad) return;
    const limit = text === '' ? fmt.UNLIMITED : fmt.gibToBytes(text);
    busy(save, async () => {
      await spRepoEdit(r.name, { title: title.input.value.trim(), capacity: limit });
      await ctx.navigate('sp-repos');
    }, (e) => slot.show(e));
  });
  return panel(`Edit ${r.name}`, form);
}

/** Moving a tenant's quota, with its data, to another repository. */
function movePanel(repos, usage, ctx, slot) {
  if (repos.length < 2 || usage.length === 0) return null;
  const quota = selectField({
    label: 'Tenant and its repository now',
    id: 'move-quota',
    options: usage.map((u, i) => [String(i), `${u.tenant} on ${u.repo}`]),
  });
  const to = selectField({ label: 'To repository', id: 'move-to', options: repos.filter((r) => r.in_service !== false).map((r) => [r.name, r.title ? `${r.name} (${r.title})` : r.name]) });
  const go = button('Move', { id: 'move-start', type: 'submit' });
  const form = h('form', { class: 'form', novalidate: true },
    h('p', { class: 'hint', text: 'The data is copied and verified while the tenant keeps backing up; then writes wait a few seconds while the quota switches, and the old copy is removed.' }),
    quota.wrap, to.wrap, h('div', { class: 'actions' }, go));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const u = usage[Number(quota.input.value)];
    busy(go, async () => {
      await spMoveStart({ tenant: u.tenant, from: u.repo, to: to.input.value });
      await ctx.navigate('sp-repos');
    }, (e) => slot.show(e));
  });
  return panel('Move a tenant to another repository', form);
}

/** The moves, newest first, with their progress. */
function movesTable(moves) {
  if (moves.length === 0) return null;
  const state = (m) => {
    const labels = { copying: 'Copying', switching: 'Switching', releasing: 'Releasing', done: 'Done', failed: 'Failed' };
    const kind = m.state === 'done' ? 'badge-success' : m.state === 'failed' ? 'badge-failed' : 'badge-running';
    return h('span', {}, h('span', { class: `badge ${kind}`, text: labels[m.state] || m.state }), m.message ? h('p', { class: 'hint', text: m.message }) : null);
  };
  return table({
    caption: 'Moves',
    id: 'sp-moves-table',
    columns: [
      ['Tenant', (m) => m.tenant],
      ['From', (m) => m.from],
      ['To', (m) => m.to],
      ['State', state],
      ['Progress', (m) => h('span', {}, meter({ share: m.bytes_total > 0 ? m.bytes_done / m.bytes_total : (m.state === 'done' ? 1 : 0), label: `Move of ${m.tenant}: ${fmt.bytes(m.bytes_done)} of ${fmt.bytes(m.bytes_total)}` }),
        h('span', { class: 'hint', text: `${fmt.count(m.packs_done)} of ${fmt.count(m.packs_total)} packs, ${fmt.bytes(m.bytes_done)} of ${fmt.bytes(m.bytes_total)}` }))],
      ['Started', (m) => fmt.dateTime(m.started_ms), 'when'],
    ],
    rows: moves,
  });
}

/** The object store and credentials the form holds. */
function s3Access(f) {
  return {
    target: {
      endpoint: f.endpoint.input.value.trim(),
      bucket: f.bucket.input.value.trim(),
      prefix: f.prefix.input.value.trim().replace(/^\/+|\/+$/g, ''),
      region: f.region.input.value.trim() || 'us-east-1',
    },
    access_key: f.accessKey.input.value.trim(),
    secret_key: f.secretKey.input.value,
  };
}

/** The wizard: storage, then the connection test (object storage) or a summary (folder). */
function repoWizard(ctx) {
  const fields = {};
  const w = wizard({
    id: 'repo-wizard',
    title: 'New cloud repository',
    finishLabel: 'Add cloud repository',
    data: { kind: 'folder', name: '', path: '', s3: null, tested: false },
    onCancel: () => ctx.navigate('sp-repos'),
    onFinish: async (data) => {
      await spRepoAdd(data.name, data.path, data.kind === 's3' ? data.s3 : null);
      await ctx.navigate('sp-repos', { added: data.name });
    },
    steps: [
      {
        title: 'Storage',
        render(body, data) {
          const name = field({ label: 'Name', id: 'repo-name', value: data.name, required: true, hint: 'What you and your tenants’ quotas call it, for example main or s3-eu.' });
          const kind = radioGroup({
            legend: 'Where it keeps data',
            name: 'repo-kind',
            value: data.kind,
            options: [
              ['folder', 'A folder on the gateway', 'A local or mounted disk of the gateway’s machine, made owner-only.'],
              ['s3', 'Object storage (S3)', 'A bucket of AWS S3, Ceph RGW, Garage, MinIO, Wasabi or another S3-compatible store; every gateway reaches it.'],
            ],
          });
          const path = field({ label: 'Folder on the gateway', id: 'repo-path', value: data.path, hint: 'An absolute path, for example /srv/cloudkeep/main.' });
          Object.assign(fields, {
            endpoint: field({ label: 'Object store URL', id: 'repo-endpoint', hint: 'For example https://s3.eu-west-1.amazonaws.com or http://10.0.0.5:3900.' }),
            bucket: field({ label: 'Bucket', id: 'repo-bucket' }),
            prefix: field({ label: 'Key prefix (optional)', id: 'repo-prefix', hint: 'Keeps Cloudkeep’s objects under a folder of the bucket.' }),
            region: field({ label: 'Region', id: 'repo-region', value: 'us-east-1', hint: 'The region the store signs for (Garage: garage).' }),
            accessKey: field({ label: 'Access key id', id: 'repo-access-key', autocomplete: 'off' }),
            secretKey: field({ label: 'Secret key', id: 'repo-secret-key', kind: 'password', autocomplete: 'off', hint: 'Sent once to the gateway, kept sealed; never shown again.' }),
          });
          if (data.s3) {
            fields.endpoint.input.value = data.s3.target.endpoint;
            fields.bucket.input.value = data.s3.target.bucket;
            fields.prefix.input.value = data.s3.target.prefix;
            fields.region.input.value = data.s3.target.region;
            fields.accessKey.input.value = data.s3.access_key;
            fields.secretKey.input.value = data.s3.secret_key;
          }
          const s3Box = h('div', { id: 'repo-s3-fields' }, ...['endpoint', 'bucket', 'prefix', 'region', 'accessKey', 'secretKey'].map((k) => fields[k].wrap));
          const sync = () => {
            const s3 = kind.value() === 's3';
            path.wrap.hidden = s3;
            s3Box.hidden = !s3;
          };
          kind.inputs.forEach((i) => i.addEventListener('change', sync));
          sync();
          body.append(name.wrap, kind.wrap, path.wrap, s3Box);
          return async () => {
            data.name = name.input.value.trim();
            data.kind = kind.value();
            name.setError(validName(data.name) ? null : nameError());
            if (!validName(data.name)) return false;
            if (data.kind === 'folder') {
              data.path = path.input.value.trim();
              path.setError(data.path ? null : 'Give the folder on the gateway.');
              return !!data.path;
            }
            data.s3 = s3Access(fields);
            let ok = true;
            for (const [f, v, msg] of [
              [fields.endpoint, /^https?:\/\/[^/]+\/?$/.test(data.s3.target.endpoint), 'Give the object store’s URL: http:// or https:// and a host, without a path.'],
              [fields.bucket, /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(data.s3.target.bucket), 'Give the bucket: 3 to 63 lowercase letters, digits, dots and hyphens.'],
              [fields.accessKey, !!data.s3.access_key, 'Give the access key id.'],
              [fields.secretKey, !!data.s3.secret_key, 'Give the secret key.'],
            ]) {
              f.setError(v ? null : msg);
              if (!v) ok = false;
            }
            data.tested = false;
            return ok;
          };
        },
      },
      {
        title: 'Test connection',
        render(body, data, wz) {
          if (data.kind === 'folder') {
            body.append(h('p', { class: 'lead', text: `The gateway creates ${data.path} if needed and refuses it when other users of its machine can read it.` }));
            return null;
          }
          const result = h('div', { id: 'repo-test-result', role: 'status', 'aria-live': 'polite' });
          const slot = errorSlot();
          const again = button('Test connection', { id: 'repo-test', variant: 'secondary' });
          const run = () => busy(again, async () => {
            slot.clear();
            replaceChildren(result, h('p', { class: 'hint', text: 'Testing…' }));
            const probe = await spRepoTest(data.s3);
            data.tested = probe.ok;
            wz.setNextEnabled(probe.ok);
            replaceChildren(result,
              h('ul', { class: 'checklist', id: 'repo-test-steps' }, probe.steps.map((s) => h('li', { class: s.error ? 'failed' : 'ok' },
                h('span', { class: `badge ${s.error ? 'badge-failed' : 'badge-success'}`, text: s.error ? 'Failed' : 'OK' }), ' ', s.what,
                s.error ? h('p', { class: 'hint', text: s.error }) : null))),
              h('p', { class: 'lead', id: 'repo-test-verdict', text: probe.ok ? 'The gateway can use this object store.' : 'The gateway cannot use this object store: fix what failed (Back) and test again.' }),
              probe.object_lock ? h('p', { class: 'hint', id: 'repo-test-lock', text: `${lockText(probe.object_lock)}.` }) : null);
          }, (e) => { slot.show(e); wz.setNextEnabled(false); });
          again.addEventListener('click', run);
          body.append(h('p', { class: 'lead', text: `The gateway lists ${data.s3.target.bucket}, writes a small object, reads it back whole and in part, and removes it.` }),
            h('div', { class: 'actions' }, again), result, slot.el);
          wz.setNextEnabled(false);
          run();
          return async () => data.tested;
        },
      },
    ],
  });
  return w.root;
}
