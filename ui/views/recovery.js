// Recovery media (a section of its own, also reached from Restore points): a bootable ISO that
// brings a dead or blank computer back from the provider — for which provider, whether it starts
// on the serial console, whether it carries the provider's password (sealed under a one-time code
// shown once) — written into a file, or onto a USB stick whose current contents are shown and
// whose path is typed to confirm. Making it takes a minute (Linux: GRUB and BusyBox must be
// installed).

import { providersList, recoveryMediaCreate, saveFile, pickFile, imageTarget, openFolder } from '../ipc.js';
import { h, replaceChildren, button, field, panel, radioGroup, selectField, facts } from '../dom.js';
import { busy, errorSlot, notice, copyButton } from '../components.js';
import * as fmt from '../format.js';

export async function renderRecoveryMedia(container, ctx) {
  const providers = await providersList().catch(() => []);
  if (!ctx.current()) return;
  ctx.setTitle('Recovery media');
  const provider = selectField({
    label: 'Provider',
    id: 'media-provider',
    options: providers.length ? providers.map((p) => [p.name, `${p.name} (${p.addresses[0] || ''})`]) : [['', 'None: its address is asked for at boot']],
    hint: 'Its address and certificate go on the media, so the recovery trusts only it.',
  });
  const serial = field({ label: 'Start on the serial console', id: 'media-serial', kind: 'checkbox', hint: 'For servers with a serial console, and scripted recoveries. The screen stays a choice in the boot menu.' });
  const withPassword = field({ label: 'Carry the provider’s password, sealed', id: 'media-password', kind: 'checkbox', hint: 'Opened at boot with a one-time code shown once, now. Without it, the password is typed at boot.' });
  const where = radioGroup({
    legend: 'Write it to',
    name: 'media-where',
    value: 'file',
    options: [['file', 'An ISO file', 'Burn it, boot it in a virtual machine, or copy it to a USB stick later.'], ['usb', 'A USB stick', 'Everything on the stick is replaced.']],
  });
  const out = field({ label: 'ISO file', id: 'media-out', value: '', hint: 'A new file.' });
  const chooseOut = button('Choose…', { variant: 'secondary', id: 'media-choose' });
  chooseOut.addEventListener('click', async () => {
    const picked = await saveFile('Save the recovery media', 'cloudkeep-recovery.iso');
    if (picked) out.input.value = picked;
  });
  const device = field({ label: 'USB stick', id: 'media-device', value: '', hint: 'Its device, such as /dev/sdb.' });
  const chooseDevice = button('Choose…', { variant: 'secondary', id: 'media-device-choose' });
  chooseDevice.addEventListener('click', async () => {
    const picked = await pickFile('The USB stick (its device)', []);
    if (picked) { device.input.value = picked; showTarget(); }
  });
  const target = h('div', { id: 'media-target', 'aria-live': 'polite' });
  const confirm = field({ label: 'Type the device’s path to confirm', id: 'media-confirm', value: '', hint: 'Everything on it now is replaced.' });
  const fileRow = h('div', { class: 'inline-field sub' }, out.wrap, chooseOut);
  const usbRow = h('div', { class: 'sub' }, h('div', { class: 'inline-field' }, device.wrap, chooseDevice), target, confirm.wrap);
  async function showTarget() {
    const path = device.input.value.trim();
    if (!path) { replaceChildren(target); return; }
    try {
      const t = await imageTarget(path);
      replaceChildren(target, h('p', { class: 'hint', id: 'media-target-contents', text: `${t.path}: ${t.is_device ? 'a device' : 'not a device'}, ${fmt.bytes(t.size)}${t.contents ? `, holding a ${t.contents.table === 'none' ? 'file system' : 'partition table'} now` : ', holding nothing this tool recognises'}${t.mounts.length ? `; mounted at ${t.mounts.join(', ')}: unmount it first` : ''}.` }));
    } catch (err) {
      replaceChildren(target, h('p', { class: 'field-error', text: err.message || String(err) }));
    }
  }
  device.input.addEventListener('change', showTarget);
  const sync = () => { fileRow.hidden = where.value() !== 'file'; usbRow.hidden = where.value() !== 'usb'; };
  where.inputs.forEach((i) => i.addEventListener('change', sync));
  const errors = errorSlot();
  const result = h('div', { id: 'media-result-box' });
  const create = button('Create recovery media', { id: 'media-create' });
  create.addEventListener('click', () => busy(create, async () => {
    errors.clear();
    replaceChildren(result, notice('Making the recovery media: about a minute…', { id: 'media-working' }));
    const usb = where.value() === 'usb';
    const made = await recoveryMediaCreate({
      provider: provider.input.value || null,
      serial: serial.input.checked,
      withPassword: withPassword.input.checked,
      to: usb ? device.input.value : out.input.value,
      confirm: usb ? confirm.input.value : null,
    });
    const r = made.report;
    const folder = r.path.replace(/[\\/][^\\/]*$/, '') || '/';
    replaceChildren(result, panel('Recovery media ready',
      h('p', { id: 'media-result', role: 'status', text: made.device ? `Written onto ${made.device} (${fmt.bytes(r.bytes)}).` : `Written to ${r.path} (${fmt.bytes(r.bytes)}).` }),
      facts([
        ['Kernel', r.kernel],
        ['Provider', r.provider || 'asked for at boot'],
        r.code ? ['One-time code', h('span', { class: 'mono', id: 'media-code', text: r.code })] : null,
      ]),
      r.code ? h('p', { class: 'hint', text: 'Write the one-time code down and keep it apart from the media: with both, anyone can sign in as you at the provider. It is not shown again.' }) : null,
      h('div', { class: 'actions' },
        r.code ? copyButton(() => r.code, { id: 'media-code-copy', label: 'of the media', caption: 'Copy code' }) : null,
        made.device ? null : button('Open folder', { variant: 'secondary', id: 'media-open-folder', label: `Open folder ${folder}`, onClick: () => openFolder(folder).catch(ctx.showError) }))));
  }, (err) => { replaceChildren(result); errors.show(err); }));
  replaceChildren(container, panel('Create recovery media',
    h('p', { text: 'A bootable ISO that brings a dead or blank computer back from your provider: it starts a small Linux, connects, lists the backups of whole computers and restores them onto this computer’s disks. It holds no password unless you ask.' }),
    provider.wrap, serial.wrap, withPassword.wrap, where.wrap, fileRow, usbRow, errors.el,
    h('div', { class: 'actions' }, button('Cancel', { variant: 'secondary', id: 'media-cancel', onClick: () => ctx.navigate('points', {}) }), create)), result);
  sync();
}
