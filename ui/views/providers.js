// Service providers: the list (addresses, pinned certificate, cloud repositories with quota
// bars and lease), rescan, trust a changed certificate (both fingerprints shown), change the
// account or password (after the SP changed them), remove, and the Add service provider wizard (address → certificate → credentials → repositories);
// both offer the backups already at the provider that no job here uses (ui/found.js).

import { providersList, providerProbe, providerAdd, providerRescan, providerSetCredentials, providerTrust, providerRemove } from '../ipc.js';
import { h, replaceChildren, button, field, facts, panel, emptyState, paintBars } from '../dom.js';
import { wizard, certificateStep, errorBox, confirmDialog, busy, notice, moreActions } from '../components.js';
import * as fmt from '../format.js';
import { repoBars } from '../lists.js';
import { foundPanel } from '../found.js';

export async function renderProviders(container, ctx) {
  if (ctx.params.view === 'add') {
    renderAddWizard(container, ctx);
    return;
  }
  const providers = await providersList();
  if (!ctx.current()) return;
  const add = button('Add service provider', { id: 'provider-add', onClick: () => ctx.navigate('providers', { view: 'add' }) });
  replaceChildren(container, h('div', { class: 'toolbar' }, add),
    providers.length === 0
      ? emptyState('No service provider yet. Add the one that gave you an account.')
      : h('div', { class: 'stack' }, providers.map((p) => providerCard(p, ctx))));
}

function providerCard(p, ctx) {
  const messages = h('div', { class: 'card-messages' });
  const rescan = button('Rescan', { variant: 'secondary', id: `provider-rescan-${p.name}` });
  const remove = button('Remove this provider', { variant: 'danger', id: `provider-remove-${p.name}` });
  const credentials = credentialsForm(p, ctx, (err) => showProblem(err));
  const change = button('Change password', { variant: 'secondary', id: `provider-credentials-${p.name}` });
  change.setAttribute('aria-expanded', 'false');
  change.addEventListener('click', () => {
    credentials.hidden = !credentials.hidden;
    change.setAttribute('aria-expanded', String(!credentials.hidden));
    if (!credentials.hidden) credentials.querySelector('input[type="password"]').focus();
  });
  rescan.addEventListener('click', () => busy(rescan, async () => {
    replaceChildren(messages);
    await providerRescan(p.name);
    await ctx.navigate('providers');
  }, (err) => showProblem(err)));
  remove.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: `Remove ${p.name}?`,
      message: 'The console forgets this provider and its stored password. Restore points stay at the provider; jobs that store there stop working until you add it again.',
      confirmLabel: 'Remove provider',
    });
    if (!ok) return;
    try {
      await providerRemove(p.name);
      await ctx.navigate('providers');
    } catch (err) { showProblem(err); }
  });

  function showProblem(err) {
    const box = errorBox(err);
    if (err.kind === 'auth') {
      box.append(h('p', {}, 'If your service provider changed your password, choose Change password and give the new one.'));
    }
    if (err.kind === 'certificate_changed' && err.detail && err.detail.cert) {
      const fp = err.detail.cert.fingerprint;
      box.append(h('p', {}, 'If your service provider told you it renewed its certificate, compare the new fingerprint with the one it gave you, then trust it.'),
        button('Trust the new certificate', {
          id: `provider-trust-${p.name}`,
          onClick: async (event) => {
            const ok = await confirmDialog({
              title: 'Trust the new certificate?',
              message: `Only if your service provider confirmed the fingerprint ${fp}.`,
              confirmLabel: 'Trust it',
              danger: false,
            });
            if (!ok) return;
            await busy(event.target, async () => {
              await providerTrust(p.name, fp);
              await ctx.navigate('providers');
            }, (e) => replaceChildren(messages, errorBox(e)));
          },
        }));
    }
    replaceChildren(messages, box);
  }

  const card = h('article', { class: 'card provider', id: `provider-${p.name}`, 'aria-labelledby': `provider-${p.name}-name` },
    h('div', { class: 'card-head' }, h('h2', { id: `provider-${p.name}-name`, text: p.name }), h('div', { class: 'actions' }, rescan, change,
      moreActions({ id: `provider-more-${p.name}`, label: `for provider ${p.name}`, note: 'Removing forgets the provider and its stored password on this computer; the restore points stay at the provider.', actions: [remove] }))),
    facts([
      ['Gateways', p.addresses.join(', ')],
      ['Account', p.user],
      ['Pinned certificate', h('span', { class: 'fingerprint', text: p.fingerprint })],
      ['Last scanned', fmt.dateTime(p.scanned_ms)],
    ]),
    credentials,
    messages,
    h('h3', { text: 'Cloud repositories' }),
    repoBars(p.repos.map((r) => ({ ...r, provider: '', repo: r.name, name: r.name }))),
    foundSlot(p, ctx));
  paintBars(card);
  return card;
}

/**
 * Backups at the provider that no job here uses (a lost or replaced computer's): looked for
 * on request, since it opens every repository of the account and of its policy computers.
 */
function foundSlot(p, ctx) {
  const slot = h('div', { id: `provider-found-${p.name}` });
  const look = button('Look for backups of other computers', { variant: 'secondary', id: `provider-look-${p.name}` });
  look.addEventListener('click', () => busy(look, async () => {
    const found = await foundPanel(p.name, ctx);
    if (ctx.current()) replaceChildren(slot, found || h('p', { class: 'hint', id: `provider-nothing-found-${p.name}`, text: 'Every restore point at this provider belongs to a job of this computer.' }));
  }, (err) => replaceChildren(slot, errorBox(err))));
  slot.append(h('div', { class: 'actions' }, look));
  return slot;
}

/**
 * The account and a new password for a provider, checked with a login before anything is
 * stored (hidden until Change password is chosen).
 */
function credentialsForm(p, ctx, showProblem) {
  const account = field({ label: 'Account', id: `provider-user-${p.name}`, value: p.user, autocomplete: 'username' });
  const password = field({ label: 'New password', id: `provider-password-${p.name}`, kind: 'password', autocomplete: 'current-password', hint: 'The one your service provider gave you now.' });
  const save = button('Save', { id: `provider-credentials-save-${p.name}`, type: 'submit' });
  const form = h('form', { class: 'form', id: `provider-credentials-form-${p.name}`, novalidate: true, hidden: true }, account.wrap, password.wrap, save);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (password.input.value === '') { password.setError('Give the new password.'); password.input.focus(); return; }
    password.setError(null);
    busy(save, async () => {
      await providerSetCredentials(p.name, account.input.value.trim(), password.input.value);
      await ctx.navigate('providers');
    }, showProblem);
  });
  return form;
}

function renderAddWizard(container, ctx) {
  ctx.setTitle('Add service provider');
  const done = h('div');
  const w = wizard({
    id: 'add-provider',
    title: 'Add service provider',
    data: { host: '', probed: null, trust: null, name: '', user: '', password: '', provider: null },
    onCancel: () => ctx.navigate('providers'),
    onFinish: () => ctx.navigate('providers'),
    steps: [
      {
        title: 'Address',
        render(body, data) {
          const host = field({ label: 'Gateway address', id: 'provider-host', value: data.host, required: true, hint: 'As your service provider gave it: a host name or IP address, with :port when it is not 6180.', placeholder: 'backup.example.com' });
          body.append(host.wrap);
          return async () => {
            data.host = host.input.value.trim();
            if (!data.host) { host.setError('Enter the gateway address.'); return false; }
            data.probed = await providerProbe(data.host);
            if (!data.name) data.name = data.host.split(':')[0];
            return true;
          };
        },
      },
      {
        title: 'Certificate',
        render(body, data, wz) {
          return certificateStep(body, data, wz, {
            intro: `The gateway at ${data.probed.address} presents this certificate.`,
            untrusted: 'Tick “Trust this certificate” once you have compared its fingerprint with the one your service provider gave you.',
          });
        },
      },
      {
        title: 'Credentials',
        nextLabel: 'Sign in',
        render(body, data) {
          const name = field({ label: 'Name in this console', id: 'provider-name', value: data.name, required: true, hint: 'How jobs refer to this provider.' });
          const user = field({ label: 'Account', id: 'provider-user', value: data.user, required: true, autocomplete: 'username' });
          const password = field({ label: 'Password', id: 'provider-password', kind: 'password', required: true, autocomplete: 'current-password', hint: 'Kept in this computer’s credential store; where it has none, in a file only you can read.' });
          body.append(name.wrap, user.wrap, password.wrap);
          return async () => {
            data.name = name.input.value.trim();
            data.user = user.input.value.trim();
            let ok = true;
            for (const [f, msg] of [[name, 'Give the provider a name.'], [user, 'Enter your account.'], [password, 'Enter your password.']]) {
              f.setError(f.input.value.trim() ? null : msg);
              if (!f.input.value.trim()) ok = false;
            }
            if (!ok) return false;
            data.provider = await providerAdd({ name: data.name, host: data.probed.address, user: data.user, password: password.input.value, trust: data.trust });
            return true;
          };
        },
      },
      {
        title: 'Cloud repositories',
        final: true,
        render(body, data) {
          const p = data.provider;
          const found = h('div', { id: 'provider-found' }, h('p', { class: 'hint', role: 'status', text: 'Looking for backups already there…' }));
          body.append(notice(`Signed in. ${p.name} is added and its certificate pinned.`, { id: 'provider-added' }),
            panel('Your cloud repositories', repoBars(p.repos.map((r) => ({ ...r, provider: '', repo: r.name, name: r.name })))),
            found,
            h('div', { class: 'actions' }, button('Create a backup job', { variant: 'secondary', id: 'provider-new-job', onClick: () => ctx.navigate('jobs', { view: 'new', provider: p.name }) })));
          // A lost computer's backups: offered here, right after the provider is added.
          foundPanel(p.name, ctx).then((panelEl) => { if (ctx.current()) replaceChildren(found, panelEl); });
        },
      },
    ],
  });
  replaceChildren(container, w.root, done);
}
