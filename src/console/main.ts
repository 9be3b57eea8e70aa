// The console's entry: access (function key or owner token, this tab only), the hash routes
// (#/ home, #/workspaces/{id}, #/operator) and the home page.
import { api, auth, type IntegrationLag } from './api.js';
import { field, h, show } from './dom.js';
import { workspaceView } from './workspace.js';
import { operatorView } from './operator.js';

const main = document.getElementById('main')!;
let stopView: (() => void) | undefined;

function accessPanel(): HTMLElement {
  const key = h('input', { type: 'password', name: 'functionKey', autocomplete: 'off', value: auth.key() });
  const state = () => (auth.token() ? 'owner token (from your link)' : auth.key() ? 'function key' : 'none (local)');
  const summary = h('summary', {}, `Access: ${state()}`);
  const form = h(
    'form',
    { class: 'access' },
    field('Function key', key, 'Kept in this browser tab only. Leave empty for a local app.'),
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Use key'), auth.token() ? h('button', { type: 'button', onclick: () => (auth.setToken(''), location.reload()) }, 'Forget token') : null),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    auth.setKey(key.value.trim());
    summary.textContent = `Access: ${state()}`;
    route();
  });
  return h('details', { id: 'access-panel' }, summary, form);
}

function home(root: HTMLElement): () => void {
  const id = h('input', { type: 'number', name: 'workspaceId', min: 1, step: 1, required: true, inputmode: 'numeric' });
  const form = h('form', { class: 'open' }, field('Workspace id', id), h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Open workspace')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (id.value) location.hash = `#/workspaces/${Number(id.value)}`;
  });
  const known = h('div', {});
  show(
    root,
    h('h1', {}, 'Warehouse export'),
    h('p', {}, 'Connect a workspace to your Azure Blob Storage container, choose the files, and watch its exports.'),
    form,
    h('section', { 'aria-labelledby': 'known-title' }, h('h2', { id: 'known-title' }, 'Integrations'), known),
  );
  api<{ integrations: IntegrationLag[] }>('GET', '/operations/integrations').then(
    (r) => show(known, r.integrations.length ? h('ul', {}, r.integrations.map((i) => h('li', {}, h('a', { href: `#/workspaces/${i.workspaceId}` }, `Workspace ${i.workspaceId}`), ` — ${i.container}${i.blobPath ? ` / ${i.blobPath}` : ''}, ${i.enabled ? 'sync enabled' : 'sync disabled'}`))) : h('p', {}, 'None yet. Open a workspace to connect it.')),
    () => show(known, h('p', {}, 'Open a workspace by its id.')),
  );
  return () => undefined;
}

function route(): void {
  if (auth.takeTokenFromFragment()) show(document.getElementById('access')!, accessPanel());
  stopView?.();
  const path = location.hash.replace(/^#/, '') || '/';
  const ws = /^\/workspaces\/(\d+)$/.exec(path);
  for (const a of document.querySelectorAll('nav a')) a.removeAttribute('aria-current');
  if (ws) {
    stopView = workspaceView(main, Number(ws[1]));
    document.title = `Workspace ${ws[1]} — warehouse export`;
  } else if (path === '/operator') {
    stopView = operatorView(main);
    document.querySelector('nav a[href="#/operator"]')?.setAttribute('aria-current', 'page');
    document.title = 'Operator — warehouse export';
  } else {
    stopView = home(main);
    document.querySelector('nav a[href="#/"]')?.setAttribute('aria-current', 'page');
    document.title = 'Warehouse export console';
  }
  main.focus({ preventScroll: true });
}

show(document.getElementById('access')!, accessPanel());
window.addEventListener('hashchange', route);
route();
