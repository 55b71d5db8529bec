// Home: the first-run welcome (add a service provider, or try the lab), then the overview
// from core: warnings, quota bars per cloud repository, next scheduled runs, last sessions.

import { overview, labStart } from '../ipc.js';
import { h, replaceChildren, button, table, badge, panel, paintBars } from '../dom.js';
import { errorSlot, busy, notice } from '../components.js';
import * as fmt from '../format.js';
import { repoBars } from '../lists.js';

export async function renderHome(container, ctx) {
  const view = await overview(false);
  if (!ctx.current()) return;
  if (view.providers === 0) {
    renderWelcome(container, ctx);
    return;
  }
  const refresh = button('Refresh from providers', { variant: 'secondary', id: 'home-refresh' });
  refresh.addEventListener('click', () => busy(refresh, async () => {
    const fresh = await overview(true);
    fill(fresh);
  }, ctx.showError));
  const body = h('div', { class: 'stack' });
  replaceChildren(container, h('div', { class: 'toolbar' }, refresh), body);

  function fill(v) {
    replaceChildren(body,
      v.notices.length > 0
        ? h('section', { class: 'notices', 'aria-label': 'Warnings', id: 'home-notices' },
          h('h2', { class: 'visually-hidden', text: 'Warnings' }),
          v.notices.map((n) => h('p', { class: `warning warning-${n.kind}`, text: n.message })))
        : h('p', { class: 'all-good', id: 'home-all-good', text: 'No warnings: leases, quotas, certificates and jobs are all fine.' }),
      h('div', { class: 'grid-2' },
        panel('Cloud repositories', repoBars(v.repos)),
        panel('Next scheduled runs', table({
          caption: 'Next scheduled runs',
          id: 'home-next-runs',
          columns: [['Job', (j) => j.name], ['Schedule', (j) => j.schedule], ['Next run', (j) => fmt.dateTime(j.next_run_ms), 'when']],
          rows: v.jobs.filter((j) => j.next_run_ms),
          empty: 'No job runs on a schedule. Give a job a schedule to have it run by itself while the console is open.',
        }))),
      panel('Last sessions', table({
        caption: 'Last sessions',
        id: 'home-sessions',
        columns: [
          ['Job', (s) => s.job],
          ['Kind', (s) => s.kind],
          ['Started', (s) => fmt.dateTime(s.started_ms), 'when'],
          ['Result', (s) => badge(s.result)],
          ['Details', (s) => s.message || (s.stats && s.stats.files !== undefined ? `${fmt.counted(s.stats.files, 'file')}, ${fmt.bytes(s.stats.bytes)}` : '')],
        ],
        rows: v.sessions,
        empty: 'Nothing has run yet. Open Backup jobs and choose Run now.',
      })));
    paintBars(body);
  }
  fill(view);
}

function renderWelcome(container, ctx) {
  ctx.setTitle('Welcome to Cloudkeep');
  const slot = errorSlot();
  const result = h('div', { id: 'lab-result' });
  const lab = button('Try it with a local lab provider', { variant: 'secondary', id: 'welcome-lab' });
  lab.addEventListener('click', () => busy(lab, async () => {
    slot.clear();
    replaceChildren(result, notice('Starting the lab gateway on this computer…'));
    const started = await labStart();
    replaceChildren(result,
      notice(`The lab is running at ${started.lab.address} and is added as service provider “${started.provider.name}”, its certificate pinned.`, { id: 'lab-ready' }),
      repoBars(started.provider.repos.map((r) => ({ ...r, provider: started.provider.name, repo: r.name }))),
      h('p', {}, 'Next: create a backup job that stores its restore points there.'),
      button('Create a backup job', { id: 'welcome-new-job', onClick: () => ctx.navigate('jobs', { view: 'new' }) }));
    paintBars(result);
  }, (err) => { replaceChildren(result); slot.show(err); }));
  replaceChildren(container,
    h('p', { class: 'lead' }, 'Cloudkeep keeps restore points of this computer in the cloud repositories of your service provider. Start by adding the service provider with the address and account it gave you.'),
    h('div', { class: 'cards' },
      h('div', { class: 'card' },
        h('h2', { text: 'Add a service provider' }),
        h('p', { text: 'You need the gateway’s address, its certificate fingerprint, and your account and password.' }),
        button('Add a service provider', { id: 'welcome-add', onClick: () => ctx.navigate('providers', { view: 'add' }) })),
      h('div', { class: 'card' },
        h('h2', { text: 'Try it first' }),
        h('p', { text: 'Starts a lab gateway on this computer with a tenant account and a cloud repository, so you can try backups and restores without a service provider.' }),
        lab)),
    slot.el, result);
}
