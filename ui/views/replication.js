// Tenant mode's Replication section: the hardware plans each provider gave (with what the
// replicas use of them), the replicas this computer sends (last cycle, schedule, Run cycle), a
// replica's page (its replica points, whether it runs, Test failover with a public port, Undo,
// Fail back, its console, its schedule, the key the provider holds), the New replica wizard
// (provider and plan, the machine's disks, CPUs and memory, replica points kept, schedule, who
// holds the key), and failover plans (the order replicas start in, each step's wait; run as a
// test or for real, undone).

import { replicationOverview, replicaCreate, replicaAct, failoverPlanSave, failoverPlanAct, pickFile } from '../ipc.js';
import { h, replaceChildren, button, field, selectField, radioGroup, table, panel, facts } from '../dom.js';
import { wizard, errorSlot, busy, notice, confirmDialog, moreActions } from '../components.js';
import * as fmt from '../format.js';
import { validName, nameError } from '../rules.js';

const GIB = 1024 ** 3;

/** When a replica's cycles run, in words. */
function scheduleText(every) {
  if (!every) return 'When asked';
  return every % 60 === 0 ? `Every ${fmt.counted(every / 60, 'hour')}` : `Every ${fmt.counted(every, 'minute')}`;
}

export async function renderReplication(container, ctx) {
  if (ctx.params?.replica) return renderReplica(container, ctx, ctx.params.provider, ctx.params.replica);
  const overview = await replicationOverview();
  if (!ctx.current()) return;
  if (ctx.params?.newPlan) return replaceChildren(container, failoverPlanWizard(overview, ctx));
  const slot = errorSlot();
  const lastCycle = (r) => {
    if (!r.last_ms) return 'Never';
    const kind = r.last_result === 'success' ? 'badge-success' : 'badge-failed';
    return h('span', {}, h('span', { class: `badge ${kind}`, text: r.last_result === 'success' ? 'Success' : 'Failed' }), ' ', fmt.dateTime(r.last_ms),
      h('br'), h('span', { class: 'hint', text: r.last_message }));
  };
  const actions = (r) => {
    const open = button('Open', { variant: 'secondary', id: `replica-open-${r.spec.name}`, label: `Open replica ${r.spec.name}`, onClick: () => ctx.navigate('replication', { provider: r.provider, replica: r.spec.name }) });
    const run = button('Run cycle', { variant: 'secondary', id: `replica-run-${r.spec.name}`, label: `Run cycle of replica ${r.spec.name}` });
    run.addEventListener('click', () => busy(run, async () => {
      await replicaAct(r.provider, r.spec.name, { action: 'run' });
      await ctx.navigate('replication');
    }, (e) => slot.show(e)));
    return h('div', { class: 'row-actions' }, open, run);
  };
  const add = button('New replica', { id: 'replica-new', disabled: overview.plans.length === 0, onClick: () => replaceChildren(container, replicaWizard(overview, ctx)) });
  replaceChildren(container,
    ctx.params?.created ? notice(`Replica ${ctx.params.created} made. Run its first cycle: its disks are sent to your provider.`, { id: 'replica-created' }) : null,
    slot.el,
    h('p', { class: 'lead', text: 'A replica is a copy of one of your machines at your service provider, kept up to date in cycles (only the blocks that changed travel), that can be started there when your site is lost.' }),
    ...overview.unreachable.map(([p, why]) => h('p', { class: 'warning', text: `${p} could not be asked for its hardware plans: ${why}` })),
    panel('Hardware plans', table({
      caption: 'Your hardware plans',
      id: 'replication-plans',
      columns: [
        ['Hardware plan', (p) => p.plan.plan.name],
        ['Service provider', (p) => p.provider],
        ['CPUs', (p) => `${fmt.count(p.plan.used.cpu)} of ${fmt.count(p.plan.plan.cpu)} in use`],
        ['Memory', (p) => `${fmt.bytes(p.plan.used.memory)} of ${fmt.bytes(p.plan.plan.memory)} in use`],
        ['Storage', (p) => p.plan.plan.storage.map((s) => `${fmt.bytes((p.plan.used.storage.find((u) => u.pool === s.pool) || { bytes: 0 }).bytes)} of ${fmt.bytes(s.bytes)} in use`).join(', ')],
      ],
      rows: overview.plans,
      empty: 'Your service providers have given you no hardware plan yet: ask them for one to replicate your machines.',
    })),
    panel('Replicas', table({
      caption: 'Replicas',
      id: 'replicas-table',
      columns: [
        ['Replica', (r) => r.spec.name],
        ['Service provider', (r) => r.provider],
        ['Hardware plan', (r) => r.spec.plan],
        ['Disks', (r) => fmt.bytes(r.spec.disks.reduce((n, d) => n + d.size, 0))],
        ['Cycles', (r) => scheduleText(r.every_minutes)],
        ['Last cycle', lastCycle],
        ['Manage', actions],
      ],
      rows: overview.replicas,
      empty: 'No replica yet.',
    }), h('div', { class: 'actions' }, add)),
    failoverPlansPanel(overview, ctx, slot));
}

/** The failover plans: their order, last run, Run test / Fail over / Undo / Remove. */
function failoverPlansPanel(overview, ctx, slot) {
  const done = (text) => ctx.navigate('replication', { planDone: text });
  const actions = (p) => {
    const act = (label, id, action, confirm, after) => {
      const b = button(label, { variant: id === 'run-test' ? 'primary' : 'secondary', id: `failover-plan-${id}-${p.name}`, label: `${label}: failover plan ${p.name}` });
      b.addEventListener('click', async () => {
        if (confirm && !(await confirmDialog(confirm))) return;
        busy(b, async () => after(await failoverPlanAct(p.name, action)), (e) => slot.show(e));
      });
      return b;
    };
    const ran = (test) => (run) => done(`${test ? 'Test run' : 'Failover'} of ${p.name}: ${run.steps.map(([r, secs]) => `${r} answered after ${secs.toFixed(1)} s`).join(', ')}.`);
    return h('div', { class: 'row-actions' },
      act('Run test', 'run-test', { action: 'run', test: true }, null, ran(true)),
      act('Fail over', 'run', { action: 'run', test: false }, { title: `Fail over with plan ${p.name}?`, message: 'Its replicas start at your provider for real, in order; their replication waits until you fail them back or undo.', confirmLabel: 'Fail over' }, ran(false)),
      act('Undo', 'undo', { action: 'undo' }, { title: `Stop the replicas of ${p.name}?`, message: 'Each of its replicas that runs stops, the last step’s first; what they wrote is thrown away.', confirmLabel: 'Stop them', danger: false }, (stopped) => done(stopped.length ? `Stopped: ${stopped.join(', ')}.` : 'None of its replicas ran.')),
      act('Remove', 'delete', { action: 'delete' }, { title: `Remove failover plan ${p.name}?`, message: 'Only the plan goes; its replicas are not touched.', confirmLabel: 'Remove plan' }, () => done(`Failover plan ${p.name} removed.`)));
  };
  const add = button('New failover plan', { id: 'failover-plan-new', disabled: overview.replicas.length === 0, onClick: () => ctx.navigate('replication', { newPlan: true }) });
  return panel('Failover plans',
    ctx.params?.planDone ? notice(ctx.params.planDone, { id: 'failover-plan-result' }) : null,
    h('p', { class: 'hint', text: 'The order your replicas start in when your site is lost, each waiting until the one before answers.' }),
    table({
      caption: 'Failover plans',
      id: 'failover-plans',
      columns: [
        ['Plan', (p) => p.name],
        ['Order', (p) => p.steps.map((s) => `${s.replica} (${waitText(s.wait)})`).join(' → ')],
        ['Last run', (p) => p.last_ms ? `${fmt.dateTime(p.last_ms)}: ${p.last_message}` : 'Never'],
        ['Manage', actions],
      ],
      rows: overview.failover_plans,
      empty: 'No failover plan yet.',
    }), h('div', { class: 'actions' }, add));
}

/** What a step waits for, in words. */
function waitText(wait) {
  if (wait.kind === 'port') return `waits for port ${wait.port}`;
  if (wait.kind === 'marker') return `waits for “${wait.text}”`;
  return 'no wait';
}

/** New failover plan: its name and time per step, then its steps in order. */
function failoverPlanWizard(overview, ctx) {
  const replicas = overview.replicas;
  const w = wizard({
    id: 'failover-plan-wizard',
    title: 'New failover plan',
    finishLabel: 'Make plan',
    data: { name: '', timeoutMin: 10, steps: [] },
    onCancel: () => ctx.navigate('replication'),
    onFinish: async (data) => {
      await failoverPlanSave({ name: data.name, timeout_secs: Math.round(data.timeoutMin * 60), steps: data.steps, last_ms: null, last_message: '' });
      await ctx.navigate('replication', { planDone: `Failover plan ${data.name} made. Try it with Run test: replication goes on meanwhile.` });
    },
    steps: [
      {
        title: 'Plan',
        render(body, data) {
          const name = field({ label: 'Name', id: 'failover-plan-name', value: data.name, required: true, hint: 'The site’s, usually: office, shop.' });
          const timeout = field({ label: 'Minutes each step may take to answer', id: 'failover-plan-timeout', kind: 'number', min: 1, max: 1440, step: 1, value: String(data.timeoutMin) });
          body.append(name.wrap, timeout.wrap);
          return async () => {
            data.name = name.input.value.trim();
            data.timeoutMin = Number(timeout.input.value);
            const timeBad = !(Number.isInteger(data.timeoutMin) && data.timeoutMin >= 1 && data.timeoutMin <= 1440);
            name.setError(validName(data.name) ? null : nameError());
            timeout.setError(timeBad ? 'Give 1 to 1440 minutes.' : null);
            return validName(data.name) && !timeBad;
          };
        },
      },
      {
        title: 'Steps',
        render(body, data) {
          const rows = replicas.map((r, i) => {
            const order = field({ label: `Order of ${r.spec.name}`, id: `failover-step-order-${i}`, kind: 'number', min: 0, max: replicas.length, step: 1, value: String(i + 1), hint: '1 starts first; 0 leaves it out.' });
            const wait = selectField({ label: `${r.spec.name} waits for`, id: `failover-step-wait-${i}`, value: 'nothing', options: [['nothing', 'Nothing'], ['port', 'A port to answer'], ['marker', 'Text on its console']] });
            const value = field({ label: 'Port or text', id: `failover-step-value-${i}` });
            return { r, order, wait, value, wrap: h('div', { class: 'grid-3' }, order.wrap, wait.wrap, value.wrap) };
          });
          body.append(h('p', { class: 'hint', text: 'Number the replicas in the order they start. Each waits until the one before answers: a TCP port of it (its database’s, its web server’s), or text its machine prints on its console.' }), ...rows.map((x) => x.wrap));
          return async () => {
            let ok = true;
            const chosen = [];
            for (const x of rows) {
              const n = Number(x.order.input.value);
              const orderBad = !(Number.isInteger(n) && n >= 0 && n <= replicas.length);
              x.order.setError(orderBad ? `Give 0 to ${replicas.length}.` : null);
              const kind = x.wait.input.value;
              const v = x.value.input.value.trim();
              let wait = { kind: 'nothing' };
              let valueError = null;
              if (kind === 'port') {
                const port = Number(v);
                if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) valueError = 'Give a port from 1 to 65535.';
                wait = { kind: 'port', port };
              } else if (kind === 'marker') {
                if (!v || v.length > 200) valueError = 'Give the text (up to 200 characters).';
                wait = { kind: 'marker', text: v };
              }
              x.value.setError(n > 0 ? valueError : null);
              if (orderBad || (n > 0 && valueError)) ok = false;
              if (n > 0) chosen.push([n, { provider: x.r.provider, replica: x.r.spec.name, wait, ports: [] }]);
            }
            if (ok && chosen.length === 0) {
              w.showError('Give at least one replica an order.');
              return false;
            }
            chosen.sort((a, b) => a[0] - b[0]);
            data.steps = chosen.map(([, step]) => step);
            return ok;
          };
        },
      },
      {
        title: 'Summary',
        render(body, data) {
          body.append(facts([
            ['Failover plan', data.name, 'failover-plan-summary-name'],
            ['Order', data.steps.map((s, i) => `${i + 1}. ${s.replica} (${waitText(s.wait)})`).join(', '), 'failover-plan-summary-order'],
            ['Time per step', fmt.counted(data.timeoutMin, 'minute')],
          ]));
          return null;
        },
      },
    ],
  });
  return w.root;
}

/** How a running replica runs, in words. */
function stateText(s) {
  if (!s) return 'Not running';
  const how = { test: 'Test failover: isolated, replication goes on', failover: 'Failed over: replication waits', permanent: 'Failed over permanently', failback: 'Being failed back: its machine at the provider stopped; fail back again to finish' }[s.mode] || s.mode;
  const where = s.running.spec.network != null ? `, on your network ${s.running.spec.network}` : '';
  return `${how} — from replica point ${s.running.point}${where}, since ${fmt.dateTime(s.running.since_ms)}`;
}

async function renderReplica(container, ctx, provider, name) {
  ctx.setTitle(`Replica ${name}`);
  const view = await replicaAct(provider, name, { action: 'status' });
  if (!ctx.current()) return;
  const slot = errorSlot();
  const reload = () => ctx.navigate('replication', { provider, replica: name });
  const act = (btn, action, after = reload) => busy(btn, async () => { await replicaAct(provider, name, action); await after(); }, (e) => slot.show(e));
  const controls = [];
  const consoleBox = h('pre', { class: 'mono console-output', id: 'replica-console', tabindex: '0', 'aria-label': `Console of replica ${name}` });
  let failbackPanel = null;
  if (view.state) {
    if (view.state.mode !== 'failback') {
      const undo = button(view.state.mode === 'test' ? 'End test failover' : 'Undo failover', { id: 'replica-undo' });
      undo.addEventListener('click', async () => {
        if (!(await confirmDialog({ title: `Stop replica ${name}?`, message: 'The replica stops at your provider; what it wrote while it ran is thrown away. Its replica points stay.', confirmLabel: 'Stop', danger: false }))) return;
        act(undo, { action: 'end', permanent: false });
      });
      const refresh = button('Refresh console', { variant: 'secondary', id: 'replica-console-refresh' });
      const show = async () => replaceChildren(consoleBox, await replicaAct(provider, name, { action: 'console' }) || 'Nothing printed yet.');
      refresh.addEventListener('click', () => busy(refresh, show, (e) => slot.show(e)));
      controls.push(undo, refresh);
      show().catch((e) => slot.show(e));
    }
    if (view.state.mode === 'failover' || view.state.mode === 'failback') failbackPanel = failbackForm(view, provider, name, slot, ctx);
  } else {
    const port = field({ label: 'Public port (optional)', id: 'replica-public-port', kind: 'number', min: 1024, max: 65535, hint: 'A port of your provider’s address forwarded to port 80 of the replica, to reach its web server.' });
    const networks = Array.from({ length: view.networks || 0 }, (_, n) => [String(n), `Your network ${n} (extended to your site; the replica keeps its address)`]);
    const network = selectField({ label: 'Network', id: 'replica-network', value: 'nat', options: [['nat', 'Your provider’s NAT (reached through public ports)'], ...networks], hint: networks.length ? 'Your network is joined to your site by a network extension appliance (cloudkeep nea run). A test failover gets an isolated copy of it.' : 'Your hardware plan has no network of your own.' });
    network.input.addEventListener('change', () => { port.wrap.hidden = network.input.value !== 'nat'; });
    const rules = () => {
      if (network.input.value !== 'nat') return [];
      const p = port.input.value.trim();
      const bad = p !== '' && !(Number(p) >= 1024 && Number(p) <= 65535);
      port.setError(bad ? 'Give a port from 1024 to 65535, or leave it empty.' : null);
      return bad ? null : p ? [{ address: '0.0.0.0', port: Number(p), to: 80 }] : [];
    };
    const test = button('Test failover', { id: 'replica-test-failover', disabled: view.points.length === 0 });
    test.addEventListener('click', () => {
      const ports = rules();
      if (ports) act(test, { action: 'failover', test: true, point: null, ports, network: chosenNetwork() });
    });
    const real = button('Fail over', { variant: 'secondary', id: 'replica-failover', disabled: view.points.length === 0 });
    real.addEventListener('click', async () => {
      const ports = rules();
      if (!ports) return;
      if (!(await confirmDialog({ title: `Fail over replica ${name}?`, message: 'The replica starts at your provider from its newest point as your machine now; its replication waits until you fail it back (what it writes comes home) or undo.', confirmLabel: 'Fail over', danger: false }))) return;
      act(real, { action: 'failover', test: false, point: null, ports, network: chosenNetwork() });
    });
    const run = button('Run cycle', { variant: 'secondary', id: 'replica-run' });
    run.addEventListener('click', () => act(run, { action: 'run' }));
    const chosenNetwork = () => (network.input.value === 'nat' ? null : Number(network.input.value));
    controls.push(h('div', { class: 'grid-2' }, network.wrap, port.wrap), test, real, run);
  }
  const every = field({ label: 'Run a cycle every (minutes)', id: 'replica-every', kind: 'number', min: 1, max: 10080, step: 1, value: view.every_minutes ? String(view.every_minutes) : '', hint: 'Empty: only when you ask. Cycles run while the console or cloudkeep daemon runs.' });
  const saveEvery = button('Save schedule', { variant: 'secondary', id: 'replica-every-save' });
  saveEvery.addEventListener('click', () => {
    const v = every.input.value.trim();
    const n = Number(v);
    const bad = v !== '' && !(Number.isInteger(n) && n >= 1 && n <= 10080);
    every.setError(bad ? 'Give 1 to 10080 minutes, or leave it empty.' : null);
    if (bad) return;
    act(saveEvery, { action: 'schedule', every_minutes: v === '' ? null : n });
  });
  controls.push(h('div', { class: 'inline-field' }, every.wrap, saveEvery));
  const revoke = button(view.key_escrowed ? 'Take the key back' : 'Give the key to the provider', { variant: 'secondary', id: 'replica-key' });
  revoke.addEventListener('click', () => act(revoke, { action: 'escrow', escrow: !view.key_escrowed }));
  const del = button('Remove replica', { variant: 'danger', id: 'replica-delete' });
  del.addEventListener('click', async () => {
    if (!(await confirmDialog({ title: `Remove replica ${name}?`, message: 'Its disks and replica points at your provider are removed at once; the machine here is not touched.', confirmLabel: 'Remove replica' }))) return;
    act(del, { action: 'delete' }, () => ctx.navigate('replication'));
  });
  replaceChildren(container,
    ctx.params?.failedBack ? notice(`Replica ${name} failed back: ${ctx.params.failedBack}`, { id: 'replica-failed-back' }) : null,
    h('div', { class: 'toolbar' }, button('All replicas', { variant: 'secondary', onClick: () => ctx.navigate('replication') }),
      moreActions({ id: 'replica-more', label: `for replica ${name}`, note: 'Removing a replica removes its disks and points at your provider at once.', actions: [del] })),
    slot.el,
    panel('Replica', facts([
      ['Replica', name, 'replica-name'],
      ['Service provider', `${provider}, cloud host ${view.host}`],
      ['Hardware plan', `${view.spec.plan} (pool ${view.spec.pool})`],
      ['Disks', view.spec.disks.map((d) => `${d.name}: ${fmt.bytes(d.size)}`).join(', ')],
      ['Starts with', `${fmt.counted(view.spec.cpu, 'CPU')}, ${fmt.bytes(view.spec.memory)}`],
      ['At the provider', fmt.bytes(view.stored)],
      ['Key', view.key_escrowed ? 'Held by your provider too: it may start the replica for you' : 'On this computer only: only you can start the replica', 'replica-key-state'],
      ['Cycles', scheduleText(view.every_minutes), 'replica-schedule'],
      ['State', stateText(view.state), 'replica-state'],
    ]), h('div', { class: 'actions' }, ...controls, revoke)),
    failbackPanel,
    view.state && view.state.mode !== 'failback' ? panel('Console', h('p', { class: 'hint', text: 'What the replica printed on its serial port, the newest last.' }), consoleBox) : null,
    panel('Replica points', table({
      caption: `Replica points of ${name}`,
      id: 'replica-points',
      columns: [
        ['Replica point', (p) => String(p.id)],
        ['Made', (p) => fmt.exactTime(p.time_ms), 'when'],
        ['Sent', (p) => fmt.bytes(p.bytes), 'num'],
      ],
      rows: [...view.points].reverse(),
      empty: 'No replica point yet: run a cycle.',
    })));
}

/** Fail back: where each disk goes (this computer's disk, or a new image or device). */
function failbackForm(view, provider, name, slot, ctx) {
  const fields = view.spec.disks.map((d, i) => field({
    label: `Disk ${d.name} (${fmt.bytes(d.size)}) onto`,
    id: `replica-failback-onto-${i}`,
    value: (view.sources || [])[i] || '',
    hint: 'The machine’s own disk here, or a new image file (made at the disk’s size) or device for a new machine.',
  }));
  const go = button('Fail back', { id: 'replica-failback' });
  go.addEventListener('click', async () => {
    const onto = fields.map((f) => f.input.value.trim());
    fields.forEach((f, i) => f.setError(onto[i] ? null : 'Give where this disk goes.'));
    if (onto.some((p) => !p)) return;
    if (!(await confirmDialog({ title: `Fail back replica ${name}?`, message: `The replica stops at your provider; what it wrote there becomes its newest replica point and the blocks that differ are written onto ${onto.join(', ')}. Keep those disks unused until it ends; replication then goes on from them.`, confirmLabel: 'Fail back', danger: false }))) return;
    busy(go, async () => {
      const report = await replicaAct(provider, name, { action: 'failback', onto });
      await ctx.navigate('replication', { provider, replica: name, failedBack: `${fmt.count(report.blocks)} blocks (${fmt.bytes(report.bytes)}) written onto ${report.disks.join(', ')}; replication goes on from replica point ${report.point}.` });
    }, (e) => slot.show(e));
  });
  return panel('Fail back', h('p', { class: 'hint', text: 'Bring the replica home: what it changed at your provider comes back onto this computer’s disk, or onto a new machine’s. Only the blocks that differ travel.' }),
    ...fields.map((f) => f.wrap), h('div', { class: 'actions' }, go));
}

/** New replica: provider and plan, the machine's disks, then how it starts. */
function replicaWizard(overview, ctx) {
  const w = wizard({
    id: 'replica-wizard',
    title: 'New replica',
    finishLabel: 'Make replica',
    data: { choice: '0', name: '', kind: 'disk', disks: [], domain: '', job: '', cpu: 1, memoryGib: 1, keep: 7, escrow: true, every: '' },
    onCancel: () => ctx.navigate('replication'),
    onFinish: async (data) => {
      const chosen = overview.plans[Number(data.choice)];
      await replicaCreate({
        provider: chosen.provider,
        name: data.name,
        plan: chosen.plan.plan.name,
        pool: null,
        disks: data.kind === 'disk' ? data.disks.map((p, i) => [`disk${i}`, p]) : [],
        source: data.kind === 'libvirt' ? { kind: 'libvirt', domain: data.domain } : data.kind === 'job' ? { kind: 'job', job: data.job } : null,
        cpu: data.cpu,
        memory: Math.round(data.memoryGib * GIB),
        keep: data.keep,
        escrow: data.escrow,
        every_minutes: data.every === '' ? null : Number(data.every),
      });
      await ctx.navigate('replication', { created: data.name });
    },
    steps: [
      {
        title: 'Machine',
        render(body, data) {
          const name = field({ label: 'Name', id: 'replica-name-field', value: data.name, required: true, hint: 'The machine’s, usually: web, db-1.' });
          const plan = selectField({ label: 'Hardware plan', id: 'replica-plan', value: data.choice, options: overview.plans.map((p, i) => [String(i), `${p.plan.plan.name} at ${p.provider}`]) });
          const kind = radioGroup({ legend: 'What it replicates', name: 'replica-kind', value: data.kind, options: [
            ['disk', 'A disk image or device', 'A QEMU/KVM machine’s disk image (raw or qcow2), or a disk device.'],
            ['libvirt', 'A libvirt domain', 'Its disks, CPUs, memory and network card’s MAC address make the replica.'],
            ['job', 'This computer, under one of its image-level backup jobs', 'The disks the job images become the replica’s.'],
          ] });
          const disk = field({ label: 'Disk image or device', id: 'replica-disk', value: data.disks[0] || '', hint: 'A stopped machine’s disk replicates consistently; a running one’s as a crash would leave it.' });
          const browse = button('Choose…', { variant: 'secondary', onClick: async () => { const p = await pickFile('Choose the machine’s disk image', []); if (p) disk.input.value = p; } });
          const diskRow = h('div', { class: 'inline-field' }, disk.wrap, browse);
          const domain = field({ label: 'libvirt domain', id: 'replica-libvirt', value: data.domain, hint: 'Its name (asked of virsh), or its XML definition’s file.' });
          const jobs = overview.image_jobs || [];
          const job = selectField({ label: 'Image-level backup job', id: 'replica-job', value: data.job || jobs[0], options: jobs.length ? jobs.map((j) => [j, j]) : [['', 'No image-level job on this computer']] });
          const show = () => {
            const k = kind.value();
            diskRow.hidden = k !== 'disk';
            domain.wrap.hidden = k !== 'libvirt';
            job.wrap.hidden = k !== 'job';
          };
          kind.inputs.forEach((i) => i.addEventListener('change', show));
          show();
          body.append(name.wrap, plan.wrap, kind.wrap, diskRow, domain.wrap, job.wrap);
          return async () => {
            data.name = name.input.value.trim();
            data.choice = plan.input.value;
            data.kind = kind.value();
            data.disks = [disk.input.value.trim()].filter(Boolean);
            data.domain = domain.input.value.trim();
            data.job = job.input.value;
            name.setError(validName(data.name) ? null : nameError());
            const missing = { disk: data.disks.length === 0, libvirt: data.domain === '', job: data.job === '' }[data.kind];
            disk.setError(data.kind === 'disk' && missing ? 'Give the machine’s disk.' : null);
            domain.setError(data.kind === 'libvirt' && missing ? 'Give the domain’s name or its XML file.' : null);
            if (data.kind === 'job' && missing) w.showError('This computer has no image-level backup job: make one under Backup jobs, or choose a disk.');
            return validName(data.name) && !missing;
          };
        },
      },
      {
        title: 'Start-up',
        render(body, data) {
          const chosen = overview.plans[Number(data.choice)].plan.plan;
          const cpu = field({ label: 'CPUs', id: 'replica-cpu', kind: 'number', min: 1, step: 1, value: String(data.cpu), hint: `The plan has ${fmt.counted(chosen.cpu, 'CPU')} for all your running replicas.` });
          const memory = field({ label: 'Memory in GiB', id: 'replica-memory', kind: 'number', min: 0.0625, step: 'any', value: String(data.memoryGib), hint: `The plan has ${fmt.bytes(chosen.memory)}.` });
          const keep = field({ label: 'Replica points kept', id: 'replica-keep', kind: 'number', min: 1, max: 64, step: 1, value: String(data.keep) });
          const escrow = field({ label: 'Let the provider hold the key, so it can start the replica for you', id: 'replica-escrow', kind: 'checkbox', value: data.escrow });
          const every = field({ label: 'Run a cycle every (minutes)', id: 'replica-every-new', kind: 'number', min: 1, max: 10080, step: 1, value: data.every, hint: 'Empty: only when you ask.' });
          body.append(h('div', { class: 'grid-3' }, cpu.wrap, memory.wrap, keep.wrap), every.wrap, escrow.wrap,
            h('p', { class: 'hint', text: 'The replica’s disks are encrypted at your provider with a key made on this computer. Take it back any time: then only you can start the replica.' }));
          return async () => {
            data.cpu = Number(cpu.input.value);
            data.memoryGib = Number(memory.input.value);
            data.keep = Number(keep.input.value);
            data.escrow = escrow.input.checked;
            data.every = every.input.value.trim();
            const everyN = Number(data.every);
            const everyBad = data.every !== '' && !(Number.isInteger(everyN) && everyN >= 1 && everyN <= 10080);
            every.setError(everyBad ? 'Give 1 to 10080 minutes, or leave it empty.' : null);
            if (everyBad) return false;
            const cpuBad = !(Number.isInteger(data.cpu) && data.cpu >= 1 && data.cpu <= chosen.cpu);
            const memBad = !(data.memoryGib >= 0.0625 && data.memoryGib * GIB <= chosen.memory);
            const keepBad = !(Number.isInteger(data.keep) && data.keep >= 1 && data.keep <= 64);
            cpu.setError(cpuBad ? `Give 1 to ${chosen.cpu} CPUs: the plan has ${fmt.counted(chosen.cpu, 'CPU')}.` : null);
            memory.setError(memBad ? `Give at least 0.0625 GiB and at most the plan’s ${fmt.bytes(chosen.memory)}.` : null);
            keep.setError(keepBad ? 'Keep 1 to 64 replica points.' : null);
            return !cpuBad && !memBad && !keepBad;
          };
        },
      },
      {
        title: 'Summary',
        render(body, data) {
          const chosen = overview.plans[Number(data.choice)];
          body.append(facts([
            ['Replica', data.name, 'replica-summary-name'],
            ['Hardware plan', `${chosen.plan.plan.name} at ${chosen.provider}`],
            ['Machine', { disk: `Disk ${data.disks.join(', ')}`, libvirt: `libvirt domain ${data.domain}`, job: `This computer’s disks under job ${data.job}` }[data.kind], 'replica-summary-disk'],
            ['Starts with', `${fmt.counted(data.cpu, 'CPU')}, ${fmt.bytes(Math.round(data.memoryGib * GIB))}`],
            ['Replica points kept', fmt.count(data.keep)],
            ['Cycles', scheduleText(data.every === '' ? null : Number(data.every))],
            ['Key', data.escrow ? 'Held by the provider too' : 'On this computer only'],
          ]));
          return null;
        },
      },
    ],
  });
  return w.root;
}
