// Notifications, in both modes: where word of a failed run, a failed restore test or a run
// that looked like ransomware goes — an email through an SMTP server (STARTTLS or TLS, never
// in the clear) and a webhook. Tenant mode sets this computer's; SP mode the gateway's, for
// every tenant. The SMTP password is sent, never shown back.

import { notifyGet, notifySet, notifyTest, spNotifyGet, spNotifySet, spNotifyTest } from '../ipc.js';
import { h, replaceChildren, button, field, selectField, panel } from '../dom.js';
import { errorSlot, busy, notice } from '../components.js';

export function renderNotifications(container, ctx) {
  return renderChannels(container, ctx, {
    get: notifyGet, set: notifySet, test: notifyTest,
    intro: 'This computer tells you when a backup fails, when a restore test finds data that does not restore, and when a backup looks like ransomware at work — also when the provider cannot be reached. Your service provider sees the results (never the content) in its console.',
  });
}

export function renderSpNotifications(container, ctx) {
  return renderChannels(container, ctx, {
    get: spNotifyGet, set: spNotifySet, test: spNotifyTest,
    intro: 'The gateway tells you when any tenant’s backup fails, its restore test fails, or a backup looks like ransomware, as the tenants’ computers report their runs (results only, never content).',
  });
}

async function renderChannels(container, ctx, api) {
  const current = await api.get();
  if (!ctx.current()) return;
  const email = current.email || {};
  const webhook = current.webhook || {};
  const useEmail = field({ label: 'Send email', id: 'notify-use-email', kind: 'checkbox', value: !!current.email });
  const server = field({ label: 'SMTP server', id: 'notify-smtp-server', value: email.server || '', placeholder: 'smtp.example.com' });
  const security = selectField({ label: 'Security', id: 'notify-smtp-security', value: email.security || 'starttls', options: [['starttls', 'STARTTLS (port 587)'], ['tls', 'TLS (port 465)']] });
  const port = field({ label: 'Port', id: 'notify-smtp-port', kind: 'number', min: 1, max: 65535, value: String(email.port || 587) });
  const user = field({ label: 'Login (if the server wants one)', id: 'notify-smtp-user', value: email.user || '', autocomplete: 'off' });
  const password = field({ label: 'Password', id: 'notify-smtp-password', kind: 'password', value: '', autocomplete: 'new-password', placeholder: current.email ? 'unchanged' : '', hint: 'Kept in this computer’s keyring (SP mode: sealed at the gateway); never shown again.' });
  const from = field({ label: 'From', id: 'notify-from', value: email.from || '', placeholder: 'cloudkeep@example.com' });
  const to = field({ label: 'To (separate addresses with commas)', id: 'notify-to', value: (email.to || []).join(', '), placeholder: 'ops@example.com' });
  const smtpCa = field({ label: 'Private certificate authority of the SMTP server (PEM, optional)', id: 'notify-smtp-ca', kind: 'textarea', value: email.ca_pem || '' });
  security.input.addEventListener('change', () => {
    port.input.value = security.input.value === 'tls' ? '465' : '587';
  });
  const useHook = field({ label: 'Call a webhook', id: 'notify-use-webhook', kind: 'checkbox', value: !!current.webhook });
  const url = field({ label: 'Webhook URL', id: 'notify-webhook', value: webhook.url || '', placeholder: 'https://hooks.example.com/cloudkeep', hint: 'An HTTPS POST of the event as JSON; plain http:// only to this computer.' });
  const hookCa = field({ label: 'Private certificate authority of the webhook (PEM, optional)', id: 'notify-webhook-ca', kind: 'textarea', value: webhook.ca_pem || '' });
  const slot = errorSlot();
  const result = h('div', { id: 'notify-result', 'aria-live': 'polite' });

  function channels() {
    [server, port, from, to, url].forEach((f) => f.setError(''));
    const out = { email: null, webhook: null };
    let ok = true;
    if (useEmail.input.checked) {
      const list = to.input.value.split(',').map((a) => a.trim()).filter(Boolean);
      if (!server.input.value.trim()) { server.setError('Give the SMTP server’s host name.'); ok = false; }
      const n = Number(port.input.value);
      if (!Number.isInteger(n) || n < 1 || n > 65535) { port.setError('Give a port from 1 to 65535.'); ok = false; }
      if (!from.input.value.includes('@')) { from.setError('Give the sender’s address, such as cloudkeep@example.com.'); ok = false; }
      if (list.length === 0) { to.setError('Give at least one address.'); ok = false; }
      out.email = {
        server: server.input.value.trim(), port: n, security: security.input.value,
        user: user.input.value.trim() || null,
        password: password.input.value ? password.input.value : null,
        from: from.input.value.trim(), to: list, ca_pem: smtpCa.input.value.trim() || null,
      };
    }
    if (useHook.input.checked) {
      if (!url.input.value.trim()) { url.setError('Give the webhook’s URL.'); ok = false; }
      out.webhook = { url: url.input.value.trim(), ca_pem: hookCa.input.value.trim() || null };
    }
    return ok ? out : null;
  }

  const save = button('Save', { id: 'notify-save' });
  save.addEventListener('click', () => busy(save, async () => {
    slot.clear();
    const c = channels();
    if (!c) return;
    await api.set(c);
    password.input.value = '';
    replaceChildren(result, notice(c.email || c.webhook ? 'Saved: notifications go where you set.' : 'Saved: no notifications are sent.', { id: 'notify-saved' }));
  }, (err) => slot.show(err)));
  const test = button('Send a test', { variant: 'secondary', id: 'notify-test' });
  test.addEventListener('click', () => busy(test, async () => {
    slot.clear();
    const tried = await api.test();
    replaceChildren(result, h('ul', { class: 'plain', id: 'notify-tried' },
      tried.map((t) => h('li', { class: t.error ? 'proof-failed' : '', text: t.error ? `${t.channel}: not sent — ${t.error}` : `${t.channel}: sent` }))));
  }, (err) => slot.show(err)));

  replaceChildren(container,
    h('p', { class: 'hint', text: api.intro }),
    slot.el,
    panel('Email', useEmail.wrap, server.wrap, h('div', { class: 'grid-2' }, security.wrap, port.wrap), h('div', { class: 'grid-2' }, user.wrap, password.wrap), from.wrap, to.wrap, smtpCa.wrap),
    panel('Webhook', useHook.wrap, url.wrap, hookCa.wrap),
    h('div', { class: 'actions' }, save, test),
    result);
}
