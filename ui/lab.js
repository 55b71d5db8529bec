// The lab's pieces several screens share: its name as a provider, and the one-click way into
// its service provider side (signed in as its SP admin, its certificate already pinned).

import { labSpConnect } from './ipc.js';
import { button } from './dom.js';
import { busy } from './components.js';

/** The lab's name as a provider (the console's `LAB_PROVIDER`). */
export const LAB_PROVIDER = 'Lab';

/** "Open the lab as service provider": signs in as the lab's SP admin, no password to find. */
export function labSpButton(ctx, slot) {
  const open = button('Open the lab as service provider', { variant: 'secondary', id: 'lab-open-sp' });
  open.addEventListener('click', () => busy(open, async () => {
    await labSpConnect();
    await ctx.navigate('sp-tenants');
  }, (err) => slot.show(err)));
  return open;
}

