// Subtenants (tenant mode): the tenant's subtenants at one of its providers — the list with
// quota use and state, create one with a quota carved from the tenant's, set its quota,
// disable or enable it, delete it.

import { providersList, subtenantsList, subtenantAdd, subtenantSet, subtenantDelete, spGeneratePassword } from '../ipc.js';
import { h, replaceChildren, button, field, selectField, panel, emptyState, paintBars } from '../dom.js';
import { errorSlot, busy, confirmDialog, moreActions } from '../components.js';
import * as fmt from '../format.js';
import { validName, nameError, validPassword, passwordError } from '../rules.js';
import { subtenantTable } from '../lists.js';

export async function renderSubtenants(container, ctx) {
  const providers = await providersList();
  if (!ctx.current()) return;
  if (providers.length === 0) {
    replaceChildren(container, emptyState('Add a service provider first: subtenants live at a provider.',
      button('Add service provider', { onClick: () => ctx.navigate('providers', { view: 'add' }) })));
    return;
  }
  const provider = ctx.params.provider || providers[0].name;
  const p = providers.find((x) => x.name === provider) || providers[0];
  const pick = selectField({ label: 'Service provider', id: 'subtenants-provider', options: providers.map((x) => [x.name, x.name]), value: p.name });
  pick.input.addEventListener('change', () => ctx.navigate('subtenants', { provider: pick.input.value }));
  const list = h('div', { id: 'subtenants-list' });
  const slot = errorSlot();
  replaceChildren(container, h('div', { class: 'toolbar toolbar-fields' }, pick.wrap), slot.el, list, createPanel(p, ctx, slot));
  const subs = await subtenantsList(p.name);
  if (!ctx.current()) return;
  replaceChildren(list, subtenantTable(subs, (view) => actionsFor(view, p, ctx, slot)));
  paintBars(list);
}

function actionsFor(view, p, ctx, slot) {
  const login = view.tenant.login;
  const name = view.tenant.name;
  const enabled = view.tenant.settings.enabled;
  const reload = () => ctx.navigate('subtenants', { provider: p.name });
  const quota = button('Set quota', { variant: 'secondary', label: `Set quota of ${login}`, id: `sub-quota-${name}` });
  quota.addEventListener('click', async () => {
    const size = field({ label: 'Quota in GiB', id: 'dialog-quota', kind: 'number', min: 0, step: 'any', value: String((view.quotas[0]?.quota_bytes || 0) / 1024 ** 3) });
    const ok = await confirmDialog({ title: `Quota of ${login}`, message: 'Carved from your own quota; 0 is none.', confirmLabel: 'Set quota', danger: false, extra: size.wrap });
    if (!ok) return;
    await busy(quota, async () => { await subtenantSet(p.name, name, { quota_bytes: fmt.gibToBytes(size.input.value) }); await reload(); }, (e) => slot.show(e));
  });
  const toggle = button(enabled ? 'Disable' : 'Enable', { variant: 'secondary', id: `sub-toggle-${name}`, label: `${enabled ? 'Disable' : 'Enable'} ${login}` });
  toggle.addEventListener('click', () => busy(toggle, async () => { await subtenantSet(p.name, name, { enabled: !enabled }); await reload(); }, (e) => slot.show(e)));
  const del = button('Delete this subtenant', { variant: 'danger', id: `sub-delete-${name}`, label: `Delete this subtenant: ${login}` });
  del.addEventListener('click', async () => {
    const ok = await confirmDialog({ title: `Delete ${login}?`, message: 'The subtenant and all its restore points are deleted at the service provider. This cannot be undone.', confirmLabel: 'Delete subtenant' });
    if (!ok) return;
    await busy(del, async () => { await subtenantDelete(p.name, name); await reload(); }, (e) => slot.show(e));
  });
  return [quota, toggle, moreActions({ id: `sub-more-${name}`, label: `for ${login}`, note: 'Deleting removes the subtenant and its restore points at the service provider. While your provider’s insider protection keeps restore points it deleted, it refuses: disable the subtenant instead.', actions: [del] })];
}

function createPanel(p, ctx, slot) {
  const name = field({ label: 'Name', id: 'sub-name', required: true, hint: 'Its account becomes yourname/name.' });
  const password = field({ label: 'Password', id: 'sub-password', kind: 'text', required: true, autocomplete: 'off', hint: 'Give it to whoever uses the subtenant.' });
  const generate = button('Generate', { variant: 'secondary', id: 'sub-generate' });
  generate.addEventListener('click', () => busy(generate, async () => { password.input.value = await spGeneratePassword(); }, (e) => slot.show(e)));
  const repo = selectField({ label: 'Cloud repository', id: 'sub-repo', options: p.repos.map((r) => [r.name, `${r.name} (${fmt.bytes(r.free_bytes)} free)`]) });
  const quota = field({ label: 'Quota in GiB', id: 'sub-quota', kind: 'number', min: 0, step: 'any', value: '10', required: true });
  const create = button('Create subtenant', { id: 'sub-create', type: 'submit' });
  const done = h('div');
  const form = h('form', { class: 'form', novalidate: true }, name.wrap, h('div', { class: 'inline-field' }, password.wrap, generate), repo.wrap, quota.wrap, h('div', { class: 'actions' }, create), done);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    let ok = true;
    if (!validName(name.input.value.trim())) { name.setError(nameError()); ok = false; } else name.setError(null);
    if (!validPassword(password.input.value)) { password.setError(`${passwordError()} Or Generate one.`); ok = false; } else password.setError(null);
    if (!(Number(quota.input.value) > 0)) { quota.setError('Give a quota above 0 GiB.'); ok = false; } else quota.setError(null);
    if (!ok) { form.querySelector('[aria-invalid="true"]').focus(); return; }
    busy(create, async () => {
      const made = await subtenantAdd(p.name, { name: name.input.value.trim(), password: password.input.value, repo: repo.input.value, quota_bytes: fmt.gibToBytes(quota.input.value) });
      await ctx.navigate('subtenants', { provider: p.name });
      return made;
    }, (e) => slot.show(e));
  });
  return panel('New subtenant', form);
}
