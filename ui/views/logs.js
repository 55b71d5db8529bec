// The Logs panel: the newest lines of the console's rotating log file, for support and
// for seeing what the console did.

import { logTail } from '../ipc.js';
import { h, replaceChildren } from '../dom.js';

const LINES = 200;

export async function renderLogs(container, context) {
  const output = h('pre', { class: 'log', id: 'log-lines', tabindex: '0', 'aria-label': 'Log lines' });
  const source = h('p', { class: 'hint', id: 'log-file' });
  const refresh = h('button', { type: 'button', class: 'button', id: 'log-refresh', text: 'Refresh' });

  async function load() {
    refresh.disabled = true;
    try {
      const tail = await logTail(LINES);
      source.textContent = tail.file
        ? `Last ${tail.lines.length} lines of ${tail.file}`
        : 'Nothing has been logged yet.';
      output.textContent = tail.lines.join('\n');
      output.scrollTop = output.scrollHeight;
    } catch (err) {
      context.showError(err);
    } finally {
      refresh.disabled = false;
    }
  }

  refresh.addEventListener('click', load);
  replaceChildren(container, h('div', { class: 'toolbar' }, refresh), source, output);
  await load();
}
