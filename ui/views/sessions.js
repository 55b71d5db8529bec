// Sessions: the history of every backup, health check and restore, filtered by job, kind
// and result; a session's page shows its report and its log.

import { sessionsList, sessionGet, jobsList } from '../ipc.js';
import { h, replaceChildren, button, selectField, panel } from '../dom.js';
import { sessionFacts } from '../components.js';
import { sessionTable } from '../lists.js';

export async function renderSessions(container, ctx) {
  if (ctx.params.id) return renderSession(container, ctx, ctx.params.id);
  const [all, { jobs }] = await Promise.all([sessionsList(null), jobsList()]);
  if (!ctx.current()) return undefined;
  const job = selectField({ label: 'Job', id: 'sessions-job', options: [['', 'All jobs'], ...jobs.map((j) => [j.name, j.name])], value: '' });
  const kind = selectField({ label: 'Kind', id: 'sessions-kind', options: [['', 'All kinds'], ['backup', 'Backups'], ['restore', 'Restores'], ['health-check', 'Health checks'], ['restore-test', 'Restore tests']], value: '' });
  const result = selectField({ label: 'Result', id: 'sessions-result', options: [['', 'All results'], ['success', 'Success'], ['warning', 'Warning'], ['failed', 'Failed'], ['stopped', 'Stopped']], value: '' });
  const out = h('div', { id: 'sessions-list' });
  const count = h('p', { class: 'hint', role: 'status', id: 'sessions-count' });
  function draw() {
    const shown = all.filter((s) => (!job.input.value || s.job === job.input.value)
      && (!kind.input.value || s.kind === kind.input.value)
      && (!result.input.value || s.result === result.input.value));
    count.textContent = `${shown.length} of ${all.length} sessions`;
    replaceChildren(out, sessionTable(shown, ctx, 'sessions-table'));
  }
  for (const f of [job, kind, result]) f.input.addEventListener('change', draw);
  replaceChildren(container, h('div', { class: 'toolbar toolbar-fields' }, job.wrap, kind.wrap, result.wrap), count, out);
  draw();
  return undefined;
}

async function renderSession(container, ctx, id) {
  const s = await sessionGet(Number(id));
  if (!ctx.current()) return;
  ctx.setTitle(`Session #${s.id}: ${s.kind} of ${s.job}`);
  const warnings = Array.isArray(s.warnings) ? s.warnings : [];
  replaceChildren(container,
    h('div', { class: 'toolbar' }, button('All sessions', { variant: 'secondary', id: 'session-back', onClick: () => ctx.navigate('sessions') }),
      button('Open the job', { variant: 'secondary', onClick: () => ctx.navigate('jobs', { view: 'job', name: s.job }) })),
    panel('Report', sessionFacts(s)),
    warnings.length ? panel(`Warnings (${warnings.length})`, h('ul', { class: 'reasons' }, warnings.map((w) => h('li', { text: typeof w === 'string' ? w : `${w.path}: ${w.message}` })))) : null,
    panel('Log', h('pre', { class: 'log', id: 'session-log', tabindex: '0', 'aria-label': 'Session log', text: s.log.length ? s.log.join('\n') : 'This session kept no log.' })));
}
