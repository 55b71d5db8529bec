// SP mode's cloud replication resources: the cloud hosts (what each reported — CPUs, memory,
// KVM, QEMU, storage pools — and whether it is up), "Add cloud host" (its connection details
// shown once, with Copy all and a file saved readable by this user only), the hardware plans
// with their tenants, and the "New hardware plan" wizard (a host, then CPUs, memory, networks
// and internet access, then storage on the host's pools, each checked against what the host
// has). Removing a host or a plan lives under More actions. A tenant is given a plan on its own
// page (Tenants).

import { spHosts, spHostAdd, spHostDetailsSave, spHostRemove, spPlans, spPlanAdd, spPlanRemove, saveFile } from '../ipc.js';
import { h, replaceChildren, button, field, selectField, table, panel, facts } from '../dom.js';
import { wizard, errorSlot, busy, notice, confirmDialog, copyButton, moreActions } from '../components.js';
import * as fmt from '../format.js';
import { validName, nameError } from '../rules.js';

const GIB = 1024 ** 3;

export async function renderSpPlans(container, ctx) {
  const [hosts, plans] = await Promise.all([spHosts(), spPlans()]);
  if (!ctx.current()) return;
  const slot = errorSlot();
  const { added, planAdded } = ctx.params || {};
  const addHost = button('Add cloud host', { id: 'host-new', variant: 'secondary', onClick: () => replaceChildren(container, hostWizard(ctx)) });
  const addPlan = button('New hardware plan', { id: 'plan-new', disabled: hosts.every((x) => !x.facts), onClick: () => replaceChildren(container, planWizard(hosts, ctx)) });
  replaceChildren(container,
    planAdded ? notice(`Hardware plan ${planAdded} made. Give it to tenants on their page (Tenants).`, { id: 'plan-added' }) : null,
    slot.el,
    h('p', { class: 'lead', text: 'Cloud hosts run your tenants’ replicas; hardware plans say what each tenant’s replicas may use on a host. A plan no replica could run on its host is refused when it is made.' }),
    added ? await hostDetailsPanel(added) : null,
    panel('Cloud hosts', hostsTable(hosts, ctx, slot), h('div', { class: 'actions' }, addHost)),
    panel('Hardware plans', plansTable(plans, ctx, slot), h('div', { class: 'actions' }, addPlan),
      hosts.every((x) => !x.facts) ? h('p', { class: 'hint', id: 'plan-needs-host', text: 'A hardware plan needs a cloud host that has reported: add one and start it with its connection details.' }) : null));
}

/** A host's state in words: up, silent for a while, or never reported. */
function hostState(x) {
  if (!x.seen_ms) return h('span', { class: 'badge badge-warning', text: 'Never reported' });
  const up = Date.now() - x.seen_ms < 120000;
  return h('span', {},
    h('span', { class: `badge ${up ? 'badge-success' : 'badge-failed'}`, text: up ? 'Up' : 'Silent' }),
    h('br'), h('span', { class: 'hint', text: `Last report ${fmt.dateTime(x.seen_ms)}` }));
}

/** What a host has, or a dash until it reported. */
function hostFacts(x, pick) {
  return x.facts ? pick(x.facts) : '—';
}

function hostsTable(hosts, ctx, slot) {
  const manage = (x) => {
    const remove = button('Remove', { variant: 'danger', id: `host-remove-${x.name}`, label: `Remove cloud host ${x.name}` });
    remove.addEventListener('click', async () => {
      if (!(await confirmDialog({ title: `Remove cloud host ${x.name}?`, message: 'It can no longer log in. Refused while a hardware plan is on it: remove those plans first.', confirmLabel: 'Remove' }))) return;
      busy(remove, async () => { await spHostRemove(x.name); await ctx.navigate('sp-plans'); }, (e) => slot.show(e));
    });
    return moreActions({ id: `host-more-${x.name}`, label: `for cloud host ${x.name}`, note: 'Removing a host ends its access; the replicas’ disks on it stay where they are.', actions: [remove] });
  };
  return table({
    caption: 'Cloud hosts',
    id: 'sp-hosts-table',
    columns: [
      ['Cloud host', (x) => h('span', {}, x.name, x.facts ? h('br') : null, x.facts ? h('span', { class: 'hint', text: `${x.facts.hostname} · ${x.facts.os}` }) : null)],
      ['State', hostState],
      ['CPUs', (x) => hostFacts(x, (f) => fmt.count(f.cpus)), 'num'],
      ['Memory', (x) => hostFacts(x, (f) => fmt.bytes(f.memory)), 'num'],
      ['Hypervisor', (x) => hostFacts(x, (f) => h('span', {},
        f.qemu ? `QEMU ${f.qemu}` : 'QEMU not installed', h('br'),
        h('span', { class: f.kvm ? 'hint' : 'badge badge-warning', text: f.kvm ? 'KVM' : 'No KVM: emulated, slow' })))],
      ['Storage pools', (x) => hostFacts(x, (f) => h('ul', { class: 'plain-list' }, f.pools.map((p) => h('li', { text: `${p.name}: ${fmt.bytes(p.free)} free of ${fmt.bytes(p.total)}` }))))],
      ['Hardware plans', (x) => (x.plans.length ? x.plans.join(', ') : 'None')],
      ['Manage', manage],
    ],
    rows: hosts,
    empty: 'No cloud host yet. Add one, then run Cloudkeep on it with its connection details.',
  });
}

function storageText(plan) {
  return plan.storage.map((s) => `${fmt.bytes(s.bytes)} on ${s.pool}`).join(', ');
}

function plansTable(plans, ctx, slot) {
  const manage = (v) => {
    const remove = button('Remove', { variant: 'danger', id: `plan-remove-${v.plan.name}`, label: `Remove hardware plan ${v.plan.name}` });
    remove.addEventListener('click', async () => {
      if (!(await confirmDialog({ title: `Remove hardware plan ${v.plan.name}?`, message: 'Refused while a tenant has it: take it from them on their page first.', confirmLabel: 'Remove' }))) return;
      busy(remove, async () => { await spPlanRemove(v.plan.name); await ctx.navigate('sp-plans'); }, (e) => slot.show(e));
    });
    return moreActions({ id: `plan-more-${v.plan.name}`, label: `for hardware plan ${v.plan.name}`, note: 'A plan can be removed once no tenant has it.', actions: [remove] });
  };
  return table({
    caption: 'Hardware plans',
    id: 'sp-plans-table',
    columns: [
      ['Hardware plan', (v) => v.plan.name],
      ['Cloud host', (v) => v.plan.host],
      ['CPUs', (v) => fmt.count(v.plan.cpu), 'num'],
      ['Memory', (v) => fmt.bytes(v.plan.memory), 'num'],
      ['Storage', (v) => storageText(v.plan)],
      ['Networks', (v) => h('span', {}, fmt.counted(v.plan.networks, 'network'), h('br'), h('span', { class: 'hint', text: v.plan.internet ? 'Internet access' : 'No internet access' }))],
      ['Tenants', (v) => (v.tenants.length ? v.tenants.join(', ') : 'None')],
      ['Manage', manage],
    ],
    rows: plans,
    empty: 'No hardware plan yet.',
  });
}

/** A host's connection details, shown this once after it was added. */
async function hostDetailsPanel(added) {
  const slot = errorSlot();
  const saved = h('div', { id: 'host-details-saved' });
  const save = button('Save to a file…', { variant: 'secondary', id: 'host-details-save' });
  save.addEventListener('click', () => busy(save, async () => {
    const path = await saveFile('Save the cloud host’s connection details', `cloudkeep-host-${added.host.name}.txt`);
    if (!path) return;
    await spHostDetailsSave(added.details, path);
    replaceChildren(saved, notice(`Saved to ${path}, readable by you only. Copy it to the host privately: it holds the host’s password.`));
  }, (e) => slot.show(e)));
  const text = h('pre', { class: 'visually-hidden', id: 'host-details-text', 'aria-hidden': 'true', text: added.text });
  const d = added.details;
  return panel(`Connection details for cloud host ${added.host.name}`,
    notice(`Cloud host ${added.host.name} added.`, { id: 'host-added' }),
    facts([
      [d.addresses.length > 1 ? 'Gateway addresses' : 'Gateway address', d.addresses.join(', '), 'host-details-address'],
      ['Certificate fingerprint (SHA-256)', h('span', { class: 'fingerprint mono', text: d.fingerprint }), 'host-details-fingerprint'],
      ['Cloud host', d.user, 'host-details-user'],
      ['Password', h('span', { class: 'mono', text: d.password }), 'host-details-password'],
    ]),
    h('p', { class: 'warning', id: 'host-details-once', text: 'The password is shown this once: copy or save it now.' }),
    h('p', { class: 'hint', text: 'On the host, save the details to a file and run:' }),
    h('pre', { class: 'mono', id: 'host-details-command', text: 'cloudkeep host run --connect FILE --pool main=/srv/cloudkeep/replicas' }),
    text,
    h('div', { class: 'actions' }, copyButton(() => added.text, { id: 'host-details-copy', caption: 'Copy all', label: 'connection details', select: text }), save),
    slot.el, saved);
}

/** Add cloud host: its name; the connection details are shown on the list after. */
function hostWizard(ctx) {
  const w = wizard({
    id: 'host-wizard',
    title: 'Add cloud host',
    finishLabel: 'Add cloud host',
    data: { name: '' },
    onCancel: () => ctx.navigate('sp-plans'),
    onFinish: async (data) => {
      const added = await spHostAdd(data.name);
      await ctx.navigate('sp-plans', { added });
    },
    steps: [
      {
        title: 'Cloud host',
        render(body, data) {
          const name = field({ label: 'Name', id: 'host-name', value: data.name, required: true, hint: 'What you and your hardware plans call it, for example kvm1.' });
          body.append(h('p', { class: 'lead', text: 'A Linux machine with QEMU (and KVM, where its hardware has it) that runs your tenants’ replicas. Next you get its connection details: run Cloudkeep on the host with them, and it reports what it has.' }), name.wrap);
          return async () => {
            data.name = name.input.value.trim();
            const ok = validName(data.name);
            name.setError(ok ? null : nameError());
            return ok;
          };
        },
      },
    ],
  });
  return w.root;
}

/** A positive whole number from a field, or null. */
function wholeNumber(f) {
  const n = Number(f.input.value);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** New hardware plan: host and compute, storage on the host's pools, summary. */
function planWizard(hosts, ctx) {
  const reported = hosts.filter((x) => x.facts);
  const w = wizard({
    id: 'plan-wizard',
    title: 'New hardware plan',
    finishLabel: 'Make hardware plan',
    data: { name: '', host: reported[0]?.name, cpu: 2, memoryGib: 4, networks: 1, internet: false, storage: {} },
    onCancel: () => ctx.navigate('sp-plans'),
    onFinish: async (data) => {
      await spPlanAdd(planOf(data));
      await ctx.navigate('sp-plans', { planAdded: data.name });
    },
    steps: [
      {
        title: 'Compute',
        render(body, data) {
          const name = field({ label: 'Name', id: 'plan-name', value: data.name, required: true, hint: 'What your tenants see, for example small or silver.' });
          const host = selectField({ label: 'Cloud host', id: 'plan-host', value: data.host, options: reported.map((x) => [x.name, `${x.name} (${fmt.counted(x.facts.cpus, 'CPU')}, ${fmt.bytes(x.facts.memory)})`]) });
          const cpu = field({ label: 'CPUs', id: 'plan-cpu', kind: 'number', min: 1, step: 1, value: String(data.cpu), hint: 'Virtual CPUs of all the tenant’s running replicas together.' });
          const memory = field({ label: 'Memory in GiB', id: 'plan-memory', kind: 'number', min: 0.0625, step: 'any', value: String(data.memoryGib), hint: 'Of all the tenant’s running replicas together.' });
          const networks = field({ label: 'Networks', id: 'plan-networks', kind: 'number', min: 1, max: 16, step: 1, value: String(data.networks), hint: 'Isolated networks for the tenant’s replicas.' });
          const internet = field({ label: 'Replicas may reach the internet', id: 'plan-internet', kind: 'checkbox', value: data.internet });
          body.append(name.wrap, host.wrap, h('div', { class: 'grid-3' }, cpu.wrap, memory.wrap, networks.wrap), internet.wrap);
          return async () => {
            data.name = name.input.value.trim();
            data.host = host.input.value;
            data.internet = internet.input.checked;
            const facts = reported.find((x) => x.name === data.host).facts;
            let ok = true;
            name.setError(validName(data.name) ? null : nameError());
            if (!validName(data.name)) ok = false;
            data.cpu = wholeNumber(cpu);
            const cpuError = !data.cpu ? 'Give a whole number of CPUs.' : data.cpu > facts.cpus ? `${data.host} has ${fmt.counted(facts.cpus, 'CPU')}; a plan of more could never run there.` : null;
            cpu.setError(cpuError);
            data.memoryGib = Number(memory.input.value);
            const bytes = Math.round(data.memoryGib * GIB);
            const memoryError = !(data.memoryGib >= 0.0625) ? 'Give at least 0.0625 GiB (64 MiB).' : bytes > facts.memory ? `${data.host} has ${fmt.bytes(facts.memory)} of memory.` : null;
            memory.setError(memoryError);
            data.networks = wholeNumber(networks);
            const networksError = !data.networks || data.networks > 16 ? 'Give 1 to 16 networks.' : null;
            networks.setError(networksError);
            return ok && !cpuError && !memoryError && !networksError;
          };
        },
      },
      {
        title: 'Storage',
        render(body, data) {
          const facts = reported.find((x) => x.name === data.host).facts;
          const sizes = facts.pools.map((p) => ({
            pool: p,
            f: field({ label: `Storage on ${p.name} in GiB`, id: `plan-storage-${p.name}`, kind: 'number', min: 0, step: 'any', value: String(data.storage[p.name] ?? ''), hint: `${fmt.bytes(p.free)} free of ${fmt.bytes(p.total)} at ${p.path}. Empty: none on this pool.` }),
          }));
          const slot = errorSlot();
          body.append(h('p', { class: 'lead', text: `Room for the replicas’ disks and their replica points on ${data.host}.` }), ...sizes.map((s) => s.f.wrap), slot.el);
          return async () => {
            let ok = true;
            data.storage = {};
            for (const { pool, f } of sizes) {
              const text = f.input.value.trim();
              if (text === '') { f.setError(null); continue; }
              const gib = Number(text);
              const err = !(gib > 0) ? 'Give a size in GiB, or leave it empty.' : gib * GIB > pool.total ? `${pool.name} holds ${fmt.bytes(pool.total)} in all.` : null;
              f.setError(err);
              if (err) ok = false; else data.storage[pool.name] = gib;
            }
            if (ok && Object.keys(data.storage).length === 0) {
              slot.show({ message: 'Give the plan storage on at least one pool.' });
              return false;
            }
            return ok;
          };
        },
      },
      {
        title: 'Summary',
        render(body, data) {
          const plan = planOf(data);
          body.append(facts([
            ['Hardware plan', plan.name, 'plan-summary-name'],
            ['Cloud host', plan.host],
            ['CPUs', fmt.count(plan.cpu)],
            ['Memory', fmt.bytes(plan.memory)],
            ['Storage', storageText(plan), 'plan-summary-storage'],
            ['Networks', fmt.counted(plan.networks, 'network')],
            ['Internet access', plan.internet ? 'Yes' : 'No'],
          ]), h('p', { class: 'hint', text: 'CPUs and memory are checked whenever a tenant’s replica starts: it starts only when what runs and it fit the plan.' }));
          return null;
        },
      },
    ],
  });
  return w.root;
}

/** The plan the wizard's data describes, as the gateway takes it. */
function planOf(data) {
  return {
    name: data.name,
    host: data.host,
    cpu: data.cpu,
    memory: Math.round(data.memoryGib * GIB),
    storage: Object.entries(data.storage).map(([pool, gib]) => ({ pool, bytes: Math.round(gib * GIB) })),
    networks: data.networks,
    internet: data.internet,
  };
}
