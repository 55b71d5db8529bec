// The About panel: what this build is and where it keeps data and logs, from core's
// `AboutInfo` (the same answer as `cloudkeep about`).

import { appInfo } from '../ipc.js';
import { facts, h, replaceChildren } from '../dom.js';

export async function renderAbout(container, context) {
  const about = await appInfo();
  const protocols = about.protocol_versions.map((v) => `v${v}`).join(', ');
  replaceChildren(container,
    h('p', { class: 'lead' },
      `${about.product} backs up this computer and the computers of your backup policies to the cloud repositories of your service provider.`),
    facts([
      ['Version', about.version, 'about-version'],
      ['Console mode', context.mode.title, 'about-mode'],
      ['Protocol', protocols, 'about-protocol'],
      ['Platform', `${about.os} ${about.arch}`, 'about-platform'],
      ['Data folder', about.data_folder, 'about-data-folder'],
      ['Log folder', about.log_folder, 'about-log-folder'],
    ]),
    h('p', { class: 'hint' },
      'The command line reports the same facts: run “cloudkeep about”. Set CLOUDKEEP_HOME to keep the data folder elsewhere.'),
  );
}
